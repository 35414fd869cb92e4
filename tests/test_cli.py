"""The `photo-platform` command: every job behind one `--help`, and a quiet demo.

The demo runs as a user runs it (a subprocess, its own data directory) at a tiny scale; the
console must show the platform's tables and nothing the libraries print, which must be in the
log file instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "demo", "generate", "ingest", "build", "import", "serve", "ui", "mlflow-ui", "dbt-docs",
    "feast-ui", "services", "bench",
}  # fmt: skip
# What the libraries print when they are loud: log4j/Spark, netlib, TensorFlow, absl, MLflow,
# Feast, dbt, Dagster's run log, Python warnings.
LIBRARY_NOISE = re.compile(
    r"log4j|WARN |NativeCodeLoader|netlib|BLAS|oneDNN|absl|tensorflow|CloudPickle|"
    r"Ignoring arguments|Running with dbt|uv_utils|Warning:|DeprecationWarning|"
    r"FutureWarning|UserWarning| - dagster - ",
)


def test_help_names_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    listed = set(re.findall(r"^│ ([a-z][a-z-]+) ", result.output, flags=re.M))
    assert listed >= COMMANDS, COMMANDS - listed
    for group, subcommands in {
        "build": {"analytics", "features", "models", "feeds"},
        "import": {"movielens", "edges"},
        "services": {"up", "down", "status"},
    }.items():
        result = CliRunner().invoke(app, [group, "--help"])
        assert result.exit_code == 0, result.output
        assert subcommands <= set(re.findall(r"^│ ([a-z-]+) ", result.output, flags=re.M))


@pytest.mark.timeout(1500)
def test_demo_console_is_quiet_and_the_libraries_log_to_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLICKHOUSE_", "KAFKA_", "REDIS_", "S3_", "MLFLOW_", "FEAST_"))
        and k not in ("OBJECT_STORE_URL", "METADATA_DB_URL", "PLATFORM_PROFILE", "FEED_STORE_URL")
    }
    env.update(PLATFORM_DATA_DIR=str(data), DAGSTER_HOME=str(data / "dagster"), COLUMNS="120")
    result = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--users", "100", "--days", "2", "--no-serve"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1400,
    )
    log = data / "logs" / "platform.log"
    log_text = log.read_text(errors="replace") if log.exists() else ""
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "raw tables after ingestion" in result.stdout
    assert "models in the MLflow registry: what serves" in result.stdout
    for model in ("feed-ranker", "who-to-follow", "explore"):  # each row says what serves it
        row = next(line for line in result.stdout.splitlines() if f" {model} " in line)
        assert re.search(r"\bv\d+ |\(baseline\)|nothing registered", row), row
    assert f"libraries' logs: {log}" in result.stdout
    for stream, text in (("stderr", result.stderr), ("stdout", result.stdout)):
        noise = [line for line in text.splitlines() if LIBRARY_NOISE.search(line)]
        assert not noise, f"library output on {stream}: {noise[:10]}"
    assert "Running with dbt" in log_text, "dbt's output should be in the log file"
    assert " - dagster - " in log_text, "Dagster's run log should be in the log file"
