"""Opaque, signed page cursors: which ranked snapshot a client is reading, and where.

A cursor names the snapshot (the ranked list built for the first page), the user and the
offset, and carries an HMAC so a client can neither forge one nor read another user's pages.
Pages of one snapshot never overlap and do not move when new posts arrive.
"""

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass


class InvalidCursor(ValueError):
    """A cursor that is malformed, tampered with, or issued to someone else."""


@dataclass(frozen=True)
class Cursor:
    snapshot_id: str
    user_id: int
    offset: int


class CursorCodec:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()[:12]

    def encode(self, cursor: Cursor) -> str:
        payload = json.dumps(
            [cursor.snapshot_id, cursor.user_id, cursor.offset], separators=(",", ":")
        ).encode()
        return base64.urlsafe_b64encode(self._sign(payload) + payload).decode().rstrip("=")

    def decode(self, text: str, user_id: int) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursor("cursor is not valid base64") from exc
        signature, payload = raw[:12], raw[12:]
        if len(signature) < 12 or not hmac.compare_digest(signature, self._sign(payload)):
            raise InvalidCursor("cursor was not issued by this service (bad signature)")
        try:
            snapshot_id, owner, offset = json.loads(payload)
        except (ValueError, TypeError) as exc:
            raise InvalidCursor("cursor payload is malformed") from exc
        if owner != user_id:
            raise InvalidCursor("cursor belongs to another user")
        if not isinstance(offset, int) or offset < 0:
            raise InvalidCursor("cursor offset is invalid")
        return Cursor(str(snapshot_id), int(owner), offset)
