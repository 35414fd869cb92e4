"""Libraries' own output (Spark's log4j, TensorFlow, MLflow, Feast, dbt, Dagster) into a log file.

The console is for the platform's progress and tables; what the libraries print is kept, in
`<data dir>/logs/platform.log`, for when something fails. Both Python writers and native ones
(the JVM behind Spark, TensorFlow's C++ logging, child processes such as dbt) write to file
descriptor 2, so the descriptor itself is pointed at the file: no library can get around it.
The platform's own messages go to stdout (rich), and errors to `console_stderr()`, the original
terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

# Environment read by libraries when they start: quiet at the source where they allow it.
QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow C++: no oneDNN / cuda / absl lines
    "GRPC_VERBOSITY": "ERROR",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# Chatty at INFO even in the file: per-call lines of the JVM bridge and MLflow's store setup.
QUIET_LOGGERS = ("py4j", "mlflow", "alembic")

_console_stderr: TextIO | None = None
_console_stdout: TextIO | None = None


def log_path(data_dir: Path) -> Path:
    return data_dir / "logs" / "platform.log"


def console_stderr() -> TextIO:
    """The terminal's stderr, also while library output goes to the log file."""
    return _console_stderr or sys.stderr


def console_stdout() -> TextIO:
    """The terminal's stdout, also while library output goes to the log file."""
    return _console_stdout or sys.stdout


@contextmanager
def library_output_to(path: Path) -> Iterator[Path]:
    """Within the block, everything written to stdout or stderr (fds 1 and 2) by anyone goes to
    `path`; the platform's own console writes to `console_stdout()` (rich's global console
    is pointed there, so progress bars stay on the terminal)."""
    global _console_stderr, _console_stdout
    import rich

    path.parent.mkdir(parents=True, exist_ok=True)
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    log = path.open("a", buffering=1)
    _console_stdout = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    _console_stderr = os.fdopen(os.dup(saved[2]), "w", buffering=1)
    for fd in (1, 2):
        os.dup2(log.fileno(), fd)
    global_console = rich.get_console()
    previous_file = global_console.file
    global_console.file = _console_stdout
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # shown once each, into the file
            yield path
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        global_console.file = previous_file
        for stream in (_console_stdout, _console_stderr):
            stream.close()
        _console_stdout = _console_stderr = None
        log.close()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
