"""Every row of every table of a SQLite file, for tests that compare two online stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# the platform's vector tables are WITHOUT ROWID; Feast's own tables keep their insertion order
VECTOR_TABLES = ("__vectors", "__vectors_by_user")


def dump_tables(path: Path) -> dict[str, list[tuple]]:
    """Each table's rows with their rowid (where it has one) and each value's storage class."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = {}
        for table in tables:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            typed = ", ".join(f'"{c}", typeof("{c}")' for c in columns)
            rowid = "" if table.endswith(VECTOR_TABLES) else "rowid, "
            out[table] = conn.execute(
                f'SELECT {rowid}{typed} FROM "{table}" ORDER BY 1, 2'
            ).fetchall()
        return out
    finally:
        conn.close()
