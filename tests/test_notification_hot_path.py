"""The worker's hot path without services: what was made cheaper must mean the same.

- `Notification.to_json` writes its fields by hand (with orjson): the same JSON as
  `dataclasses.asdict`, and back;
- `Keys` caches each derived key: the same strings, and keys stay equal and hashable;
- the apply script's batch entries are coalesced per batch within a poll: run through a small
  interpreter of the Redis commands they use, they leave exactly the state that one SADD,
  two HSETNX and one ZADD NX per event leave (the previous form).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from notifications.kinds import Kind
from notifications.provider import Notification
from notifications.router import Outcome, Pending
from notifications.state import Keys
from notifications.store import SADD_CHUNK, NotificationStore, Timing


def test_to_json_matches_asdict() -> None:
    notes = [
        Notification("like:1:e", 1, "like", "ada liked your post", [2], 1, 5, 123),
        Notification("digest:1:x", 1, "digest", "While you were away", [], 30, None, 9, True),
        Notification("like:2:f", 2, "like", "zoë 🎉 liked your post", [3], 1, 6, 124),
    ]
    for note in notes:
        assert json.loads(note.to_json()) == json.loads(json.dumps(asdict(note)))
        assert Notification.from_json(note.to_json()) == note


def test_keys_are_cached_and_unchanged() -> None:
    keys = Keys("p")
    assert keys.outbox == "p:outbox" and keys.outbox == "p:outbox"
    assert keys.batch("1:like:2") == "p:batch:1:like:2"
    assert keys == Keys("p") and hash(keys) == hash(Keys("p")) and {keys: 1}[Keys("p")] == 1


def _run(ops: list[list[str]]) -> dict[str, Any]:
    """The Redis commands the batch entries use, on dicts and sets."""
    db: dict[str, Any] = {}
    for op in ops:
        match op:
            case ["SADD", key, *members]:
                db.setdefault(key, set()).update(members)
            case ["HSETNX", key, field, value]:
                db.setdefault(key, {}).setdefault(field, value)
            case ["ZADD", key, "NX", score, member]:
                db.setdefault(key, {}).setdefault(member, score)
            case _:
                raise AssertionError(f"unexpected command {op}")
    return db


def _per_event(keys: Keys, pending: list[Pending], now: int, due: str) -> list[list[str]]:
    """The previous form: four commands per event."""
    ops = []
    for p in pending:
        batch = keys.batch(p.batch_id)
        ops += [
            ["SADD", keys.actors(p.batch_id), str(p.actor)],
            ["HSETNX", batch, "created_ms", str(now)],
            ["HSETNX", batch, "source_ms", str(p.source_ms)],
            ["ZADD", keys.due, "NX", due, p.batch_id],
        ]
    return ops


def test_coalesced_batch_entries_leave_the_same_state() -> None:
    keys = Keys("t")
    store = object.__new__(NotificationStore)  # ops_for needs no connection
    store.keys, store.timing = keys, Timing(delay_seconds=1.0)
    pending = [
        Pending(
            recipient=1 + i % 3, kind=Kind.LIKE, post_id=10 + i % 5, actor=100 + i % 7, source_ms=i
        )
        for i in range(60)
    ]
    pending += [Pending(9, Kind.LIKE, 99, 1_000 + i, 5_000 + i) for i in range(2 * SADD_CHUNK + 5)]
    out = Outcome(pending=pending)
    ops = store.ops_for(out, "events.engagements", 0)
    due = next(op[3] for op in ops if op[0] == "ZADD")
    now = next(int(op[3]) for op in ops if op[:3] == ["HSETNX", op[1], "created_ms"])
    assert _run(ops) == _run(_per_event(keys, pending, now, due))
    assert len(ops) < len(pending)  # 15 + 1 batches, not one entry per event
    assert max(len(op) for op in ops if op[0] == "SADD") <= SADD_CHUNK + 2
