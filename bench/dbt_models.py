"""Which dbt models' time grows faster than their input: per-model seconds at two or more sizes.

Each size (users x days) is generated and loaded into its own chDB directory under --work-dir
(kept, and reused on a later run, so a changed model can be timed again on the same rows), then
`dbt build --full-refresh` runs there and dbt's run_results.json gives each model's execution
time. The table sets each model's time ratio (largest / smallest size) beside the ratio of raw
input rows: a time ratio well above the input ratio is a model that does not scale linearly.

    uv run python -m bench.dbt_models --users 500 --users 1500 --days 7 --work-dir /tmp/dbtm
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.dbt_build import load_workload, run_build
from warehouse import RAW_TABLES, clickhouse_client, ensure_raw_tables
from workload.config import WorkloadConfig


def size_figures(work: Path, users: int, days: int, seed: int) -> dict[str, Any]:
    """Raw input rows and, per model, its rows and build seconds at one size."""
    ch_path = work / "ch"
    if not (work / "loaded").exists():  # generate and load once; later runs reuse the rows
        with clickhouse_client(f"chdb://{ch_path}") as client:
            ensure_raw_tables(client, "raw")
            load_workload(client, work, WorkloadConfig(users=users, days=days, seed=seed))
        (work / "loaded").touch()
    seconds, results = run_build(ch_path, work, "build", "--full-refresh")
    models = {
        r["unique_id"].rsplit(".", 1)[1]: {
            "seconds": r["execution_time"],
            "relation": r["relation_name"],
        }
        for r in results
        if r["unique_id"].startswith("model.")
    }
    with clickhouse_client(f"chdb://{ch_path}") as client:

        def count(table: str) -> int:
            return int(client.query(f"SELECT count() FROM {table}").result_rows[0][0])

        raw = sum(count(f"raw.{t}") for t in RAW_TABLES)
        for model in models.values():
            model["rows"] = count(model.pop("relation"))
    return {
        "users": users,
        "days": days,
        "raw_rows": raw,
        "build_seconds": seconds,
        "models": models,
    }


def render(sizes: list[dict[str, Any]], top: int) -> Table:
    small, large = sizes[0], sizes[-1]
    input_ratio = large["raw_rows"] / small["raw_rows"]
    table = Table(
        title=f"dbt models, {small['users']:,} vs {large['users']:,} users x {large['days']} d "
        f"(raw rows {small['raw_rows']:,} -> {large['raw_rows']:,}, x{input_ratio:.2f}; "
        f"build {small['build_seconds']:.0f} s -> {large['build_seconds']:.0f} s)"
    )
    for column in ("model", "rows small", "s small", "rows large", "s large", "x time", "x rows"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    by_time = sorted(large["models"].items(), key=lambda kv: -kv[1]["seconds"])
    for name, big in by_time[:top]:
        little = small["models"][name]
        table.add_row(
            name,
            f"{little['rows']:,}",
            f"{little['seconds']:.2f}",
            f"{big['rows']:,}",
            f"{big['seconds']:.2f}",
            f"{big['seconds'] / max(little['seconds'], 1e-3):.2f}",
            f"{big['rows'] / max(little['rows'], 1):.2f}",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, action="append", help="repeat: one per size")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work-dir", type=Path, required=True, help="chDB dirs, kept for reuse")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write every model's figures here")
    args = parser.parse_args()
    sizes = []
    for users in sorted(args.users or [500, 1500]):
        work = args.work_dir / f"u{users}_d{args.days}"
        work.mkdir(parents=True, exist_ok=True)
        sizes.append(size_figures(work, users, args.days, args.seed))
    Console(width=160).print(render(sizes, args.top))
    if args.json:
        args.json.write_text(json.dumps(sizes, indent=2))


if __name__ == "__main__":
    main()
