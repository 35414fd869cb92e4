"""Kafka -> ClickHouse events/s, beside a bare kafka-python consume loop over the same messages.

Publishes a generated workload to the `events.<family>` topics (and reports the produce rate),
then, in the same run and over exactly those messages:
- bare: a kafka-python consumer with the platform's consumer settings (`make_consumer`, fresh
  group) polls until every published message has been seen, touching each value; no commit;
- Kafka -> ClickHouse: `ingestion.kafka_consumer.drain` in process, fresh group, fresh chDB
  directory: poll, parse, validate, de-duplicate, insert into the raw tables and dead letters,
  commit after each batch (the next poll overlaps the current load, `OverlappedBatches`).
Both groups start at the offsets the topics had just before the publish, so older messages on the
shared topics are not read. Both rates count from the first poll (which joins the group) to the
end of the batch that completes the messages; setup (client, chDB, tables) and drain's trailing
idle polls are reported apart. Target: Kafka -> ClickHouse at least 0.70 of bare.

Message timestamps are the records' produced times, so the workload window is the most recent
complete days (older than the broker's 168 h retention it would be deleted under us).

    uv run python -m bench.kafka_ingest [--users 1000 --days 1] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from appconfig import get_settings
from ingestion import kafka_consumer
from ingestion.kafka_source import TOPICS, make_consumer
from workload.config import WorkloadConfig, default_start
from workload.generator import generate
from workload.kafka_publisher import ensure_topics, publish

SERVICES_ENV = Path(__file__).resolve().parent.parent / ".services" / "services.env"


def default_bootstrap() -> str:
    configured = get_settings().kafka_bootstrap_servers
    if configured:
        return configured
    if SERVICES_ENV.exists():
        for line in SERVICES_ENV.read_text().splitlines():
            if line.startswith("KAFKA_BOOTSTRAP_SERVERS="):
                return line.split("=", 1)[1].strip()
    return "127.0.0.1:19092"


def partitions_and_end_offsets(bootstrap: str) -> dict[Any, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), client_id="bench-offsets", enable_auto_commit=False
    )
    try:
        deadline = time.monotonic() + 30
        while not all(consumer.partitions_for_topic(t) for t in TOPICS):
            if time.monotonic() > deadline:
                raise SystemExit("the event topics have no partitions in the broker's metadata")
            time.sleep(0.2)
        partitions = [
            TopicPartition(t, p) for t in TOPICS for p in sorted(consumer.partitions_for_topic(t))
        ]
        return dict(consumer.end_offsets(partitions))
    finally:
        consumer.close()


def fresh_group(bootstrap: str, start: dict[Any, int], label: str) -> str:
    """A new consumer group whose committed offsets are `start`."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import NoError
    from kafka.structs import OffsetAndMetadata

    group_id = f"bench-{label}-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="bench-admin")
    try:
        errors = admin.alter_group_offsets(
            group_id, {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in start.items()}
        )
    finally:
        admin.close()
    if any(e is not NoError for e in errors.values()):
        raise SystemExit(f"could not position group {group_id}: {errors}")
    return group_id


def bare_consume(
    bootstrap: str, start: dict[Any, int], end: dict[Any, int]
) -> tuple[float, int, int]:
    """Seconds from the first poll until every message in [start, end) was seen; messages, bytes."""
    consumer = make_consumer(bootstrap, group_id=fresh_group(bootstrap, start, "bare"))
    expected = sum(end[tp] - start[tp] for tp in start)
    seen = n_bytes = 0
    try:
        started = time.perf_counter()
        while seen < expected:
            polled = consumer.poll(timeout_ms=1000, max_records=20_000)
            if not polled and time.perf_counter() - started > 120:
                raise SystemExit(f"bare consumer stalled at {seen} of {expected} messages")
            for tp, messages in polled.items():
                for message in messages:
                    if message.offset < end[tp]:
                        seen += 1
                        n_bytes += len(message.value or b"")
        seconds = time.perf_counter() - started
    finally:
        consumer.close(autocommit=False)
    return seconds, seen, n_bytes


def timed_drain(
    bootstrap: str, start: dict[Any, int], chdb_dir: Path, *, profile: bool = False
) -> tuple[float, float, Any, pstats.Stats | None]:
    """`drain` in process: (seconds from first poll to the last loaded batch, wall seconds
    including setup and idle polls, the load report, profile of the whole call)."""
    os.environ.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        CLICKHOUSE_URL=f"chdb://{chdb_dir}",
        CLICKHOUSE_RAW_DATABASE=f"bench_{uuid.uuid4().hex[:10]}",
        PLATFORM_DATA_DIR=str(chdb_dir.parent / "data"),
    )
    get_settings.cache_clear()
    group_id = fresh_group(bootstrap, start, "drain")

    marks: dict[str, float] = {}
    original = kafka_consumer.OverlappedBatches

    class Timed(original):  # type: ignore[misc, valid-type]
        def step(self) -> Any:
            marks.setdefault("first_poll", time.perf_counter())
            return super().step()

        def finish(self) -> Any:
            report = super().finish()
            if report is not None:  # the batch is loaded and its offsets committed
                marks["last_batch"] = time.perf_counter()
            return report

    kafka_consumer.OverlappedBatches = Timed  # type: ignore[misc]
    profiler = cProfile.Profile() if profile else None
    try:
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        report, _batches, lag = kafka_consumer.drain(group_id=group_id)
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - started
    finally:
        kafka_consumer.OverlappedBatches = original  # type: ignore[misc]
    if any(lag.values()):
        print(f"note: drain ended with lag {lag} (another producer on the topics?)")
    stats = pstats.Stats(profiler) if profiler else None
    return marks["last_batch"] - marks["first_poll"], wall, report, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bootstrap", default=default_bootstrap())
    parser.add_argument("--profile", action="store_true", help="cProfile the last drain")
    args = parser.parse_args()
    bootstrap = args.bootstrap

    workload = generate(
        WorkloadConfig(
            users=args.users, days=args.days, seed=args.seed, start=default_start(args.days)
        )
    )
    manifest = workload.manifest
    ensure_topics(bootstrap)
    start = partitions_and_end_offsets(bootstrap)
    produced = publish(workload.records, bootstrap)
    end = partitions_and_end_offsets(bootstrap)
    n = sum(end[tp] - start[tp] for tp in start)
    if n != len(workload.records):
        raise SystemExit(
            f"{n} messages landed for {len(workload.records)} published: another producer?"
        )
    print(
        f"workload: {args.users} users x {args.days} day(s), seed {args.seed}: {n:,} records "
        f"({manifest['valid_events']:,} valid, {manifest['bad_events']:,} bad) on {len(start)} partitions"
    )
    print(
        f"produce (workload.kafka_publisher.publish, acks=all): {produced.messages_per_second:,.0f} "
        f"msgs/s ({produced.seconds:.2f} s)"
    )

    bare_rates, drain_rates = [], []
    last_stats = None
    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(args.repeat):
            runs = ("bare", "drain") if attempt % 2 == 0 else ("drain", "bare")
            line = [f"run {attempt + 1}:"]
            for which in runs:
                if which == "bare":
                    seconds, seen, n_bytes = bare_consume(bootstrap, start, end)
                    assert seen == n
                    bare_rates.append(n / seconds)
                    line.append(f"bare {seconds:.2f} s ({n_bytes / seconds / 1e6:.1f} MB/s)")
                else:
                    profile = args.profile and attempt == args.repeat - 1
                    seconds, wall, report, stats = timed_drain(
                        bootstrap, start, Path(tmp) / f"ch{attempt}", profile=profile
                    )
                    if report.records < n or report.loaded < manifest["valid_events"]:
                        raise SystemExit(
                            f"drain read {report.records:,} records and loaded {report.loaded:,}"
                            f" events; expected {n:,} and {manifest['valid_events']:,}"
                        )
                    if report.records > n:
                        line.append(
                            f"[drain also read {report.records - n:,} messages that another "
                            "producer appended meanwhile; its rate counts every message read]"
                        )
                    drain_rates.append(report.records / seconds)
                    last_stats = stats or last_stats
                    line.append(
                        f"Kafka -> ClickHouse {seconds:.2f} s (wall {wall:.2f} s with setup and idle polls)"
                    )
            print(line[0], ", ".join(line[1:]))

    bare, drained = max(bare_rates), max(drain_rates)
    print(f"bare kafka-python consume: {bare:,.0f} msgs/s (best of {args.repeat})")
    print(f"Kafka -> ClickHouse (drain): {drained:,.0f} events/s (best of {args.repeat})")
    print(f"ratio drain/bare: {drained / bare:.2f} (target >= 0.70)")
    if last_stats is not None:
        print("\nprofile of the last drain (cumulative, top 25):")
        last_stats.sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
