"""Two notification workers in one consumer group against real Kafka and Redis, then kill -9.

What a second member must not break: each worker reads the state topics in full (a block or a
post produced on any partition is known to both), the event topics are split between them,
only the holder of the delivery lease flushes and sends, and when one is killed with -9 the
other takes over its partitions and the lease: every notification is sent, none twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from notification_support import (
    Producer,
    comment,
    create_topics,
    delete_prefix,
    event,
    post,
    topics_for,
    user,
)

from notifications.provider import Notification, RecordingProvider
from notifications.state import Keys

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 2
AUTHORS, FANS, BLOCKED = 4, 16, 99
LATE_BLOCKED = 98  # blocked while the workers run, then comments at once on both partitions
ROUNDS = 3  # round r: each fan comments on and likes post r of one author


@pytest.fixture
def group(kafka_bootstrap: str, redis_url: str) -> Iterator[dict[str, Any]]:
    from redis import Redis

    run = uuid.uuid4().hex[:10]
    topics = topics_for(run)
    create_topics(kafka_bootstrap, list(topics.values()), partitions=PARTITIONS)
    redis = Redis.from_url(redis_url)
    keys = Keys(f"test-notify-{run}")
    producer = Producer(kafka_bootstrap, topics)
    yield {"run": run, "topics": topics, "redis": redis, "keys": keys, "producer": producer}
    producer.close()
    delete_prefix(redis, keys.prefix)
    redis.close()


def _start(kafka_bootstrap: str, redis_url: str, g: dict[str, Any], log: Path, *extra: str) -> Any:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REDIS_URL": redis_url,
        "PLATFORM_DATA_DIR": str(log.parent / "data"),
    }
    args = ["--group-id", f"test-notify-{g['run']}", "--prefix", g["keys"].prefix]
    args += ["--topics", ",".join(g["topics"].values()), "--from-beginning"]
    args += ["--delay-seconds", "1", "--lease-ms", "2000", "--session-timeout-ms", "6000"]
    args += list(extra)
    return subprocess.Popen(
        [sys.executable, "-m", "notifications.worker", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _assigned(log: Path) -> set[str]:
    """The event partitions of the worker's latest assignment (from its log)."""
    lines = [line for line in log.read_text().splitlines() if " assigned: " in line]
    if not lines:
        return set()
    return {p for p in lines[-1].split(" assigned: ", 1)[1].split(",") if p}


def _wait(done: Callable[[], bool], timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "\n".join(log.read_text()[-2000:] for log in logs)
        time.sleep(0.05)


def _unconfirmed(redis: Any, keys: Keys) -> list[Notification]:
    return [Notification.from_json(r) for r in redis.lrange(keys.unconfirmed, 0, -1)]


def _round(p: Producer, r: int) -> tuple[int, int]:
    """One round of engagements over both partitions; returns (comments, likes) expected."""
    comments = likes = 0
    for f in range(AUTHORS + 1, AUTHORS + FANS + 1):
        a = 1 + f % AUTHORS
        part = f % PARTITIONS
        p.send("engagements", comment(f, a * 100 + r, f"lovely {r}"), partition=part)
        p.send("engagements", event("like", user_id=f, post_id=a * 100 + r), partition=part)
        comments, likes = comments + 1, likes + 1
    for a in range(1, AUTHORS + 1):  # the blocked user, on both partitions: never notifies
        for part in range(PARTITIONS):
            p.send("engagements", event("like", user_id=BLOCKED, post_id=a * 100 + r), part)
            p.send("engagements", comment(BLOCKED, a * 100 + r, "hi there"), partition=part)
            reply = event(
                "story_reply", user_id=BLOCKED, story_id=r + 1, target_user_id=a, text="x"
            )
            p.send("messages", reply, partition=part)
    p.flush()
    return comments, likes


def test_two_workers_one_group_privacy_takeover_and_no_duplicate(
    kafka_bootstrap: str, redis_url: str, group: dict[str, Any], tmp_path: Path
) -> None:
    p, redis, keys = group["producer"], group["redis"], group["keys"]
    for u in [*range(1, AUTHORS + FANS + 1), BLOCKED, LATE_BLOCKED]:
        p.send("users", user(u), partition=u % PARTITIONS)
    for a in range(1, AUTHORS + 1):
        for r in range(ROUNDS):
            p.send("posts", post(a, a * 100 + r), partition=(a + r) % PARTITIONS)
        # each author's block on one partition of the relationships topic: both workers need it
        p.send("relationships", event("block", user_id=a, target_user_id=BLOCKED), a % 2)
    p.flush()
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [_start(kafka_bootstrap, redis_url, group, log) for log in logs]
    provider = RecordingProvider(redis, keys.pushed)
    expected_comments = expected_likes = 0
    try:
        # both members hold event partitions: the group has split them
        def split() -> bool:  # each has its share of engagements, messages, live; no overlap
            a_parts, b_parts = (_assigned(log) for log in logs)
            return bool(a_parts and b_parts and not a_parts & b_parts) and (
                len(a_parts | b_parts) == 3 * PARTITIONS
            )

        _wait(split, 60, logs)

        def delivered() -> bool:
            comments = {c["key"] for c in provider.calls() if c["kind"] == "comment"}
            pending = redis.zcard(keys.due) + redis.llen(keys.outbox)
            return len(comments) >= expected_comments and pending == 0

        nc, nl = _round(p, 0)
        expected_comments, expected_likes = expected_comments + nc, expected_likes + nl
        _wait(delivered, 30, logs)
        # both workers applied engagements: each partition's offset is recorded
        for part in range(PARTITIONS):
            assert redis.hexists(keys.offsets, f"{group['topics']['engagements']}:{part}")

        # a block produced while both run, then the blocked user's comments on both
        # partitions at once: each worker reads the state topics up to their end before
        # routing, so whichever routes a comment knows the block (comments are not batched:
        # nothing checks again at flush)
        p.send("relationships", event("block", user_id=1, target_user_id=LATE_BLOCKED), 0)
        p.flush()
        for part in range(PARTITIONS):
            late = comment(LATE_BLOCKED, 100, "still here")
            p.send("engagements", late, partition=part)
        p.flush()

        # round 1, and kill -9 the lease holder (the sender) as its notifications arrive
        before = redis.llen(keys.pushed)
        nc, nl = _round(p, 1)
        expected_comments, expected_likes = expected_comments + nc, expected_likes + nl
        _wait(lambda: redis.llen(keys.pushed) > before, 30, logs)
        holder_pid = int(redis.get(keys.deliver_lease).decode().split(":")[1])
        victim = next(i for i, proc in enumerate(procs) if proc.pid == holder_pid)
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait(timeout=30)
        survivor = logs[1 - victim]

        nc, nl = _round(p, 2)
        expected_comments, expected_likes = expected_comments + nc, expected_likes + nl
        _wait(delivered, 40, logs)
        # the survivor took over every event partition
        assert len(_assigned(survivor)) == 3 * PARTITIONS
        assert redis.get(keys.deliver_lease).decode().split(":")[1] == str(procs[1 - victim].pid)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)

    calls = provider.calls()
    comment_keys = {c["key"] for c in calls if c["kind"] == "comment"}
    # a kill between a claim and the provider's return sets that claim aside (at most once)
    aside = {n.key for n in _unconfirmed(redis, keys) if n.kind == "comment"}
    assert len(comment_keys | aside) == expected_comments
    assert not any({BLOCKED, LATE_BLOCKED} & set(c["actors"]) for c in calls), "blocked actor"
    assert Counter(c["kind"] for c in calls if c["kind"] == "story_reply") == Counter()
    # every like in exactly one batch, delivered or set aside: none lost, none counted twice
    batches = {c["key"]: c["actor_count"] for c in calls if c["kind"] == "like"}
    batches |= {n.key: n.actor_count for n in _unconfirmed(redis, keys) if n.kind == "like"}
    assert sum(batches.values()) == expected_likes
    per_key = Counter(c["key"] for c in calls)
    assert max(per_key.values()) == 1, "a notification sent twice"
    dead = redis.lrange(keys.dead_letters, 0, -1)
    assert not dead, dead[:3]


def test_a_holder_paused_past_its_lease_sends_nothing_twice(
    kafka_bootstrap: str, redis_url: str, group: dict[str, Any], tmp_path: Path
) -> None:
    """SIGSTOP the lease holder inside a provider call (the recording provider takes 1 s, as a
    push service's round trip), long past its 2 s lease: the other worker takes the lease and
    delivers the rest, and more; SIGCONT: the paused call completes. No key is sent twice,
    and none is lost. Before the fenced claim, the successor re-sent the paused holder's
    entries (they were still at the outbox head, unmarked), and this test failed."""
    p, redis, keys = group["producer"], group["redis"], group["keys"]
    for u in range(1, AUTHORS + FANS + 1):
        p.send("users", user(u), partition=u % PARTITIONS)
    for a in range(1, AUTHORS + 1):
        p.send("posts", post(a, a * 100), partition=a % PARTITIONS)
    p.flush()
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [
        _start(kafka_bootstrap, redis_url, group, log, "--provider-latency-ms", "1000")
        for log in logs
    ]
    provider = RecordingProvider(redis, keys.pushed)
    expected: list[set[str]] = []

    def comments() -> None:  # one round: a comment per fan, over both partitions
        keys_of_round = set()
        for f in range(AUTHORS + 1, AUTHORS + FANS + 1):
            author = 1 + f % AUTHORS
            c = comment(f, 100 * author, f"round {len(expected)}")
            p.send("engagements", c, partition=f % PARTITIONS)
            keys_of_round.add(f"comment:{author}:{c['event_id']}")
        p.flush()
        expected.append(keys_of_round)

    def lease_holder() -> int:
        raw = redis.get(keys.deliver_lease)
        return int(raw.decode().split(":")[1]) if raw else 0

    try:
        _wait(lambda: all(_assigned(log) for log in logs), 60, logs)
        comments()
        # the holder is inside its first provider call: stop it there
        _wait(lambda: int(redis.get(f"{keys.pushed}:calls") or 0) >= 1, 30, logs)
        paused = next(proc for proc in procs if proc.pid == lease_holder())
        other = next(proc for proc in procs if proc is not paused)
        paused.send_signal(signal.SIGSTOP)
        try:
            # the other takes the lease (2 s), later the paused one's partitions (6 s session)
            _wait(lambda: lease_holder() == other.pid, 30, logs)
            comments()

            def drained() -> bool:  # round 1 delivered by the other, nothing left queued
                pushed = {c["key"] for c in provider.calls()}
                return expected[1] <= pushed and redis.llen(keys.outbox) == 0

            _wait(drained, 40, logs)
        finally:
            paused.send_signal(signal.SIGCONT)

        # the paused call completes (1 s): every key of both rounds delivered
        def all_delivered() -> bool:
            return expected[0] | expected[1] <= {c["key"] for c in provider.calls()}

        _wait(all_delivered, 30, logs)
        time.sleep(2.0)  # room for a late duplicate to show
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
    calls = provider.calls()
    per_key = Counter(c["key"] for c in calls)
    twice = [k for k, n in per_key.items() if n > 1]
    assert not twice, f"sent twice: {twice}"
    assert set(per_key) == expected[0] | expected[1]  # none lost
    # the successor set the paused claim aside (it could not know the call would complete);
    # the paused holder's call, resumed, was that claim's only send
    aside = {n.key for n in _unconfirmed(redis, keys)}
    assert aside and aside <= expected[0]


# --- the Redis guards the group relies on, one at a time ---------------------------------------


@pytest.fixture
def store(redis_url: str) -> Iterator[Any]:
    from redis import Redis

    from notifications.store import NotificationStore, Timing

    redis = Redis.from_url(redis_url)
    keys = Keys(f"test-notify-{uuid.uuid4().hex[:10]}")
    yield NotificationStore(redis, keys, Timing())
    delete_prefix(redis, keys.prefix)
    redis.close()


def test_one_lease_holder_and_takeover_after_it_lapses(store: Any) -> None:
    a = store.hold_lease("a", 300)
    assert a > 0
    assert store.hold_lease("b", 300) == 0  # a holds it: b neither flushes nor sends
    assert store.hold_lease("a", 300) == a  # renewed, same token
    time.sleep(0.4)  # a stops renewing (killed, or paused)
    b = store.hold_lease("b", 300)
    assert b > a  # a new token with every acquisition: a's is stale now
    assert store.hold_lease("a", 300) == 0


def _queue(store: Any, *keys: str) -> None:
    for key in keys:
        note = Notification(key=key, recipient=1, kind="comment", text=key)
        store.redis.rpush(store.keys.outbox, note.to_json())


def test_a_stale_token_claims_nothing_and_a_claim_is_sent_once(store: Any) -> None:
    """The fence, without processes: a reads the outbox, its lease lapses, b takes over and
    sends; a's send with its stale token claims nothing. b then claims; b's claim is still in
    flight when c takes over (b paused in its provider call): c sets it aside, sends only
    what is new, and b's late call is the claim's only send."""
    redis, keys = store.redis, store.keys
    provider = RecordingProvider(redis, keys.pushed)
    _queue(store, "n1", "n2")
    a = store.hold_lease("a", 200)
    time.sleep(0.3)
    b = store.hold_lease("b", 60_000)
    assert store.send(provider, "a", a) == (Counter(), 0)  # stale: refused before any call
    assert redis.llen(keys.outbox) == 2
    assert store.send(provider, "b", b)[0] == Counter({"comment": 2})
    assert store.send(provider, "b", b)[0] == Counter()  # trimmed: nothing left

    _queue(store, "n3")

    class Paused:  # b's provider call outlives its lease: c takes over meanwhile
        def send_many(self, notes: list[Notification]) -> None:
            redis.delete(keys.deliver_lease)
            c = store.hold_lease("c", 60_000)
            _queue(store, "n4", "n3")  # n3 again (a re-queued duplicate): its key is claimed
            assert store.send(provider, "c", c) == (Counter({"comment": 1}), 1)
            provider.send_many(notes)

    assert store.send(Paused(), "b", b)[0] == Counter({"comment": 1})
    pushed = [c["key"] for c in provider.calls()]
    assert sorted(pushed) == ["n1", "n2", "n3", "n4"]  # each once
    assert [n.key for n in store.unconfirmed()] == ["n3"]  # set aside, and sent (by b)
    assert redis.llen(keys.outbox) == 0


def test_a_failed_provider_call_is_retried_with_the_same_keys(store: Any) -> None:
    redis, keys = store.redis, store.keys
    provider = RecordingProvider(redis, keys.pushed)
    _queue(store, "n1", "n2")
    token = store.hold_lease("a", 60_000)

    class Down:
        def send_many(self, notes: list[Notification]) -> None:
            raise ConnectionError("push service down")

    with pytest.raises(ConnectionError):
        store.send(Down(), "a", token)
    assert store.send(provider, "a", token) == (Counter({"comment": 2}), 0)
    assert [c["key"] for c in provider.calls()] == ["n1", "n2"]
    assert store.unconfirmed() == []


def test_apply_refuses_a_batch_straddling_a_recorded_offset(store: Any) -> None:
    redis, keys = store.redis, store.keys
    assert store.apply("t", 0, 0, 4, [["SADD", keys.seen, "0-4"]]) is None
    # the partition's next owner polled from offset 3 (Kafka's commit lagged Redis): refused
    assert store.apply("t", 0, 3, 7, [["SADD", keys.seen, "3-7"]]) == 4
    assert store.apply("t", 0, 5, 7, [["SADD", keys.seen, "5-7"]]) is None
    assert redis.smembers(keys.seen) == {b"0-4", b"5-7"}


def test_a_state_event_is_written_once_whichever_worker_applies_it(store: Any) -> None:
    redis, keys = store.redis, store.keys
    # worker a's poll ended at offset 1, worker b's covers 1..2: b writes only offset 2
    assert store.apply_shared("users", 0, [(0, [["SADD", keys.seen, "a0"]]), (1, [])]) == -1
    b = [(1, [["SADD", keys.seen, "b1"]]), (2, [["SADD", keys.seen, "b2"]])]
    assert store.apply_shared("users", 0, b) == 1
    assert store.apply_shared("users", 0, b) == 2
    assert redis.smembers(keys.seen) == {b"a0", b"b2"}
    assert redis.hget(keys.offsets, "users:0") == b"2"
