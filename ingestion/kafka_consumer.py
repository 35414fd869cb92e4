"""A standalone Kafka -> ClickHouse consumer process: `python -m ingestion.kafka_consumer`.

It loads micro-batches until the topics are drained (or a limit is reached) and exits, so it can
run from a Dagster job, a cron, or a test that kills it with SIGKILL mid-batch. Offsets are
committed only after each batch is in ClickHouse. The next batch is polled while the current one
loads (`OverlappedBatches`).

Run N of them with one `--group-id` to share the partitions (a consumer group). Give each its
own `--instance-id` (static membership): a member restarted after a crash with the same id gets
its partitions back at once, where a dynamic member waits out the dead one's session (45 s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from appconfig import get_settings
from experiments import ExperimentRegistry
from ingestion.kafka_source import OverlappedBatches, consumer_lag, make_consumer
from ingestion.loader import LoadReport
from warehouse import clickhouse_client, ensure_raw_tables


def drain(
    *,
    max_batches: int | None = None,
    max_seconds: float | None = None,
    idle_polls: int = 3,
    batch_size: int = 20_000,
    group_id: str | None = None,
    instance_id: str | None = None,
    join_timeout_seconds: float = 120.0,
) -> tuple[LoadReport, int, dict[str, int]]:
    """Consume until `idle_polls` empty polls in a row (or a limit); returns the load, the
    number of batches and the remaining lag per topic."""
    settings = get_settings()
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("KAFKA_BOOTSTRAP_SERVERS is not set: there is no broker to consume from")
    overrides: dict[str, str] = {"group_id": group_id} if group_id else {}
    instance_id = instance_id or settings.kafka_group_instance_id
    if instance_id:
        overrides["group_instance_id"] = instance_id
    consumer = make_consumer(settings.kafka_bootstrap_servers, **overrides)
    registry = ExperimentRegistry(Path(settings.experiments_dir))
    total, batches, idle = LoadReport(), 0, 0
    started = time.monotonic()
    try:
        with (
            clickhouse_client(settings.clickhouse_url) as client,
            OverlappedBatches(
                client,
                settings.clickhouse_raw_database,
                consumer,
                max_records=batch_size,
                known_arm=registry.knows_arm,
                before_load=registry.refresh,
            ) as pipeline,
        ):
            ensure_raw_tables(client, settings.clickhouse_raw_database)
            while idle < idle_polls:
                if max_batches is not None and batches >= max_batches:
                    break
                if max_seconds is not None and time.monotonic() - started > max_seconds:
                    break
                polled, report = pipeline.step()
                if report is not None:
                    total.merge(report)
                if not polled:
                    if not consumer.assignment():  # still joining the group: not idle yet
                        if time.monotonic() - started > join_timeout_seconds:
                            raise SystemExit(
                                f"no partitions assigned after {join_timeout_seconds:.0f} s"
                            )
                        continue
                    idle += 1
                    continue
                idle = 0
                batches += 1
            report = pipeline.finish()
            if report is not None:
                total.merge(report)
        lag = consumer_lag(consumer)
    finally:
        consumer.close(autocommit=False)
    return total, batches, lag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-batches", type=int)
    parser.add_argument("--max-seconds", type=float)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument(
        "--idle-polls", type=int, default=3, help="stop after this many empty 1 s polls in a row"
    )
    parser.add_argument("--group-id")
    parser.add_argument(
        "--instance-id",
        help="static member id in the group (default $KAFKA_GROUP_INSTANCE_ID; empty: dynamic)",
    )
    args = parser.parse_args()
    report, batches, lag = drain(
        max_batches=args.max_batches,
        max_seconds=args.max_seconds,
        batch_size=args.batch_size,
        idle_polls=args.idle_polls,
        group_id=args.group_id,
        instance_id=args.instance_id,
    )
    json.dump(
        {
            "batches": batches,
            "records": report.records,
            "loaded": report.loaded,
            "dead_lettered": report.dead_lettered,
            "already_loaded": report.already_loaded,
            "lag": lag,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
