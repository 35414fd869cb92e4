"""`dbt build` (models, data tests, unit tests) time and rows/s at 1M and 10M events, on chDB.

The baseline, measured in the same run on the same data, is a bare ClickHouse scan that reads
every raw event once (`SELECT count(), sum(cityHash64(payload))` over all raw tables): the floor
any transformation over these events must pay. Events are generated in chunks of about 1M
(independent seeds, so independent user populations) to bound memory.

    uv run python -m bench.dbt_build --events 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ingestion.landing_source import landing_batches
from ingestion.loader import load_records
from objectstore import open_store
from orchestration.analytics.dbt_env import PROJECT_DIR, dbt_executable
from warehouse import RAW_TABLES, clickhouse_client, ensure_raw_tables
from workload.config import WorkloadConfig
from workload.generator import generate
from workload.writer import write_workload

EVENTS_PER_1000_USERS_3_DAYS = 135_000


def load_workload(client: Any, tmp: Path, config: WorkloadConfig) -> int:
    """One generated workload written to a file landing zone and loaded into raw tables."""
    store = open_store(f"file://{tmp}/objects-{config.seed}")
    workload = generate(config, progress=False)
    written = write_workload(store, "landing/events", workload)
    del workload
    return sum(
        load_records(client, "raw", records).loaded
        for _, records in landing_batches(store, "landing/events", sorted(written.partitions))
    )


def load_events(ch_url: str, tmp: Path, target: int) -> int:
    loaded = 0
    seed = 0
    users = max(200, round(1000 * min(target, 1_000_000) / EVENTS_PER_1000_USERS_3_DAYS))
    with clickhouse_client(ch_url) as client:
        ensure_raw_tables(client, "raw")
        while loaded < target:
            loaded += load_workload(
                client, tmp, WorkloadConfig(users=users, days=3, seed=100 + seed)
            )
            seed += 1
            print(f"  chunk {seed}: {loaded:,} events loaded")
    return loaded


def run_build(ch_path: Path, tmp: Path, *args: str) -> tuple[float, list[dict[str, Any]]]:
    """`dbt build` (or the command in args) on the embedded target: seconds and run_results."""
    env = {
        **os.environ,
        "DBT_TARGET": "embedded",
        "CHDB_PATH": str(ch_path),
        "RAW_DATABASE": "raw",
        "DBT_SCHEMA": "bench",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    started = time.perf_counter()
    run = subprocess.run(
        [
            dbt_executable(),
            *(args or ("build",)),
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(tmp / "target"),
            "--log-path",
            str(tmp / "logs"),
            "--quiet",
        ],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    results = json.loads((tmp / "target" / "run_results.json").read_text())["results"]
    failed = [r["unique_id"] for r in results if r["status"] not in ("success", "pass")]
    if run.returncode or failed:
        print(run.stdout[-3000:], run.stderr[-3000:], failed)
        raise SystemExit("dbt build failed")
    return seconds, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--tmp-dir", type=Path, help="scratch space (default: the system's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp_name:
        tmp = Path(tmp_name)
        ch_path = tmp / "ch"
        events = load_events(f"chdb://{ch_path}", tmp, args.events)

        with clickhouse_client(f"chdb://{ch_path}") as client:
            union = " UNION ALL ".join(f"SELECT payload FROM raw.{t}" for t in RAW_TABLES)
            started = time.perf_counter()
            client.query(f"SELECT count(), sum(cityHash64(payload)) FROM ({union})")
            scan_seconds = time.perf_counter() - started

        dbt_seconds, results = run_build(ch_path, tmp)

    print(f"events: {events:,}; dbt nodes: {len(results)} (all passed)")
    print(f"dbt build: {dbt_seconds:.1f} s = {events / dbt_seconds:,.0f} events/s")
    print(
        f"bare scan of every raw event: {scan_seconds:.2f} s = {events / scan_seconds:,.0f} events/s"
    )
    print(f"ratio dbt build / bare scan (time): {dbt_seconds / scan_seconds:.1f}x")


if __name__ == "__main__":
    main()
