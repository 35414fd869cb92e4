"""The follow / block / mute state machine, streaming against SQL, on generated event sequences.

The rule has two homes on purpose: the dbt models (`int_follow_transitions` -> `int_follow_graph`,
and `standing_toggles` -> `int_blocks` / `int_mutes`) hold it for batch, and
`VisibilityGraph.apply_relationship` holds it for the processes that follow events one by one
(serving, fan-out, notifications), which cannot wait for a dbt run. This test holds the two
equal. It loads many short sequences into one raw table, each on its own three users (with a
`user_created` event that sets each user's privacy), and runs dbt once on those tables. Then it
replays each sequence through `apply_relationship` and compares follows, blocks and mutes.

The sequences are built to hit the edges: several events in one millisecond, and re-toggles
(follow, unfollow, follow; block, unblock, block). A second group of sequences keeps the follows
the app refuses and never emits: a `follow` or `follow_approved` while a block stands either
way, or a plain `follow` of a private account (the app sends `follow_request`). Both
definitions ignore those (`int_follow_transitions` asks `block_instants` and
`int_account_privacy` as of the follow), so every sequence of both groups must agree.

Within one millisecond the events arrive in any order: the replay shuffles each millisecond
(seeded) and passes every event's time, and `apply_relationship` must reach the SQL's state
whatever the order (at one instant an end wins; a follow reads the blocks as of the instant
before). The same shuffled replay without the times (plain arrival order) must differ on some
sequences, so the test reaches the case it is for.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from analytics_support import run_dbt

from appconfig import Settings
from ingestion.loader import SourceRecord, load_records
from visibility import VisibilityGraph
from warehouse import clickhouse_client, ensure_raw_tables

START = datetime(2026, 11, 1, tzinfo=UTC)
USERS_PER_SEQUENCE = 3
SEQUENCES = 300  # per group: the app's sequences, then the same shape with refused follows kept
EVENT_TYPES = (
    "follow",
    "follow",
    "unfollow",
    "follow_request",
    "follow_approved",
    "block",
    "unblock",
    "mute",
    "unmute",
)
# the event that undoes (or redoes) the last one, and whether it swaps actor and target (the
# private account approves a request; the requester then unfollows)
NEXT_TOGGLE = {
    "follow": ("unfollow", False),
    "unfollow": ("follow", False),
    "follow_request": ("follow_approved", True),
    "follow_approved": ("unfollow", True),
    "block": ("unblock", False),
    "unblock": ("block", False),
    "mute": ("unmute", False),
    "unmute": ("mute", False),
}
# order within one millisecond, the SQL's "at one instant an end wins": starts, then blocks (an
# end of follows, a start of the block toggle), then the other ends
TIE_RANK = {"block": 1, "unfollow": 2, "unblock": 2, "unmute": 2}
MODELS = (
    "stg_raw__relationships",
    "stg_raw__users",
    "int_account_privacy",
    "int_follow_transitions",
    "int_follow_graph",
    "int_blocks",
    "int_mutes",
)


@dataclass
class Sequence:
    base: int  # its users are base + 1 .. base + USERS_PER_SEQUENCE
    private: set[int]
    events: list[tuple[int, str, int, int]] = field(default_factory=list)  # ms, type, actor, target


def ordered(events: list[tuple[int, str, int, int]]) -> list[tuple[int, str, int, int]]:
    """The SQL's order: by millisecond, ends after starts within one (a stable sort)."""
    return sorted(events, key=lambda e: (e[0], TIE_RANK.get(e[1], 0)))


def refused(event_type: str, actor: int, target: int, blocks: set, private: set[int]) -> bool:
    """What the app does not emit: a follow while a block stands either way, a plain `follow` of
    a private account (it sends `follow_request`), and an approval across a block."""
    if event_type not in ("follow", "follow_approved"):
        return False
    if (actor, target) in blocks or (target, actor) in blocks:
        return True
    return event_type == "follow" and target in private


def generate(rng: random.Random, base: int, *, keep_refused: bool) -> Sequence:
    users = list(range(base + 1, base + USERS_PER_SEQUENCE + 1))
    sequence = Sequence(base, {users[0]} if rng.random() < 0.5 else set())
    ms, last = 0, None
    drafted = []
    for _ in range(rng.randint(3, 12)):
        ms += rng.choice((0, 0, 1, 1_000))  # half the steps land in the same millisecond
        if last is not None and rng.random() < 0.5:  # a re-toggle of the last pair
            event_type, swap = NEXT_TOGGLE[last[0]]
            actor, target = (last[2], last[1]) if swap else (last[1], last[2])
        else:
            actor, target = rng.sample(users, 2)
            event_type = rng.choice(EVENT_TYPES)
        drafted.append((ms, event_type, actor, target))
        last = (event_type, actor, target)
    blocks: set[tuple[int, int]] = set()
    for event in ordered(drafted):
        _, event_type, actor, target = event
        if keep_refused or not refused(event_type, actor, target, blocks, sequence.private):
            sequence.events.append(event)
        if event_type == "block":
            blocks.add((actor, target))
        elif event_type == "unblock":
            blocks.discard((actor, target))
    return sequence


def record(rng: random.Random, position: int, event: tuple[int, str, int, int]) -> SourceRecord:
    ms, event_type, actor, target = event
    occurred = START + timedelta(milliseconds=ms)
    payload = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": occurred.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "producer": "test",
        "user_id": actor,
        "target_user_id": target,
    }
    return SourceRecord(
        "relationships", position, orjson.dumps(payload), START + timedelta(hours=1)
    )


def user_record(position: int, user: int, is_private: bool) -> SourceRecord:
    """The account, created a day before the sequences start; its privacy never changes."""
    payload = {
        "event_id": str(uuid.UUID(int=user, version=4)),
        "event_type": "user_created",
        "schema_version": 1,
        "occurred_at": (START - timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        "producer": "test",
        "user_id": user,
        "username": f"user{user}",
        "is_private": is_private,
        "country": "DE",
    }
    return SourceRecord("users", position, orjson.dumps(payload), START + timedelta(hours=1))


def arrival(sequence: Sequence, rng: random.Random) -> list[tuple[int, str, int, int]]:
    """The events by millisecond, each millisecond's in a random order (a stream's)."""
    events = list(sequence.events)
    rng.shuffle(events)
    return sorted(events, key=lambda e: e[0])  # stable: the shuffle stays within a millisecond


def replay(
    events: list[tuple[int, str, int, int]], private: set[int], *, timed: bool = True
) -> VisibilityGraph:
    graph = VisibilityGraph.from_edges(private_users=private)
    for ms, event_type, actor, target in events:
        graph.apply_relationship(event_type, actor, target, ms if timed else None)
    return graph


def state_of(graph: VisibilityGraph, users: range) -> tuple[set, set, set]:
    follows = {(u, f) for u in users for f in graph.follows(u)}
    return follows, set(graph.block_edges()), set(graph.mute_edges())


def has_refused_follow(sequence: Sequence) -> bool:
    blocks: set[tuple[int, int]] = set()
    for _, event_type, actor, target in ordered(sequence.events):
        if refused(event_type, actor, target, blocks, sequence.private):
            return True
        if event_type == "block":
            blocks.add((actor, target))
        elif event_type == "unblock":
            blocks.discard((actor, target))
    return False


def test_streaming_state_machine_equals_the_dbt_models(tmp_path: Path, settings: Settings) -> None:
    rng = random.Random(12)
    step = 10  # user ids of sequence i: 10 * i + 1 .. 10 * i + 3
    groups = {
        keep: [
            generate(rng, step * (i + keep * SEQUENCES), keep_refused=keep)
            for i in range(SEQUENCES)
        ]
        for keep in (False, True)
    }
    events = [e for sequences in groups.values() for s in sequences for e in s.events]
    accounts = [
        (user, user in s.private)
        for sequences in groups.values()
        for s in sequences
        for user in range(s.base + 1, s.base + USERS_PER_SEQUENCE + 1)
    ]
    records = [record(rng, i, e) for i, e in enumerate(events)]
    records += [user_record(i, user, private) for i, (user, private) in enumerate(accounts)]
    chdb_path = tmp_path / "clickhouse"
    with clickhouse_client(f"chdb://{chdb_path}") as client:
        ensure_raw_tables(client, "raw")
        report = load_records(client, "raw", records)
    assert report.dead_lettered == 0 and report.records == len(records)

    dbt = run_dbt(tmp_path, chdb_path, "run", "--select", *MODELS, schema=settings.analytics_schema)
    assert dbt.returncode == 0, dbt.output[-4000:]
    inter = settings.intermediate_database
    sql: dict[int, tuple[set, set, set]] = {}
    with clickhouse_client(f"chdb://{chdb_path}") as client:
        for index, table in enumerate(("int_follow_graph", "int_blocks", "int_mutes")):
            columns = ("follower_id, followee_id", "blocker_id, blocked_id", "muter_id, muted_id")
            for a, b in client.query(f"select {columns[index]} from {inter}.{table}").result_rows:
                sql.setdefault(int(a) // step, (set(), set(), set()))[index].add((int(a), int(b)))

    empty: tuple[set, set, set] = (set(), set(), set())
    shuffler = random.Random(1212)  # its own stream: the sequences stay those of seed 12
    compared, same_ms, retoggled, differ, untimed_differ = 0, 0, 0, [], 0
    for keep, sequences in groups.items():
        for i, sequence in enumerate(sequences):
            key = i + keep * SEQUENCES
            users = range(sequence.base + 1, sequence.base + USERS_PER_SEQUENCE + 1)
            events = arrival(sequence, shuffler)
            streamed = state_of(replay(events, sequence.private), users)
            if streamed != sql.get(key, empty):
                differ.append((keep, events))
            untimed = state_of(replay(events, sequence.private, timed=False), users)
            untimed_differ += untimed != sql.get(key, empty)
            compared += 1
            times = [e[0] for e in sequence.events]
            same_ms += len(times) != len(set(times))
            pairs = [(e[2], e[3]) for e in sequence.events]
            retoggled += len(pairs) != len(set(pairs))
    # the generator reached the edges it is for, and the states are not all empty
    assert compared == 2 * SEQUENCES and same_ms > SEQUENCES / 2 and retoggled > SEQUENCES / 2
    assert sum(len(state[0]) for state in sql.values()) > SEQUENCES / 4
    assert sum(len(state[1]) for state in sql.values()) > SEQUENCES / 4

    # both groups agree, the one with refused follows too (and it does hold refused follows)
    refusing = sum(has_refused_follow(s) for s in groups[True])
    assert refusing > SEQUENCES / 20, f"only {refusing} sequences hold a refused follow"
    assert not differ, f"{len(differ)} sequences differ, e.g. {[e for _, e in differ[:2]]}"
    # arrival order alone (no instants) is not the SQL's: the shuffle reached same-ms ties
    assert untimed_differ > SEQUENCES / 20, f"only {untimed_differ} differ in arrival order"
