"""Helpers for the dbt tests: load landing files into a chDB directory, run dbt on it.

(Not named `dbt_*`: dbt imports every module on sys.path whose name starts with `dbt_`.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appconfig import Settings
from ingestion.landing_source import landing_batches
from ingestion.loader import load_records
from objectstore.store import ObjectStore
from warehouse import clickhouse_client, ensure_raw_tables

PROJECT_DIR = Path(__file__).resolve().parent.parent / "transformations"
DBT = Path(sys.executable).parent / "dbt"
DEFAULT_SCHEMA = "analytics"  # run_dbt's DBT_SCHEMA unless a test passes its own
# the databases dbt writes for DEFAULT_SCHEMA, named where every such name is built (the settings)
DBT_DATABASES = Settings.model_construct(analytics_schema=DEFAULT_SCHEMA)


@dataclass
class DbtRun:
    returncode: int
    output: str
    results: list[dict[str, Any]]  # run_results.json "results"

    def by_name(self) -> dict[str, dict[str, Any]]:
        """Results by node name (unique ids: model.<project>.<name>, test.<project>.<name>.<hash>,
        unit_test.<project>.<model>.<name>)."""
        named = {}
        for result in self.results:
            parts = result["unique_id"].split(".")
            named[parts[3] if parts[0] == "unit_test" else parts[2]] = result
        return named


def load_landing(chdb_path: Path, store: ObjectStore, partitions: list[str]) -> None:
    """Load landing partitions into `raw` of a chDB directory, then close it (dbt needs it)."""
    with clickhouse_client(f"chdb://{chdb_path}") as client:
        ensure_raw_tables(client, "raw")
        for _, records in landing_batches(store, "landing/events", partitions):
            load_records(client, "raw", records)


def run_dbt(work: Path, chdb_path: Path, *args: str, schema: str = DEFAULT_SCHEMA) -> DbtRun:
    """`dbt <args>` in a subprocess on the embedded target; artifacts and logs under `work`."""
    env = {
        **os.environ,
        "CHDB_PATH": str(chdb_path),
        "DBT_SCHEMA": schema,
        "RAW_DATABASE": "raw",
        "DBT_TARGET": "embedded",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    target = work / "target"
    command = [
        str(DBT),
        *args,
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
    ]
    command += ["--target-path", str(target), "--log-path", str(work / "logs")]
    done = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, timeout=600)
    results_file = target / "run_results.json"
    results = json.loads(results_file.read_text())["results"] if results_file.exists() else []
    return DbtRun(done.returncode, done.stdout + done.stderr, results)
