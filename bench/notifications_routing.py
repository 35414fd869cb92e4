"""Notification worker, in-process part: CPU per event and Redis commands per event, no services.

`bench.notifications` needs Kafka and Redis (`make services-up`). This one times what the worker
does between a poll and the Redis script, on the same workload shape (2,000 sign-ups, 5,000
posts, then likes and comments 9:1) in polls of `--poll` messages: decode, the comment checks
(one batched model call per poll), routing, the script's ops and their JSON. Beside it, in the
same run, the bare consume loop's in-process floor: kafka-python 3.0 decoding the same values
from v2 record batches of producer size (16 KiB) with CRC checks, as its fetcher does. It
prints CPU msg/s of both, the ratio floor / (floor + routing) (an upper bound of the worker's
throughput ratio on a CPU-bound machine: it leaves out the Redis script's own CPU and the
network), and the commands the apply scripts would run per event. `--hot-posts N` sends the
likes to N posts only (a viral post's burst).

    uv run python -m bench.notifications_routing [--events 30000] [--poll 5000] [--hot-posts 0]

Run it twice from two checkouts (PYTHONPATH) to compare code versions in the same session.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from notification_support import comment, event, post, user

Message = namedtuple("Message", "value offset timestamp")


def workload(events: int, hot_posts: int, users: int = 2_000, posts: int = 5_000) -> list[Message]:
    out = [user(u) for u in range(1, users + 1)]
    out += [post(1 + k % users, k) for k in range(1, posts + 1)]
    targets = hot_posts or posts
    i = 0
    while len(out) < events:
        actor, target = 1 + (i * 7919) % users, 1 + i % targets
        if i % 10 == 0:
            out.append(comment(actor, target, "amazing shot"))
        else:
            out.append(event("like", user_id=actor, post_id=target))
        i += 1
    now = int(time.time() * 1000)
    return [Message(json.dumps(e).encode(), n, now) for n, e in enumerate(out)]


def route_all(messages: list[Message], poll: int) -> tuple[float, int]:
    """(CPU seconds, commands in the apply scripts) for every message, `poll` at a time."""
    from ingestion import event_stream
    from moderation.comments import default_checker
    from notifications.router import Outcome, Router
    from notifications.state import Keys, RoutingState
    from notifications.store import NotificationStore, Timing

    checker = default_checker()
    keys = Keys("bench-routing")
    router = Router(RoutingState(keys))
    store = object.__new__(NotificationStore)  # ops_for only: no Redis connection
    store.keys, store.timing = keys, Timing(delay_seconds=1.0, digest_limit=-1)
    commands = 0
    started = time.process_time()
    for start in range(0, len(messages), poll):
        fresh = messages[start : start + poll]
        events = [event_stream.decode(m.value) for m in fresh]
        comments = [
            i
            for i, e in enumerate(events)
            if e and e.get("event_type") == "comment" and isinstance(e.get("text"), str)
        ]
        texts = [str((events[i] or {})["text"]) for i in comments]
        verdicts = dict(zip(comments, checker.check_many(texts), strict=True))
        out = Outcome()
        for i, (message, payload) in enumerate(zip(fresh, events, strict=True)):
            assert payload is not None
            router.route(payload, int(message.timestamp), out, verdicts.get(i))
        ops = store.ops_for(out, "events.engagements", 0)
        orjson.dumps(ops)  # as NotificationStore.apply serialises them
        commands += len(ops)
    return time.process_time() - started, commands


def record_batches(messages: list[Message], batch_size: int = 16_384) -> list[bytes]:
    """The values as the broker stores them: v2 record batches, uncompressed."""
    from kafka.record.memory_records import MemoryRecordsBuilder

    out, builder = [], None
    for m in messages:
        if builder is None:
            builder = MemoryRecordsBuilder(2, 0, batch_size, offset=m.offset)
        if builder.append(m.timestamp, None, m.value) is None:  # full: start the next batch
            builder.close()
            out.append(bytes(builder.buffer()))
            builder = MemoryRecordsBuilder(2, 0, batch_size, offset=m.offset)
            builder.append(m.timestamp, None, m.value)
    if builder is not None:
        builder.close()
        out.append(bytes(builder.buffer()))
    return out


def decode_batches(buffers: list[bytes]) -> int:
    """What kafka-python's fetcher does per record once the bytes arrived (CRC checks on)."""
    from kafka.consumer.fetcher import ConsumerRecord
    from kafka.record.memory_records import MemoryRecords

    n = 0
    for buffer in buffers:
        records = MemoryRecords(buffer)
        batch = records.next_batch()
        while batch is not None:
            if not batch.validate_crc():
                raise ValueError("corrupt batch")
            for r in batch:
                ConsumerRecord(
                    "events.engagements", 0, 0, r.offset, r.timestamp, r.timestamp_type,
                    r.key, r.value, r.headers, r.checksum, -1, len(r.value), -1,
                )  # fmt: skip
                n += 1
            batch = records.next_batch()
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--poll", type=int, default=5_000)
    parser.add_argument("--hot-posts", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    messages = workload(args.events, args.hot_posts)
    print(f"load average: {os.getloadavg()}")
    floor = min(_timed(lambda: [json.loads(m.value) for m in messages]) for _ in range(args.repeat))
    buffers = record_batches(messages)
    assert decode_batches(buffers) == len(messages)
    bare = min(_timed(lambda: decode_batches(buffers)) for _ in range(args.repeat))
    runs = [route_all(messages, args.poll) for _ in range(args.repeat)]
    cpu, commands = min(r[0] for r in runs), runs[0][1]
    n = len(messages)
    print(f"events {n}, poll {args.poll}, hot posts {args.hot_posts or 'none'}")
    print(f"json.loads alone:  {n / floor:,.0f} msg/s CPU")
    print(f"kafka-python record decoding (bare loop floor): {n / bare:,.0f} msg/s CPU")
    print(f"worker routing:    {n / cpu:,.0f} msg/s CPU ({cpu / n * 1e6:.1f} us/event)")
    print(f"in-process ratio floor / (floor + routing): {bare / (bare + cpu):.2f}x")
    print(f"apply-script commands: {commands:,} ({commands / n:.2f} per event)")


def _timed(fn: Callable[[], object]) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


if __name__ == "__main__":
    main()
