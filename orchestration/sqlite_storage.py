"""Dagster's SQLite storage without an fsync per event (the embedded profile).

Dagster's SQLite event log opens a connection per event (a `NullPool` engine), commits it and
closes it. In WAL mode a commit with `synchronous=FULL` fsyncs the log, and the close of the
file's last connection checkpoints and fsyncs the database: about 10 ms per event on this
machine's disk, while a partitioned run stores thousands of events (a 168-hour ingestion
backfill plans and materializes 11 assets per hour). That was most of the ingestion stage's
time, with the loader idle.

Two settings remove it, both standard SQLite, neither weakening what a crash can do:
- `synchronous=NORMAL` on the storage's connections: in WAL mode the database stays consistent
  through a power loss (the last commits may be lost; a process crash loses nothing);
- one idle connection kept open per storage file ("keeper"), so that closing Dagster's
  connection is never the last close and does not checkpoint: SQLite's automatic checkpoint
  (every 1,000 pages) still runs on commit.

Only files under the storage directories named here are touched; other SQLite databases of the
process (MLflow, Feast, the feed store) keep their own settings.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

MAX_KEEPERS = 16  # open files at most: a run's own shard is hot while it runs, then never again

_lock = threading.Lock()
_roots: set[str] = set()
_keepers: OrderedDict[str, tuple[int, sqlite3.Connection]] = OrderedDict()
_listening = False


def tune_sqlite_storage(storage_dir: Path) -> None:
    """Apply the settings above to every SQLite connection opened under `storage_dir`."""
    global _listening
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    with _lock:
        _roots.add(str(storage_dir.resolve()) + os.sep)
        if not _listening:
            event.listen(Engine, "connect", _on_connect)
            _listening = True


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    row = dbapi_connection.execute("PRAGMA database_list").fetchone()
    path = row[2] if row else ""
    if not path or not any(path.startswith(root) for root in _roots):
        return
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
    _keep_open(path)


def _keep_open(path: str) -> None:
    with _lock:
        pid = os.getpid()
        kept = _keepers.get(path)
        if kept is not None and kept[0] != pid:
            # inherited through fork: the parent's connection is not ours to use or close
            del _keepers[path]
            kept = None
        if kept is None:
            _keepers[path] = kept = (pid, sqlite3.connect(path, check_same_thread=False))
            while len(_keepers) > MAX_KEEPERS:
                _, (owner, oldest) = _keepers.popitem(last=False)
                if owner == pid:
                    oldest.close()
        _keepers.move_to_end(path)
        # a read attaches the keeper to the write-ahead log (once the file is in WAL mode), which
        # is what makes it count as an open connection when Dagster's closes
        kept[1].execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()


def kept_files() -> list[str]:
    """The storage files a keeper holds open in this process (for tests and diagnostics)."""
    with _lock:
        return [path for path, (pid, _) in _keepers.items() if pid == os.getpid()]
