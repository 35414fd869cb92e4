"""One SparkSession per process, configured from settings.

Starting Spark costs about 6 s and the driver's memory can only be set before the first
`getOrCreate()`, so every caller shares the session this module builds. `SPARK_MASTER` is
`local[2]` here; a cluster's master URL runs the same jobs unchanged.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from appconfig import Settings, get_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_lock = threading.Lock()
_session: SparkSession | None = None


def spark_session(settings: Settings | None = None) -> SparkSession:
    """The process's SparkSession, started on first use (quiet logs, loopback, UTC)."""
    global _session
    with _lock:
        if _session is not None and _session.sparkContext._jsc is not None:
            return _session
        settings = settings or get_settings()
        # read by Spark's launcher and workers, so set in the environment (from settings)
        os.environ["SPARK_LOCAL_IP"] = settings.spark_local_ip
        os.environ["PYSPARK_PYTHON"] = settings.pyspark_python or _python()
        from pyspark.sql import SparkSession

        scratch = settings.data_dir / "spark"
        scratch.mkdir(parents=True, exist_ok=True)
        session = (
            SparkSession.builder.master(settings.spark_master)
            .appName("photo-platform")
            .config("spark.driver.memory", settings.spark_driver_memory)
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.default.parallelism", "4")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=ERROR")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        session.sparkContext.setCheckpointDir(str(scratch / "checkpoints"))
        _session = session
        return session


@contextmanager
def spark_for_one_job(settings: Settings | None = None) -> Iterator[SparkSession]:
    """The process's session for one job, stopped after it if the job started it: a long
    process (a Dagster run training the ranker next) should not keep the JVM (a driver heap of
    `spark_driver_memory` and more) resident once Spark's work is done (issue 17). A session
    someone else started is theirs to stop."""
    with _lock:
        running = _session is not None and _session.sparkContext._jsc is not None
    try:
        yield spark_session(settings)
    finally:
        if not running:
            stop_spark(end_jvm=True)


def stop_spark(*, end_jvm: bool = False) -> None:
    """Stop the shared session (tests and scripts call it once at the end).

    `end_jvm` also ends PySpark's gateway JVM, which `SparkSession.stop` leaves running (about
    1.3 GiB resident at 10,000 users, through the ranker's training in the same Dagster run);
    the next session then launches a new gateway (a few seconds)."""
    global _session
    with _lock:
        if _session is not None:
            _session.stop()
            _session = None
        if end_jvm:
            _end_gateway()


def _end_gateway() -> None:
    """Close the gateway and the JVM's stdin: PySpark's gateway server exits when its stdin
    closes. Forgetting the class-level gateway makes the next `getOrCreate` launch a new one."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None or SparkContext._active_spark_context is not None:
        return
    process = getattr(gateway, "proc", None)
    gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    if process is not None:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a JVM that will not exit is killed
            process.kill()
            process.wait(timeout=10)


def _python() -> str:
    import sys

    return sys.executable
