"""The whole graph at growing scale: generate -> ingest -> dbt -> features -> models -> feeds.

Per scale (users x days) a fresh embedded platform in its own process and data directory runs
every stage as the demo does (the same Dagster jobs) and records, per stage: input rows,
seconds, rows/s and the peak resident memory of the process and its children (sampled every
0.2 s). Two stages get a bare baseline measured in the same run, on the same rows:
- ingestion: `insert_arrow` of the rows ingestion wrote, read back as Arrow, into an empty copy
  of the raw tables (what the loader would cost if parsing, validating, de-duplicating and
  dead-lettering were free);
- dbt: one bare `SELECT` over the same raw rows (count, distinct event ids, max time per table):
  what a single scan of the input costs.

    uv run python -m bench.end_to_end --users 10000 --users 100000 --days 7
    uv run python -m bench.end_to_end --users 10000 --stop-after ingest   # ingestion alone

Targets (issue 17): 100,000 users x 7 days in <= 20 min on 2 cores with peak memory <= 12 GiB;
every stage within 10x of its bare baseline; ingestion >= 0.5x bare insert_arrow.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
STAGES = ("generate", "ingest", "dbt", "features", "models", "feeds")
# the variables that would point a child at the services profile instead of its own directory
SERVICE_PREFIXES = ("CLICKHOUSE_", "KAFKA_", "REDIS_", "S3_", "MLFLOW_", "FEAST_", "CASSANDRA_")
SERVICE_NAMES = ("OBJECT_STORE_URL", "METADATA_DB_URL", "PLATFORM_PROFILE", "FEED_STORE_URL")


@dataclass
class StageFigure:
    stage: str
    rows: int
    seconds: float
    peak_gib: float
    baseline_seconds: float | None = None
    note: str = ""
    # CPU (user + system, this process and its children): on a shared machine the wall time is
    # the niced process's share, the CPU time what the stage itself cost (ingest only)
    cpu_seconds: float | None = None
    baseline_cpu_seconds: float | None = None

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def baseline_rate(self) -> float | None:
        if not self.baseline_seconds:
            return None
        return self.rows / self.baseline_seconds


@dataclass
class ScaleResult:
    users: int
    days: int
    records: int = 0
    stages: list[StageFigure] = field(default_factory=list)
    failed: str = ""
    running: str = ""  # the stage under way when the figures were last saved

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def peak_gib(self) -> float:
        return max((s.peak_gib for s in self.stages), default=0.0)


class PeakMemory:
    """Peak RSS of this process and its children, sampled in a thread while a stage runs."""

    def __init__(self, interval_s: float = 0.2) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval_s
        self.peak = 0

    def _sample(self) -> int:
        total = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except Exception:  # a child that ended between listing and reading
                continue
        return int(total)

    @contextmanager
    def watch(self) -> Iterator[PeakMemory]:
        self.peak = self._sample()
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self._interval):
                self.peak = max(self.peak, self._sample())

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            self.peak = max(self.peak, self._sample())


def _timed(what: str, fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """fn's result, its seconds and the peak GiB while it ran; a spinner meanwhile."""
    memory = PeakMemory()
    with console.status(f"{what} ..."), memory.watch():
        started = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - started
    return result, seconds, memory.peak / 2**30


def _cpu_seconds() -> float:
    """User + system CPU of this process (every thread, chDB's included) and its children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _raw_families(client: Any, database: str) -> dict[str, int]:
    """Rows per raw table that holds events (dead letters apart)."""
    from contracts.catalog import FAMILIES

    return {
        family: int(client.query(f"SELECT count() FROM {database}.{family}").result_rows[0][0])
        for family in FAMILIES
    }


def _bare_insert_seconds(client: Any, database: str) -> tuple[float, float]:
    """insert_arrow of the rows ingestion wrote into empty copies of the raw tables: wall and
    CPU seconds."""
    from contracts.catalog import FAMILIES

    scratch = f"{database}_bare"
    client.command(f"DROP DATABASE IF EXISTS {scratch}")
    client.command(f"CREATE DATABASE {scratch}")
    tables = {}
    for family in FAMILIES:
        client.command(f"CREATE TABLE {scratch}.{family} AS {database}.{family}")
        tables[family] = client.query_arrow(f"SELECT * FROM {database}.{family}")
    started, cpu = time.perf_counter(), _cpu_seconds()
    for family, table in tables.items():
        if table.num_rows:
            client.insert_arrow(f"{scratch}.{family}", table)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    client.command(f"DROP DATABASE {scratch}")
    return seconds, cpu


def _bare_scan_seconds(client: Any, database: str) -> float:
    """One SELECT reading every raw event row once."""
    from contracts.catalog import FAMILIES

    union = " UNION ALL ".join(
        f"SELECT count() AS n, uniqExact(event_id) AS ids, max(occurred_at) AS latest"
        f" FROM {database}.{family}"
        for family in FAMILIES
    )
    started = time.perf_counter()
    client.query(f"SELECT sum(n), sum(ids), max(latest) FROM ({union})")
    return time.perf_counter() - started


def _count(client: Any, table: str) -> int:
    try:
        return int(client.query(f"SELECT count() FROM {table}").result_rows[0][0])
    except Exception:  # the stage skipped and did not create it: no input rows
        return 0


def run_scale(
    users: int,
    days: int,
    seed: int,
    checkpoint: Callable[[ScaleResult], None] | None = None,
    stop_after: str = STAGES[-1],
) -> ScaleResult:
    """Every stage once on the platform of PLATFORM_DATA_DIR (set by the parent). The figures so
    far are handed to `checkpoint` as each stage starts, so a child killed mid-stage (the
    kernel's OOM killer at large scales) still reports what it finished and where it died."""
    from datetime import UTC, datetime, timedelta

    from appconfig import get_settings
    from objectstore import store_from_settings
    from orchestration.runs import build_analytics, ingest_partition_range, run_job_outcome
    from warehouse import clickhouse_client
    from workload.config import WorkloadConfig
    from workload.generator import generate
    from workload.writer import write_workload

    settings = get_settings()
    result = ScaleResult(users, days)
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    config = WorkloadConfig(
        users=users, days=days, seed=seed, start=this_hour - timedelta(days=days)
    )

    def generate_and_write() -> tuple[int, list[str]]:
        workload = generate(config, progress=True)
        written = write_workload(store_from_settings(settings), settings.landing_prefix, workload)
        return len(workload.records), sorted(written.partitions)

    def starting(stage: str) -> None:
        result.running = stage
        if checkpoint is not None:
            checkpoint(result)

    starting("generate")
    (records, partitions), seconds, peak = _timed("generate", generate_and_write)
    result.records = records
    result.stages.append(StageFigure("generate", records, seconds, peak))

    starting("ingest")
    cpu = _cpu_seconds()
    ok, seconds, peak = _timed(
        "ingest", lambda: ingest_partition_range(partitions[0], partitions[-1])
    )
    cpu = _cpu_seconds() - cpu
    raw = settings.clickhouse_raw_database
    with clickhouse_client(settings.clickhouse_url) as client:
        bare, bare_cpu = _bare_insert_seconds(client, raw)
        raw_rows = sum(_raw_families(client, raw).values())
    per_record = records / raw_rows  # the bare rate, per record read
    result.stages.append(
        StageFigure(
            "ingest",
            records,
            seconds,
            peak,
            bare * per_record,
            cpu_seconds=cpu,
            baseline_cpu_seconds=bare_cpu * per_record,
        )
    )
    if not ok:
        result.failed = "ingest"
    if not ok or stop_after == "ingest":
        return result

    starting("dbt")
    ok, seconds, peak = _timed("dbt build", build_analytics)
    with clickhouse_client(settings.clickhouse_url) as client:
        scan = _bare_scan_seconds(client, raw)
        impressions = _count(client, f"{settings.marts_database}.fct_training_impressions")
        posts = _count(client, f"{settings.marts_database}.dim_posts")
    result.stages.append(StageFigure("dbt", raw_rows, seconds, peak, scan))
    if not ok:
        result.failed = "dbt"
        return result

    for stage, job, rows in (
        ("features", "build_features", impressions),
        ("models", "train_models", impressions),
        ("feeds", "build_feeds", posts),
    ):
        starting(stage)
        outcome, seconds, peak = _timed(stage, partial(run_job_outcome, job))
        skipped = "; ".join(f"{k} skipped" for k in outcome.skipped)
        result.stages.append(StageFigure(stage, rows, seconds, peak, note=skipped))
        if not outcome.success:
            result.failed = stage
            return result
    return result


def _child_env(data_dir: Path) -> dict[str, str]:
    """The environment handed on, minus what would point the child at the services."""
    env = {**os.environ}
    for name in [k for k in env if k.startswith(SERVICE_PREFIXES) or k in SERVICE_NAMES]:
        del env[name]
    env.update(PLATFORM_DATA_DIR=str(data_dir), DAGSTER_HOME=str(data_dir / "dagster"))
    return env


def measure(
    users: int, days: int, seed: int, work: Path, stop_after: str = STAGES[-1]
) -> ScaleResult:
    """One scale in a child process (fresh settings, fresh chDB, its memory its own)."""
    data_dir = work / f"u{users}_d{days}"
    out = work / f"u{users}_d{days}.json"
    command = [sys.executable, "-m", "bench.end_to_end", "--child", str(out)]
    command += ["--users", str(users), "--days", str(days), "--seed", str(seed)]
    command += ["--stop-after", stop_after]
    console.rule(f"{users:,} users x {days} days")
    completed = subprocess.run(command, env=_child_env(data_dir), check=False)
    if not out.exists():
        return ScaleResult(users, days, failed=f"child exited {completed.returncode}")
    raw = json.loads(out.read_text())
    stages = [StageFigure(**s) for s in raw.pop("stages")]
    result = ScaleResult(**raw, stages=stages)
    if completed.returncode != 0:  # killed mid-stage: the figures of the stages it finished
        killed = " (SIGKILL: out of memory?)" if completed.returncode == -9 else ""
        result.failed = f"{result.running}, child exited {completed.returncode}{killed}"
    return result


def render(results: list[ScaleResult]) -> Table:
    table = Table(title="the whole graph, per stage (bare baselines measured in the same run)")
    for column in (
        "scale",
        "stage",
        "input rows",
        "s",
        "rows/s",
        "peak GiB",
        "bare rows/s",
        "x bare",
        "CPU s",
        "x bare CPU",
    ):
        table.add_column(column, justify="left" if column in ("scale", "stage") else "right")
    for result in results:
        scale = f"{result.users:,}x{result.days}d"
        for stage in result.stages:
            bare = stage.baseline_rate
            table.add_row(
                scale,
                stage.stage + (f" ({stage.note})" if stage.note else ""),
                f"{stage.rows:,}",
                f"{stage.seconds:,.1f}",
                f"{stage.rate:,.0f}",
                f"{stage.peak_gib:.2f}",
                f"{bare:,.0f}" if bare else "-",
                f"{stage.rate / bare:.3g}" if bare else "-",
                f"{stage.cpu_seconds:,.1f}" if stage.cpu_seconds else "-",
                f"{stage.baseline_cpu_seconds / stage.cpu_seconds:.3g}"
                if stage.cpu_seconds and stage.baseline_cpu_seconds
                else "-",
            )
        status = f"FAILED at {result.failed}" if result.failed else "whole graph"
        table.add_row(
            scale,
            status,
            f"{result.records:,}",
            f"{result.total_seconds:,.1f}",
            "",
            f"{result.peak_gib:.2f}",
            "",
            "",
            "",
            "",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, action="append", help="repeat for several scales")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--work-dir", type=Path, help="keep the platforms here (default: a temp dir)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--stop-after",
        choices=("ingest", STAGES[-1]),
        default=STAGES[-1],
        help="the last stage to run (ingest: generate and ingest only, e.g. to time ingestion "
        "at a scale where the whole graph would take hours)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    users = args.users or [10_000, 100_000]

    if args.child is not None:  # one scale, in this process; libraries' output to its log
        from appconfig import get_settings
        from appconfig.library_logs import console_stdout, library_output_to, log_path

        with library_output_to(log_path(get_settings().data_dir)):
            console.file = console_stdout()
            result = run_scale(
                users[0],
                args.days,
                args.seed,
                checkpoint=lambda r: args.child.write_text(json.dumps(asdict(r))),
                stop_after=args.stop_after,
            )
        result.running = ""
        args.child.write_text(json.dumps(asdict(result)))
        return

    with tempfile.TemporaryDirectory(prefix="e2e-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = [measure(n, args.days, args.seed, work, args.stop_after) for n in users]
    console.print(render(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
