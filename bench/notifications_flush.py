"""Notification worker, Redis client side: CPU of one flush round + send, no Redis server.

`NotificationStore.flush_due` and `send` for N due batches of one like each (the shape of
`bench.notifications`: every like opens its own batch), against a canned RESP responder on a
unix socket in this process (it answers each command with a reply of the right shape; no port,
no Redis). What is timed is redis-py (command packing, hiredis reply parsing) and the worker's
Python around it, plus the responder's own small share (the same for every code version). The
Redis server's work is not measured. Run it from two checkouts (PYTHONPATH) to compare:

    uv run python -m bench.notifications_flush [--batches 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import socket
import tempfile
import threading
import time
from typing import Any

import hiredis
import redis

from notifications import store as st
from notifications.provider import Notification, RecordingProvider
from notifications.state import Keys, RoutingState

SCRIPTS = (
    "APPLY",
    "FLUSH_BATCH",
    "FLUSH_BATCHES",
    "READ_BATCHES",
    "MARK_SENT",
    "CLAIM",
    "FLUSH_DIGEST",
)


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _array(items: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(items)


class CannedRedis:
    """Replies of the right shape for the commands `flush_due` and `send` use (any version)."""

    HASH = _array([_bulk(b"created_ms"), _bulk(b"5"), _bulk(b"source_ms"), _bulk(b"3")])
    MEMBERS = _array([_bulk(b"7")])

    def __init__(self, batches: int) -> None:
        self.ids = [f"{i}:like:{i}".encode() for i in range(1, batches + 1)]
        note = Notification("k", 1, "like", "ada liked your post").to_dict()
        self.outbox = _array([_bulk(json.dumps(note).encode())] * batches)
        self.scripts = {
            hashlib.sha1(getattr(st, name).encode()).hexdigest().encode(): name
            for name in SCRIPTS
            if hasattr(st, name)
        }
        self.path = os.path.join(tempfile.mkdtemp(), "redis.sock")
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(self.path)
        self.server.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            conn, _ = self.server.accept()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader, queued = hiredis.Reader(), [-1]  # -1: not in MULTI, else commands queued
        while data := conn.recv(1 << 20):
            reader.feed(data)
            out = []
            while (command := reader.gets()) is not False:
                out.append(self._reply(command, queued))
            conn.sendall(b"".join(out))

    def _reply(self, command: Any, queued: list[int]) -> bytes:
        name = command[0].upper()
        if name == b"MULTI":
            queued[0] = 0
            return b"+OK\r\n"
        if name == b"EXEC":
            n, queued[0] = queued[0], -1
            return _array([b"+OK\r\n"] * n)
        if queued[0] >= 0:
            queued[0] += 1
            return b"+QUEUED\r\n"
        keys = len(command) - 1
        match name:
            case b"ZRANGEBYSCORE":
                return _array([_bulk(i) for i in self.ids])
            case b"HGETALL":
                return self.HASH
            case b"SMEMBERS":
                return self.MEMBERS
            case b"LRANGE":
                return self.outbox
            case b"MGET":
                return b"*%d\r\n" % keys + b"$-1\r\n" * keys
            case b"EXISTS":
                return b":0\r\n"
            case b"RPUSH":
                return b":1\r\n"
            case b"EVALSHA":
                script, script_keys = self.scripts.get(command[1]), int(command[2])
                if script == "READ_BATCHES":
                    return _array([self.HASH, self.MEMBERS] * (script_keys // 2))
                if script == "FLUSH_BATCHES":
                    return _array([b":1\r\n"] * ((script_keys - 2) // 2))
                if script == "CLAIM":  # nothing set aside, every entry claimed
                    claimed = [b":%d\r\n" % i for i in range(1, script_keys - 6 + 1)]
                    return _array([b":0\r\n", *claimed])
                return b":1\r\n"
        return b"+OK\r\n"


def _send(store: Any, provider: Any) -> Any:
    """`send` of either version: before the fenced claim it took only the provider."""
    if "token" in inspect.signature(store.send).parameters:
        return store.send(provider, "bench", 1)[0]
    return store.send(provider)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5, help="best of this many rounds")
    args = parser.parse_args()
    canned = CannedRedis(args.batches)
    client = redis.Redis(unix_socket_path=canned.path)
    keys = Keys("bench-flush")
    store = st.NotificationStore(client, keys, st.Timing(delay_seconds=1.0, digest_limit=-1))
    state = RoutingState(keys)
    provider = RecordingProvider(client, keys.pushed)

    def one_round() -> float:
        started = time.process_time()
        counts = store.flush_due(state)
        sent = _send(store, provider)
        assert counts["batches"] == args.batches and sum(sent.values()) == args.batches
        return time.process_time() - started

    one_round()  # loads the scripts
    best = min(one_round() for _ in range(args.repeat))
    print(f"load average: {os.getloadavg()}")
    print(f"code: {st.__file__}")
    print(
        f"flush_due + send of {args.batches} batches: {best / args.batches * 1e6:.1f} us CPU "
        f"per batch (best of {args.repeat})"
    )


if __name__ == "__main__":
    main()
