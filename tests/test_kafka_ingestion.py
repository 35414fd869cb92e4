"""Kafka -> ClickHouse on a real broker and real chDB: round trip, SIGKILL crash safety and a
broker restart, each proven by exact counts against the generated workload.

The `events.<family>` topics are shared (by these tests, earlier runs, the benchmark, other
users of the broker), so each test
- positions a fresh consumer group at the topics' end offsets *before* it publishes, and checks
  afterwards that exactly its own records landed in between;
- loads into a fresh ClickHouse database and asserts only on rows whose Kafka address (topic,
  partition, offset) lies in the range it produced.

Workload timestamps are recent (yesterday, UTC) on purpose: the publisher stamps each message
with the record's produced time, and the broker's time retention (168 h) deletes segments whose
newest timestamp is older than that, so a workload dated weeks back vanishes from the topics
within minutes (seen on this broker: "Deleting segment ... due to log retention time 604800000ms
breach based on the largest record timestamp").

chDB allows one process per data directory: consumer subprocesses get their own directory
under `tmp_path`, which this process opens only while no subprocess runs.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from appconfig import Settings, get_settings
from contracts.catalog import FAMILIES
from ingestion.kafka_consumer import drain
from ingestion.kafka_source import TOPICS
from warehouse import DEAD_LETTER_TABLE, clickhouse_client
from workload.config import WorkloadConfig, default_start
from workload.generator import Workload, generate
from workload.kafka_publisher import ensure_topics, publish

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "scripts" / "services" / "kafka.sh"
BATCH_SIZE = 500
MAX_RUN_PROGRESS = 3 * BATCH_SIZE  # per killed run, in the crash test


def _workload(users: int, seed: int) -> Workload:
    config = WorkloadConfig(
        users=users, days=1, seed=seed, bad_fraction=0.03, start=default_start(1)
    )
    return generate(config, progress=False)


# --- Kafka helpers ------------------------------------------------------------------------


def _kafka_consumer(bootstrap: str) -> Any:
    from kafka import KafkaConsumer

    return KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        client_id="test-kafka-offsets",
        enable_auto_commit=False,
    )


@contextmanager
def _admin(bootstrap: str) -> Iterator[Any]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="test-kafka-admin")
    try:
        yield admin
    finally:
        admin.close()


def _partitions(consumer: Any, timeout_s: float = 30.0) -> list[Any]:
    """Every partition of the event topics, once the broker's metadata shows them all."""
    from kafka import TopicPartition

    deadline = time.monotonic() + timeout_s
    while True:
        known = {t: consumer.partitions_for_topic(t) for t in TOPICS}
        if all(known.values()):
            return [TopicPartition(t, p) for t in TOPICS for p in sorted(known[t])]
        if time.monotonic() > deadline:
            raise AssertionError(f"topics without partitions after {timeout_s}s: {known}")
        time.sleep(0.2)


@dataclass
class Published:
    """One test's records on the shared topics: offsets [start, end) per partition."""

    workload: Workload
    group_id: str
    start: dict[Any, int]
    end: dict[Any, int]

    @property
    def partitions(self) -> list[Any]:
        return list(self.start)

    @property
    def messages(self) -> int:
        return sum(self.end[tp] - self.start[tp] for tp in self.start)

    def ours(self) -> str:
        """SQL condition: the row came from an offset this test produced."""
        terms = [
            f"(_source = 'kafka:{tp.topic}:{tp.partition}'"
            f" AND _position >= {self.start[tp]} AND _position < {self.end[tp]})"
            for tp in self.partitions
            if self.end[tp] > self.start[tp]
        ]
        return "(" + " OR ".join(terms) + ")"

    def committed(self, admin: Any) -> int:
        """Messages of ours that the group has committed (0 before its first commit)."""
        offsets = admin.list_group_offsets({self.group_id: self.partitions})[self.group_id]
        total = 0
        for tp in self.partitions:
            meta = offsets.get(tp)
            if meta is not None and meta.offset >= 0:
                total += max(0, min(meta.offset, self.end[tp]) - self.start[tp])
        return total


def _retry_while_coordinator_loads(call: Any, timeout: float = 60.0) -> Any:
    """On a fresh broker the first group request creates __consumer_offsets: the coordinator
    answers 'not available' (a retriable error) until it is ready."""
    from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError

    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _new_group_at_end(bootstrap: str) -> tuple[str, dict[Any, int]]:
    """A fresh group id, committed at today's end offsets of every event partition."""
    from kafka.errors import NoError
    from kafka.structs import OffsetAndMetadata

    ensure_topics(bootstrap)
    group_id = f"test-kafka-ingestion-{uuid.uuid4().hex[:12]}"
    consumer = _kafka_consumer(bootstrap)
    try:
        partitions = _partitions(consumer)
        start = consumer.end_offsets(partitions)
    finally:
        consumer.close()
    with _admin(bootstrap) as admin:
        errors = _retry_while_coordinator_loads(
            lambda: admin.alter_group_offsets(
                group_id, {tp: OffsetAndMetadata(start[tp], "", -1) for tp in partitions}
            )
        )
    assert all(e is NoError for e in errors.values()), errors
    return group_id, dict(start)


def _publish_after(
    bootstrap: str, workload: Workload, group_id: str, start: dict[Any, int]
) -> Published:
    """The workload published after `start` (the group's committed offsets)."""
    report = publish(workload.records, bootstrap)
    consumer = _kafka_consumer(bootstrap)
    try:
        end = consumer.end_offsets(list(start))
    finally:
        consumer.close()
    published = Published(workload, group_id, start, dict(end))
    assert report.messages == len(workload.records)
    assert published.messages == len(workload.records), (
        f"{published.messages} messages landed for {len(workload.records)} published: another "
        "producer wrote to the events topics during the test"
    )
    return published


def _publish_for_new_group(bootstrap: str, workload: Workload) -> Published:
    """A fresh group committed at today's end offsets, then the workload published after them."""
    group_id, start = _new_group_at_end(bootstrap)
    return _publish_after(bootstrap, workload, group_id, start)


def _appended_since(bootstrap: str, published: Published) -> int:
    """Messages other producers appended to the topics after ours (0 when the test was alone:
    then the consumer's own report must be about exactly our records)."""
    consumer = _kafka_consumer(bootstrap)
    try:
        now = consumer.end_offsets(published.partitions)
    finally:
        consumer.close()
    return sum(now[tp] - published.end[tp] for tp in published.partitions)


def _kafka_sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), command], capture_output=True, text=True, timeout=180
    )


def _wait_for_kafka(bootstrap: str, published: Published, timeout_s: float = 90.0) -> float:
    """Until the broker answers offsets for our partitions and our group's committed offsets."""
    started = time.monotonic()
    last: Exception | None = None
    while time.monotonic() - started < timeout_s:
        try:
            consumer = _kafka_consumer(bootstrap)
            try:
                consumer.end_offsets(published.partitions)
            finally:
                consumer.close()
            with _admin(bootstrap) as admin:
                published.committed(admin)
            return time.monotonic() - started
        except Exception as exc:  # retried until the deadline
            last = exc
            time.sleep(0.5)
    raise AssertionError(f"Kafka not ready {timeout_s}s after a restart: {last!r}")


# --- the consumer process -----------------------------------------------------------------


@dataclass
class ConsumerProcess:
    """`python -m ingestion.kafka_consumer` with its own chDB directory and database."""

    bootstrap: str
    group_id: str
    workdir: Path
    database: str = field(default_factory=lambda: f"raw_{uuid.uuid4().hex[:12]}")
    # static membership: every run of this process is the same member of the group, so a run
    # started after a SIGKILL takes the partitions back at once (no 45 s session wait)
    instance_id: str = field(default_factory=lambda: f"member-{uuid.uuid4().hex[:8]}")
    runs: int = 0

    @property
    def chdb_url(self) -> str:
        return f"chdb://{self.workdir / 'ch'}"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PLATFORM_", "CLICKHOUSE_", "KAFKA_", "S3_", "OBJECT_STORE_"))
            and k not in ("REDIS_URL", "METADATA_DB_URL")
        }
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            CLICKHOUSE_URL=self.chdb_url,
            CLICKHOUSE_RAW_DATABASE=self.database,
            PLATFORM_DATA_DIR=str(self.workdir / "data"),
        )
        return env

    def start(self, *extra: str) -> subprocess.Popen[str]:
        self.runs += 1
        out = (self.workdir / f"consumer-{self.runs}.out").open("w")
        err = (self.workdir / f"consumer-{self.runs}.err").open("w")
        with out, err:  # the child keeps its own descriptors
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ingestion.kafka_consumer",
                    "--batch-size",
                    str(BATCH_SIZE),
                    "--group-id",
                    self.group_id,
                    "--instance-id",
                    self.instance_id,
                    *extra,
                ],
                cwd=REPO,
                env=self.env(),
                stdout=out,
                stderr=err,
                text=True,
            )

    def output(self) -> tuple[dict[str, Any] | None, str]:
        """The JSON report of the last run (None if it printed none) and its stderr."""
        out = (self.workdir / f"consumer-{self.runs}.out").read_text().strip()
        err = (self.workdir / f"consumer-{self.runs}.err").read_text()
        return (json.loads(out.splitlines()[-1]) if out else None), err

    def run_to_end(self, timeout_s: float = 120.0) -> dict[str, Any]:
        proc = self.start()
        try:
            proc.wait(timeout=timeout_s)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        report, err = self.output()
        assert proc.returncode == 0 and report is not None, f"exit {proc.returncode}: {err[-3000:]}"
        return report

    @contextmanager
    def client(self) -> Iterator[Client]:
        """This process's view of the consumer's chDB; only between subprocess runs."""
        with clickhouse_client(self.chdb_url) as client:
            yield client


def _wait_for_progress(
    proc: subprocess.Popen[str], bootstrap: str, published: Published, beyond: int, timeout_s: float
) -> int | None:
    """The group's committed count once it passes `beyond`; None if the process ended first."""
    deadline = time.monotonic() + timeout_s
    with _admin(bootstrap) as admin:
        while time.monotonic() < deadline:
            committed = published.committed(admin)
            if committed > beyond:
                return committed
            if proc.poll() is not None:
                return None
            time.sleep(0.02)
    raise AssertionError(f"the consumer committed nothing within {timeout_s}s")


# --- what ClickHouse must hold ------------------------------------------------------------


def _rows_of_ours(client: Client, database: str, published: Published) -> int:
    where = published.ours()
    tables = [*FAMILIES, DEAD_LETTER_TABLE]
    union = " UNION ALL ".join(f"SELECT count() FROM {database}.{t} WHERE {where}" for t in tables)
    return sum(int(row[0]) for row in client.query(union).result_rows)


def _assert_exactly_once(client: Client, database: str, published: Published) -> None:
    """Every valid event once in its family table, every bad record once in dead_letters."""
    workload, where = published.workload, published.ours()
    manifest = workload.manifest
    valid_ids = {orjson.loads(r.line)["event_id"].lower() for r in workload.records if not r.is_bad}
    assert len(valid_ids) == manifest["valid_events"]

    # per family: rows == distinct event ids == the manifest, and no FINAL anywhere
    per_family = {}
    for family in FAMILIES:
        rows, ids = client.query(
            f"SELECT count(), uniqExact(event_id) FROM {database}.{family} WHERE {where}"
        ).result_rows[0]
        per_family[family] = (int(rows), int(ids))
        whole_rows, whole_ids = client.query(
            f"SELECT count(), uniqExact(event_id) FROM {database}.{family}"
        ).result_rows[0]
        assert whole_rows == whole_ids, f"{family}: duplicate rows in the table"
    assert per_family == {f: (n, n) for f, n in manifest["valid_by_family"].items()}

    union = " UNION ALL ".join(
        f"SELECT lower(toString(event_id)) FROM {database}.{family} WHERE {where}"
        for family in FAMILIES
    )
    assert {row[0] for row in client.query(union).result_rows} == valid_ids

    # dead letters: exactly the bad records (by payload bytes), each once, with reasons and
    # the Kafka address it was read from
    dead = client.query(
        "SELECT hex(payload), reasons, source_kind, kafka_topic, kafka_partition, kafka_offset,"
        f" _source, _position FROM {database}.{DEAD_LETTER_TABLE} WHERE {where}"
    ).result_rows
    assert len(dead) == manifest["bad_events"]
    assert len({(row[6], row[7]) for row in dead}) == len(dead), "a record dead-lettered twice"
    assert Counter(row[0] for row in dead) == Counter(
        r.line.hex().upper() for r in workload.records if r.is_bad
    )
    for payload, reasons, kind, topic, partition, offset, source, position in dead:
        assert reasons and all(reasons), payload
        assert kind == "kafka"
        assert topic is not None and partition is not None and offset is not None
        assert (source, position) == (f"kafka:{topic}:{partition}", offset)
    duplicates = sum(
        1
        for row in dead
        if any(r.startswith("event_id: duplicate of the event at kafka:") for r in row[1])
    )
    assert duplicates == manifest["bad_by_kind"]["duplicate"]
    total = client.query(f"SELECT count() FROM {database}.{DEAD_LETTER_TABLE}").result_rows[0][0]
    distinct = client.query(
        f"SELECT uniqExact(_source, _position) FROM {database}.{DEAD_LETTER_TABLE}"
    ).result_rows[0][0]
    assert total == distinct, "the same Kafka message dead-lettered twice"


def _assert_group_at_end(bootstrap: str, published: Published) -> None:
    """Lag 0 for our records: the group has committed past every message we produced."""
    with _admin(bootstrap) as admin:
        assert published.committed(admin) == published.messages


# --- the tests ----------------------------------------------------------------------------


def test_round_trip_loads_exactly_the_valid_events_and_dead_letters_the_bad(
    settings: Settings,
    clickhouse: Client,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    published = _publish_for_new_group(kafka_bootstrap, _workload(users=140, seed=41))
    manifest = published.workload.manifest
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    get_settings.cache_clear()

    report, batches, lag = drain(group_id=published.group_id)

    _assert_exactly_once(clickhouse, settings.clickhouse_raw_database, published)
    _assert_group_at_end(kafka_bootstrap, published)
    assert batches >= 1 and report.already_loaded == 0
    assert set(lag) == set(TOPICS)
    if _appended_since(kafka_bootstrap, published) == 0:
        # alone on the topics: the consumer's own report is about exactly our records
        assert report.records == len(published.workload.records)
        assert report.loaded == manifest["valid_events"]
        assert dict(+report.loaded_by_family) == {
            k: v for k, v in manifest["valid_by_family"].items() if v
        }
        assert report.dead_lettered == manifest["bad_events"]
        assert not any(lag.values()), lag


@dataclass
class Kill:
    delay_s: float  # after the run's first commit
    killed: bool  # False: the process had already exited on its own
    committed: int  # messages the group had committed when the process was gone
    rows: int  # rows of ours in ClickHouse (loaded + dead-lettered) at that moment


def test_sigkill_at_random_points_then_restart_loads_everything_exactly_once(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    published = _publish_for_new_group(kafka_bootstrap, _workload(users=250, seed=42))
    total = published.messages
    consumer = ConsumerProcess(kafka_bootstrap, published.group_id, tmp_path)
    rng = random.Random(20261124)

    kills: list[Kill] = []
    to_progress: list[float] = []  # seconds from a run's start to its first commit
    for _ in range(6):
        with _admin(kafka_bootstrap) as admin:
            before = published.committed(admin)
        launched = time.monotonic()
        proc = consumer.start()
        try:
            # kill at a random point after the run has made progress of its own, so that every
            # kill lands mid-consumption, inside a batch or between an insert and its commit
            _wait_for_progress(proc, kafka_bootstrap, published, before, timeout_s=90)
            to_progress.append(time.monotonic() - launched)
            # a random delay, cut short once the run has committed MAX_RUN_PROGRESS messages so
            # that six kills cannot drain the topics however fast the consumer is
            delay = rng.uniform(0.0, 0.5)
            waited = time.monotonic()
            with _admin(kafka_bootstrap) as admin:
                while (
                    time.monotonic() - waited < delay
                    and published.committed(admin) < before + MAX_RUN_PROGRESS
                ):
                    time.sleep(0.005)
            delay = time.monotonic() - waited
            killed = proc.poll() is None
            if killed:
                proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        assert proc.returncode == -signal.SIGKILL or not killed
        with _admin(kafka_bootstrap) as admin:
            committed = published.committed(admin)
        with consumer.client() as client:
            rows = _rows_of_ours(client, consumer.database, published)
        kills.append(Kill(round(delay, 3), killed, committed, rows))

    # every kill happened before the topics were drained; loaded rows never fall behind the
    # committed offsets (the commit follows the insert)
    mid = [k for k in kills if k.killed and k.committed < total]
    assert len(mid) >= 5, kills
    # the same static member after a SIGKILL: its partitions back at once, not after the dead
    # session's 45 s (the time includes starting Python and chDB on a loaded machine)
    assert max(to_progress[1:]) < 30, to_progress
    assert all(k.rows >= k.committed for k in kills), kills

    final = consumer.run_to_end()
    assert final["loaded"] + final["dead_lettered"] + final["already_loaded"] == final["records"]
    if _appended_since(kafka_bootstrap, published) == 0:
        # the final run re-reads from the last commit: what the killed runs had already
        # inserted past it comes back and is recognised by its address, the rest is loaded now
        last = kills[-1]
        assert final["records"] == total - last.committed, (final, kills)
        assert final["already_loaded"] == last.rows - last.committed, (final, kills)
        assert not any(final["lag"].values()), final

    with consumer.client() as client:
        _assert_exactly_once(client, consumer.database, published)
    _assert_group_at_end(kafka_bootstrap, published)
    redelivered = sum(1 for k in kills if k.rows > k.committed)
    print(
        f"\n{total} messages; kills (delay s, committed, rows in ClickHouse): "
        f"{[(k.delay_s, k.committed, k.rows) for k in kills]}; {redelivered} kills left inserted "
        f"rows uncommitted; seconds to first commit per run: {[round(t, 1) for t in to_progress]}; "
        f"final run: {final}"
    )


def test_broker_restart_during_consumption_loses_nothing(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    published = _publish_for_new_group(kafka_bootstrap, _workload(users=150, seed=43))
    total = published.messages
    consumer = ConsumerProcess(kafka_bootstrap, published.group_id, tmp_path)
    events: list[str] = []
    started = time.monotonic()

    def note(what: str) -> None:
        events.append(f"{time.monotonic() - started:5.1f}s {what}")

    proc = consumer.start()
    try:
        at_stop = _wait_for_progress(proc, kafka_bootstrap, published, 2 * BATCH_SIZE - 1, 90)
        assert at_stop is not None and at_stop < total, "consumed everything before the stop"
        note(f"committed {at_stop}/{total}; stopping Kafka")
        stopped = _kafka_sh("stop")
        assert stopped.returncode == 0, stopped.stderr
        note(f"Kafka stopped; consumer alive: {proc.poll() is None}")
        time.sleep(3)
        restarted = _kafka_sh("start")
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        note(f"Kafka started, ready after {_wait_for_kafka(kafka_bootstrap, published):.1f}s more")
        try:
            proc.wait(timeout=150)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the consumer hung after the broker restart: {events}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if _kafka_sh("status").returncode != 0:  # never leave the broker down
            _kafka_sh("start")
    first, err = consumer.output()
    note(f"consumer exited {proc.returncode}: {first}")

    if proc.returncode != 0 or first is None or any(first["lag"].values()):
        # it gave up during the outage: that must be a Kafka error, never a ClickHouse one, and
        # a restarted consumer must finish the job
        assert "kafka.errors" in err or first is not None, err[-3000:]
        note(f"stderr tail: {err.strip().splitlines()[-1:] if err.strip() else ''}")
        final = consumer.run_to_end()
        note(f"restarted consumer: {final}")
    else:
        assert (
            first["loaded"] + first["dead_lettered"] + first["already_loaded"] == first["records"]
        )

    with consumer.client() as client:
        _assert_exactly_once(client, consumer.database, published)
    _assert_group_at_end(kafka_bootstrap, published)
    print("\n" + "\n".join(events))


def _stable_members(bootstrap: str, group_id: str) -> dict[str, tuple[str, int]]:
    """group.instance.id -> (member id, partitions assigned), once the group is Stable."""
    with _admin(bootstrap) as admin:
        group = admin.describe_groups([group_id])[group_id]
    if group.get("group_state") != "Stable":
        return {}
    members: dict[str, tuple[str, int]] = {}
    for member in group["members"]:
        assignment = member.get("member_assignment") or {}
        partitions = sum(len(p["partitions"]) for p in assignment.get("assigned_partitions", []))
        members[str(member["group_instance_id"])] = (str(member["member_id"]), partitions)
    return members


def test_two_members_share_the_partitions_and_a_killed_one_takes_its_own_back(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """Two consumer processes in one group (each its own chDB here: embedded ClickHouse is one
    process's; a shared server dedups by address instead). Static membership keeps each
    member's partitions its own: the member killed mid-run and restarted with its id resumes
    from its group's commit into its own database, so the union is every event exactly once."""
    group_id, start = _new_group_at_end(kafka_bootstrap)
    members = [
        ConsumerProcess(kafka_bootstrap, group_id, tmp_path / name, instance_id=name)
        for name in ("member-a", "member-b")
    ]
    for member in members:
        member.workdir.mkdir()
    idle = ("--idle-polls", "20")  # both join before anything is published, then stay
    procs = [member.start(*idle) for member in members]
    try:
        deadline = time.monotonic() + 120
        while len(assigned := _stable_members(kafka_bootstrap, group_id)) < 2:
            assert time.monotonic() < deadline, f"the group never had two members: {assigned}"
            assert all(p.poll() is None for p in procs), [m.output() for m in members]
            time.sleep(0.2)
        assert all(n > 0 for _, n in assigned.values()), assigned  # the work is shared

        published = _publish_after(kafka_bootstrap, _workload(users=250, seed=44), group_id, start)
        at_kill = _wait_for_progress(procs[0], kafka_bootstrap, published, 0, timeout_s=90)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        assert at_kill is not None and at_kill < published.messages, "drained before the kill"
        restarted = time.monotonic()
        procs[0] = members[0].start(*idle)
        # the new process replaces the dead member (a new member id) with the same partitions,
        # and member-b keeps its own: no rebalance, no wait for the dead session to expire
        while (now := _stable_members(kafka_bootstrap, group_id)).get(
            "member-a", assigned["member-a"]
        )[0] == assigned["member-a"][0]:
            assert time.monotonic() - restarted < 30, now
            time.sleep(0.1)
        rejoined = time.monotonic() - restarted
        assert now["member-b"] == assigned["member-b"], (assigned, now)
        assert now["member-a"][1] == assigned["member-a"][1], (assigned, now)
        for proc in procs:
            proc.wait(timeout=180)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    reports = [member.output() for member in members]
    assert all(
        p.returncode == 0 and r is not None for p, (r, _) in zip(procs, reports, strict=True)
    ), reports

    valid = {
        orjson.loads(r.line)["event_id"].lower() for r in published.workload.records if not r.is_bad
    }
    seen: Counter[str] = Counter()
    dead_letters = 0
    for member in members:
        with member.client() as client:
            union = " UNION ALL ".join(
                f"SELECT lower(toString(event_id)) FROM {member.database}.{family}"
                f" WHERE {published.ours()}"
                for family in FAMILIES
            )
            ids = [row[0] for row in client.query(union).result_rows]
            assert ids, f"{member.instance_id} loaded nothing"
            seen.update(ids)
            dead_letters += int(
                client.query(
                    f"SELECT count() FROM {member.database}.{DEAD_LETTER_TABLE}"
                    f" WHERE {published.ours()}"
                ).result_rows[0][0]
            )
    assert set(seen) == valid
    assert max(seen.values()) == 1, [i for i, n in seen.items() if n > 1][:5]
    assert dead_letters == published.workload.manifest["bad_events"]
    _assert_group_at_end(kafka_bootstrap, published)
    print(f"\ntwo members {assigned}; the killed one had its partitions back in {rejoined:.1f} s")
