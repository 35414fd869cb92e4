"""Landing zone -> ClickHouse events/s, beside a bare `insert_arrow` of the same rows.

The bare baseline inserts the already-built Arrow tables of exactly the rows the loader keeps;
the loader's figure includes reading files, parsing, validating, de-duplicating by event_id
and writing dead letters. Target: at least half the bare rate.

    uv run python -m bench.ingest [--users 1000 --days 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from contracts.catalog import CONTRACTS_BY_TYPE
from contracts.validation import parse_and_validate
from ingestion.landing_source import landing_batches
from ingestion.loader import _family_table, load_records
from objectstore import open_store
from warehouse import clickhouse_client, ensure_raw_tables
from workload.config import WorkloadConfig
from workload.generator import generate
from workload.writer import write_workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"file://{tmp}/objects")
        workload = generate(
            WorkloadConfig(users=args.users, days=args.days, seed=11), progress=False
        )
        written = write_workload(store, "landing/events", workload)
        partitions = sorted(written.partitions)
        batches = [records for _, records in landing_batches(store, "landing/events", partitions)]
        n_records = sum(len(r) for r in batches)

        # the same valid rows as Arrow tables, built outside the timed region
        by_family: dict[str, list] = defaultdict(list)
        seen: set[str] = set()
        for records in batches:
            for record in records:
                payload, reasons = parse_and_validate(record.line, now=record.received_at)
                if reasons or payload is None or payload["event_id"] in seen:
                    continue
                seen.add(payload["event_id"])
                by_family[CONTRACTS_BY_TYPE[payload["event_type"]].family].append((record, payload))
        tables = {
            family: _family_table(family, rows, "bench") for family, rows in by_family.items()
        }
        n_valid = sum(t.num_rows for t in tables.values())

        loader_rates, bare_rates = [], []
        with clickhouse_client(f"chdb://{Path(tmp) / 'ch'}") as client:
            for attempt in range(args.repeat):
                db_loader, db_bare = f"bench_loader_{attempt}", f"bench_bare_{attempt}"
                ensure_raw_tables(client, db_loader)
                ensure_raw_tables(client, db_bare)

                started = time.perf_counter()
                loaded = 0
                for records in batches:
                    loaded += load_records(client, db_loader, records).loaded
                loader_seconds = time.perf_counter() - started

                started = time.perf_counter()
                for family, table in tables.items():
                    client.insert_arrow(f"{db_bare}.{family}", table)
                bare_seconds = time.perf_counter() - started

                assert loaded == n_valid, (loaded, n_valid)
                loader_rates.append(n_records / loader_seconds)
                bare_rates.append(n_valid / bare_seconds)
                print(
                    f"run {attempt + 1}: loader {loader_seconds:.2f} s, bare insert_arrow {bare_seconds:.2f} s"
                )

    loader, bare = max(loader_rates), max(bare_rates)
    print(f"records: {n_records:,} ({n_valid:,} valid) in {len(partitions)} hourly partitions")
    print(f"landing -> ClickHouse (loader): {loader:,.0f} records/s (best of {args.repeat})")
    print(f"bare insert_arrow of the valid rows: {bare:,.0f} rows/s (best of {args.repeat})")
    print(f"ratio loader/bare: {loader / bare:.2f} (target >= 0.50)")


if __name__ == "__main__":
    main()
