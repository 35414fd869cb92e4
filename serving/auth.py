"""Bearer tokens with scopes: which caller may call which endpoint.

`SERVING_TOKENS` is comma-separated; an entry is `token` (every read scope) or
`token:scope+scope` (only those). Admin endpoints need a token from `SERVING_ADMIN_TOKENS`,
which carries the `admin` scope and nothing else: a leaked read token can never reload the
service, and an admin token is never used for traffic.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

ADMIN = "admin"
READ_SCOPES: frozenset[str] = frozenset(
    {"feed", "rank", "features", "recommendations", "stories", "notifications", "discovery"}
)
ALL_SCOPES: frozenset[str] = READ_SCOPES | {ADMIN}


class TokenError(ValueError):
    """A token entry in the settings that cannot be used (unknown scope, empty token)."""


def parse_entry(entry: str) -> tuple[str, frozenset[str]]:
    """`token` -> every read scope; `token:feed+rank` -> those scopes (never `admin`)."""
    token, _, scopes_text = entry.strip().partition(":")
    if not token:
        raise TokenError("an empty token in SERVING_TOKENS")
    if not scopes_text:
        return token, READ_SCOPES
    scopes = frozenset(s.strip() for s in scopes_text.split("+") if s.strip())
    unknown = scopes - READ_SCOPES
    if ADMIN in unknown:
        raise TokenError("the admin scope comes only from SERVING_ADMIN_TOKENS")
    if unknown or not scopes:
        raise TokenError(
            f"unknown scope(s) {sorted(unknown)} in SERVING_TOKENS; known: {sorted(READ_SCOPES)}"
        )
    return token, scopes


def token_table(entries: Iterable[str], admin_tokens: Iterable[str]) -> dict[str, frozenset[str]]:
    """token -> scopes; a token listed both ways is refused (admin must stay separate)."""
    table = dict(parse_entry(e) for e in entries)
    for token in admin_tokens:
        if token in table:
            raise TokenError("a token is both a service token and an admin token")
        table[token] = frozenset({ADMIN})
    return table


def scopes_of(table: Mapping[str, frozenset[str]], given: str) -> frozenset[str] | None:
    """The scopes of a presented token (compared in constant time), None if unknown."""
    raw = given.encode()
    found: frozenset[str] | None = None
    for token, scopes in table.items():
        if hmac.compare_digest(raw, token.encode()):
            found = scopes
    return found
