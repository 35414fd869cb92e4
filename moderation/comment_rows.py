"""Comment checks into ClickHouse: one moderation row per comment in `raw.engagements`.

`<database>.comment_checks` holds comment, post, author, the verdict (profane, spam score,
flagged, reasons) and when it was checked; comments already checked are skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from moderation.comments import CommentChecker

TABLE = "comment_checks"


def table_ddl(database: str) -> list[str]:
    """The database and table (dbt's on-run-start hook runs the same statements, so
    `stg_moderation__comment_checks` builds before any comment has been checked)."""
    return [
        f"create database if not exists {database}",
        f"create table if not exists {database}.{TABLE} ("
        "comment_id Int64, post_id Int64, user_id Int64, text String, profane Bool, "
        "spam_score Float64, flagged Bool, reasons Array(String), "
        "checked_at DateTime64(3, 'UTC')"
        ") engine = ReplacingMergeTree(checked_at) order by comment_id",
    ]


def ensure_table(client: Any, database: str) -> None:
    for statement in table_ddl(database):
        client.command(statement)


def record_comment_checks(
    client: Any, raw_database: str, database: str, checker: CommentChecker, limit: int = 100_000
) -> int:
    """Check the comments without a row yet; returns how many rows were written."""
    ensure_table(client, database)
    rows = client.query(
        f"select comment_id, post_id, user_id, text from {raw_database}.engagements "
        f"where event_type = 'comment' and comment_id is not null and text is not null "
        f"and comment_id not in (select comment_id from {database}.{TABLE}) "
        f"limit {int(limit)}"
    ).result_rows
    if not rows:
        return 0
    verdicts = checker.check_many([str(r[3]) for r in rows])
    now = datetime.now(UTC)
    client.insert(
        f"{database}.{TABLE}",
        [
            [
                int(c),
                int(p),
                int(u),
                str(t),
                v.profane,
                v.spam_score,
                v.flagged,
                list(v.reasons),
                now,
            ]
            for (c, p, u, t), v in zip(rows, verdicts, strict=True)
        ],
        column_names=[
            "comment_id",
            "post_id",
            "user_id",
            "text",
            "profane",
            "spam_score",
            "flagged",
            "reasons",
            "checked_at",
        ],
    )
    return len(rows)
