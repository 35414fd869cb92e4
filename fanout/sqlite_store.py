"""Feeds in one SQLite file for the embedded profile, with the Redis store's semantics.

WAL lets the API read while the consumer or a Dagster run writes, from other processes; writes
take the lock up front (BEGIN IMMEDIATE) and wait for it (busy timeout) instead of failing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from fanout.store import (
    FeedEntry,
    FeedStore,
    FeedStoreUnavailable,
    Push,
    encode_member,
    group_by_user,
)

_SCHEMA = """
create table if not exists feed_entries (
    user_id integer not null,
    post_id integer not null,
    author_id integer not null,
    created_ms integer not null,
    member text not null,
    primary key (user_id, member)
) without rowid;
create index if not exists feed_entries_by_time on feed_entries (user_id, created_ms, member);
create table if not exists feed_versions (
    user_id integer primary key,
    version integer not null
);
"""

# keep the newest `cap` entries (ties: larger member first, as Redis orders equal scores)
_TRIM = """
delete from feed_entries
where user_id = :user and member in (
    select member from feed_entries where user_id = :user
    order by created_ms desc, member desc limit -1 offset :cap
)
"""

_BUMP = """
insert into feed_versions (user_id, version) values (?, 1)
on conflict (user_id) do update set version = version + 1
"""


class SQLiteFeedStore(FeedStore):
    def __init__(self, path: Path | str, *, max_length: int = 800, busy_timeout: float = 30.0):
        self.max_length = max_length
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self._db().executescript(_SCHEMA)  # executescript manages its own transaction
        except sqlite3.Error as exc:
            raise FeedStoreUnavailable(f"SQLite feed store {self.path}: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        """One connection per thread (the API serves from a thread pool)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(
                    self.path,
                    timeout=self._busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                db.execute("pragma journal_mode=wal")
                db.execute("pragma synchronous=normal")
            except (sqlite3.Error, OSError) as exc:
                raise FeedStoreUnavailable(f"SQLite feed store {self.path}: {exc}") from exc
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection, path: Path) -> None:
            self.db, self.path = db, path

        def __enter__(self) -> sqlite3.Connection:
            try:
                self.db.execute("begin immediate")
            except sqlite3.Error as exc:
                raise FeedStoreUnavailable(f"SQLite feed store {self.path}: {exc}") from exc
            return self.db

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            self.db.execute("commit" if exc_type is None else "rollback")
            if isinstance(exc, sqlite3.OperationalError):
                raise FeedStoreUnavailable(f"SQLite feed store {self.path}: {exc}") from exc

    def _write(self) -> SQLiteFeedStore._Tx:
        return SQLiteFeedStore._Tx(self._db(), self.path)

    def _trim_and_bump(self, db: sqlite3.Connection, user_id: int) -> None:
        db.execute(_TRIM, {"user": user_id, "cap": self.max_length})
        db.execute(_BUMP, (user_id,))

    def push_many(self, entries: Iterable[Push | tuple[int, int, int, int]]) -> int:
        grouped = group_by_user(entries)
        total = 0
        with self._write() as db:
            for user_id, user_entries in grouped.items():
                before = db.total_changes
                db.executemany(
                    "insert or ignore into feed_entries values (?, ?, ?, ?, ?)",
                    [
                        (user_id, e.post_id, e.author_id, e.created_ms, e.member)
                        for e in user_entries
                    ],
                )
                added = db.total_changes - before
                if added:
                    self._trim_and_bump(db, user_id)
                    total += added
        return total

    def replace_many(self, feeds: Mapping[int, Iterable[FeedEntry]]) -> int:
        kept = 0
        with self._write() as db:
            for user_id, user_entries in feeds.items():
                db.execute("delete from feed_entries where user_id = ?", (user_id,))
                db.executemany(
                    "insert or ignore into feed_entries values (?, ?, ?, ?, ?)",
                    [
                        (user_id, e.post_id, e.author_id, e.created_ms, e.member)
                        for e in user_entries
                    ],
                )
                self._trim_and_bump(db, user_id)
                kept += db.execute(
                    "select count(*) from feed_entries where user_id = ?", (user_id,)
                ).fetchone()[0]
        return kept

    def read(self, user_id: int, limit: int, max_created_ms: int | None = None) -> list[FeedEntry]:
        limit = min(limit, self.max_length)
        if limit <= 0:
            return []
        top = max_created_ms if max_created_ms is not None else 2**62
        try:
            rows = (
                self._db()
                .execute(
                    "select post_id, author_id, created_ms from feed_entries"
                    " where user_id = ? and created_ms <= ?"
                    " order by created_ms desc, member desc limit ?",
                    (user_id, top, limit),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise FeedStoreUnavailable(f"SQLite feed store {self.path}: {exc}") from exc
        return [FeedEntry(post, author, created) for post, author, created in rows]

    def remove_post(self, post_id: int, author_id: int, follower_ids: Iterable[int]) -> int:
        member = encode_member(post_id, author_id)
        total = 0
        with self._write() as db:
            for user_id in follower_ids:
                removed = db.execute(
                    "delete from feed_entries where user_id = ? and member = ?", (user_id, member)
                ).rowcount
                if removed:
                    db.execute(_BUMP, (user_id,))
                    total += removed
        return total

    def remove_author(self, user_id: int, author_id: int) -> int:
        with self._write() as db:
            removed = db.execute(
                "delete from feed_entries where user_id = ? and author_id = ?",
                (user_id, author_id),
            ).rowcount
            if removed:
                db.execute(_BUMP, (user_id,))
        return int(removed)

    def _scalar(self, sql: str, user_id: int) -> int:
        try:
            row = self._db().execute(sql, (user_id,)).fetchone()
        except sqlite3.Error as exc:
            raise FeedStoreUnavailable(f"SQLite feed store {self.path}: {exc}") from exc
        return int(row[0]) if row else 0

    def version(self, user_id: int) -> int:
        return self._scalar("select version from feed_versions where user_id = ?", user_id)

    def length(self, user_id: int) -> int:
        return self._scalar("select count(*) from feed_entries where user_id = ?", user_id)

    def ping(self) -> None:
        self._scalar("select ?", 1)

    def clear(self) -> None:
        with self._write() as db:
            db.execute("delete from feed_entries")
            db.execute("delete from feed_versions")

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()
