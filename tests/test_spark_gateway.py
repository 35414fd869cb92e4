"""A job that started Spark ends its JVM too (issue 17: the gateway JVM stayed resident at
~1.3 GiB through the ranker's training in the same Dagster run), and Spark starts again after.

Run in a child process: the suite shares one Spark session per process, and a session
someone else started is never stopped by `spark_for_one_job`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from appconfig import Settings
    from ml.spark import spark_for_one_job

    settings = Settings(PLATFORM_DATA_DIR=Path(sys.argv[1]))
    seen = []
    for _ in range(2):
        with spark_for_one_job(settings) as spark:
            from pyspark import SparkContext

            total = spark.range(1000).groupBy().sum("id").collect()[0][0]
            process = SparkContext._gateway.proc
        seen.append({"sum": total, "pid": process.pid, "exit": process.poll()})
    print(json.dumps(seen))
    """
)


@pytest.mark.timeout(240)
def test_a_job_that_started_spark_ends_its_jvm_and_spark_starts_again(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    assert first["sum"] == second["sum"] == 499500
    assert first["exit"] is not None, "the gateway JVM outlived the job that started it"
    assert second["exit"] is not None
    assert first["pid"] != second["pid"]  # the second job launched its own JVM
