"""Feeds in Apache Cassandra: one partition per user, newest first, the durable copy of every feed.

`home_feed` is partitioned by `user_id` and clustered by `(created_at DESC, member DESC)`, so a
read is one sequential slice from the top of one partition, and equal times break ties on the
member string `"post:author"` exactly as Redis orders equal scores (`fanout.store`). `created_at`
is milliseconds since 1970 (a bigint: no datetime conversion per row on the read path).

Writes are idempotent upserts (a re-delivered entry rewrites the same row), sent as prepared
statements in one unlogged batch per user (one partition, so the batch is a single mutation on
one replica set, not a multi-partition coordinator batch). To return how many entries were new
and bump the version only on change, each push first reads the user's rows in the time range of
the entries it writes (one slice read per user, usually empty).

The version is a static column of the user's partition, set in the same batch as the entries
to the batch's write time (microseconds, the driver's monotonic clock): one mutation per user
and no read on the replica. Counters (an `UPDATE ... + 1` per user beside the batch) were the
first design and cost about 2.5x the throughput (`bench.cassandra_feed`, docs/benchmarks.md).
Two writers of one feed resolve by write time: the later timestamp wins, so the version moves
on every change unless two processes write the same user within their clocks' skew and the
newer write lands first; the cache tier (`fanout.cached_store`) keeps its own versions as Redis
INCRs, which have no such window.

The cap is kept lazily: reads never return more than `max_length`, and a user's partition is
trimmed (one range tombstone below the cap-th entry) with probability `added / slack` per push,
i.e. about once every `slack` new entries, so it stays near `max_length + slack` rows without a
size read on every write. gc_grace_seconds is short (one node, no repairs) so tombstones go.

`following` / `followers` are the social graph as two tables (who a user follows, who follows a
user), written together in a logged batch so neither side is left without the other.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from fanout.store import (
    FeedEntry,
    FeedStore,
    FeedStoreUnavailable,
    Push,
    encode_member,
)

T = TypeVar("T")

DEFAULT_PORT = 9042
CONCURRENCY = 64  # requests in flight per call

_SCHEMA = (
    """create table if not exists {ks}.home_feed (
        user_id bigint, created_at bigint, member text, post_id bigint, author_id bigint,
        version bigint static,
        primary key ((user_id), created_at, member)
    ) with clustering order by (created_at desc, member desc)
      and gc_grace_seconds = 3600
      and comment = 'home feeds: created_at ms since 1970, member post:author, version us'""",
    """create table if not exists {ks}.following (
        user_id bigint, followed_id bigint, created_at bigint,
        primary key ((user_id), followed_id)
    ) with comment = 'who a user follows'""",
    """create table if not exists {ks}.followers (
        user_id bigint, follower_id bigint, created_at bigint,
        primary key ((user_id), follower_id)
    ) with comment = 'who follows a user'""",
)


def parse_hosts(hosts: str) -> tuple[list[str], int]:
    """'h1:p,h2:p' or 'h1,h2' (one port for all, as the driver wants) -> (hosts, port)."""
    names, ports = [], set()
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:  # no port given
            host, port = port, str(DEFAULT_PORT)
        names.append(host)
        ports.add(int(port))
    if len(ports) != 1:
        raise ValueError(f"every Cassandra host must use the same port, got {hosts!r}")
    return names, ports.pop()


class CassandraFeedStore(FeedStore):
    """Connects lazily: a Cassandra that is down at start (or dies later) raises
    FeedStoreUnavailable per call, and the next call after it is back works again."""

    def __init__(
        self,
        hosts: str,
        keyspace: str = "feeds",
        *,
        max_length: int = 800,
        slack: int | None = None,
        timeout: float = 2.0,
        connect_timeout: float = 2.0,
        replication: str = "{'class': 'SimpleStrategy', 'replication_factor': 1}",
    ) -> None:
        self.max_length = max_length
        self.slack = slack if slack is not None else max(max_length // 4, 1)
        self.hosts, self.port = parse_hosts(hosts)
        self.keyspace = keyspace
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._replication = replication
        self._cluster: Any = None
        self._session: Any = None
        self._prepared: dict[str, Any] = {}
        self._random = random.Random()

    # --- connection -------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._session is not None:
            return self._session
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import (
            ConstantReconnectionPolicy,
            DCAwareRoundRobinPolicy,
            TokenAwarePolicy,
        )
        from cassandra.query import tuple_factory

        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
            request_timeout=self._timeout,
            row_factory=tuple_factory,
        )
        cluster = Cluster(
            self.hosts,
            port=self.port,
            protocol_version=5,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=self._connect_timeout,
            control_connection_timeout=self._connect_timeout,
            # a restarted node is used again within a second (the default backs off to minutes)
            reconnection_policy=ConstantReconnectionPolicy(1.0, max_attempts=None),
        )
        try:
            session = cluster.connect()
            self._ensure_schema(session)
        except Exception as exc:
            cluster.shutdown()
            raise self._unavailable(exc) from exc
        self._cluster, self._session = cluster, session
        return session

    def _unavailable(self, exc: BaseException) -> FeedStoreUnavailable:
        hosts = ",".join(f"{h}:{self.port}" for h in self.hosts)
        return FeedStoreUnavailable(f"Cassandra feed store {hosts} unreachable: {exc}")

    def _ensure_schema(self, session: Any) -> None:
        """Create the keyspace and tables when missing (schema changes are slow: checked first)."""
        tables = {
            row[0]
            for row in session.execute(
                "select table_name from system_schema.tables where keyspace_name = %s",
                (self.keyspace,),
            )
        }
        if not {"home_feed", "following", "followers"} <= tables:
            session.execute(
                f"create keyspace if not exists {self.keyspace}"
                f" with replication = {self._replication}"
            )
            for statement in _SCHEMA:
                session.execute(statement.format(ks=self.keyspace), timeout=30)
        columns = {
            row[0]
            for row in session.execute(
                "select column_name from system_schema.columns"
                " where keyspace_name = %s and table_name = 'home_feed'",
                (self.keyspace,),
            )
        }
        if "version" not in columns:  # a keyspace of the counter design: add the static column
            session.execute(
                f"alter table {self.keyspace}.home_feed add version bigint static", timeout=30
            )

    def _prepare(self, name: str, cql: str) -> Any:
        statement = self._prepared.get(name)
        if statement is None:
            statement = self._connect().prepare(cql.format(ks=self.keyspace))
            self._prepared[name] = statement
        return statement

    def _call(self, fn: Callable[[], T]) -> T:
        """Run fn; every way the cluster can be unreachable becomes FeedStoreUnavailable."""
        from cassandra import DriverException, RequestExecutionException
        from cassandra.cluster import NoHostAvailable

        try:
            return fn()
        except FeedStoreUnavailable:
            raise
        except (NoHostAvailable, RequestExecutionException, DriverException, OSError) as exc:
            raise self._unavailable(exc) from exc

    def _run_all(self, statements: list[tuple[Any, Sequence[Any]]]) -> list[list[Any]]:
        """Execute concurrently; rows of each, in order."""
        from cassandra.concurrent import execute_concurrent

        if not statements:
            return []
        session = self._connect()
        results = execute_concurrent(
            session, statements, concurrency=CONCURRENCY, raise_on_first_error=True
        )
        return [list(result) for _, result in results]

    # --- statements ---------------------------------------------------------------------------

    def _insert(self) -> Any:
        return self._prepare(
            "insert",
            "insert into {ks}.home_feed (user_id, created_at, member, post_id, author_id)"
            " values (?, ?, ?, ?, ?)",
        )

    def _bump(self) -> Any:
        return self._prepare("bump", "update {ks}.home_feed set version = ? where user_id = ?")

    def _versioned_batch(self) -> tuple[Any, int]:
        """An unlogged batch (statements of one partition) that runs at a write time taken from
        the driver's monotonic clock, and that time: the version the batch sets, so the version
        is its cell's own timestamp."""
        from cassandra.query import BatchStatement, BatchType

        self._connect()
        written_at = int(self._cluster.timestamp_generator())
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        batch.timestamp = written_at
        return batch, written_at

    def _existing_in_range(self) -> Any:
        return self._prepare(
            "existing",
            "select created_at, member from {ks}.home_feed"
            " where user_id = ? and created_at >= ? and created_at <= ?",
        )

    # --- writes -------------------------------------------------------------------------------

    def push_many(self, entries: Iterable[Push | tuple[int, int, int, int]]) -> int:
        by_user: dict[int, list[tuple[int, str, int, int]]] = {}
        for user_id, post_id, author_id, created_ms in entries:
            row = (int(created_ms), encode_member(post_id, author_id), int(post_id), int(author_id))
            by_user.setdefault(int(user_id), []).append(row)
        return self._call(lambda: self._push_rows(by_user)) if by_user else 0

    def push_posts(self, posts: Iterable[tuple[int, int, int, Sequence[int]]]) -> int:
        by_user: dict[int, list[tuple[int, str, int, int]]] = {}
        for post_id, author_id, created_ms, users in posts:
            row = (int(created_ms), encode_member(post_id, author_id), int(post_id), int(author_id))
            for user_id in users:
                rows = by_user.get(user_id)
                if rows is None:
                    by_user[user_id] = [row]
                else:
                    rows.append(row)
        return self._call(lambda: self._push_rows(by_user)) if by_user else 0

    def push_rows(
        self, by_user: Mapping[int, list[tuple[int, str, int, int]]]
    ) -> tuple[int, set[int]]:
        """Rows (created ms, member, post, author) per user: how many were new, and the users
        whose feed changed (the cache tier bumps their versions)."""
        changed: set[int] = set()
        added = self._call(lambda: self._push_rows(by_user, changed))
        return added, changed

    def _push_rows(
        self,
        by_user: Mapping[int, list[tuple[int, str, int, int]]],
        changed: set[int] | None = None,
    ) -> int:
        """Read what already exists in each user's time range, then one unlogged batch per user
        that got something: the new rows and the version, one mutation of the partition."""
        users = list(by_user)
        existing_stmt = self._existing_in_range()
        found = self._run_all(
            [
                (existing_stmt, (u, min(r[0] for r in by_user[u]), max(r[0] for r in by_user[u])))
                for u in users
            ]
        )
        insert, bump = self._insert(), self._bump()
        writes: list[tuple[Any, Sequence[Any]]] = []
        trims: list[int] = []
        added = 0
        for user_id, rows_found in zip(users, found, strict=True):
            have = {(int(created), member) for created, member in rows_found}
            new: dict[tuple[int, str], tuple[int, str, int, int]] = {}
            for row in by_user[user_id]:
                key = (row[0], row[1])
                if key not in have:
                    new[key] = row
            if not new:
                continue
            batch, written_at = self._versioned_batch()
            for created, member, post, author in new.values():
                batch.add(insert, (user_id, created, member, post, author))
            batch.add(bump, (written_at, user_id))
            writes.append((batch, ()))
            added += len(new)
            if changed is not None:
                changed.add(user_id)
            if self._random.random() < len(new) / self.slack:
                trims.append(user_id)
        self._run_all(writes)
        for user_id in trims:
            self._trim(user_id)
        return added

    def _trim(self, user_id: int) -> int:
        """Drop everything below the cap-th newest entry: one range tombstone for the older
        times, single-row deletes for the entries that share the boundary's time."""
        rows = self._run_all(
            [
                (
                    self._prepare(
                        "all_keys",
                        "select created_at, member from {ks}.home_feed where user_id = ?",
                    ),
                    (user_id,),
                )
            ]
        )[0]
        rows = [row for row in rows if row[0] is not None]  # not the static row (the version)
        if len(rows) <= self.max_length:
            return 0
        boundary = int(rows[self.max_length][0])
        deletes: list[tuple[Any, Sequence[Any]]] = [
            (
                self._prepare(
                    "trim", "delete from {ks}.home_feed where user_id = ? and created_at < ?"
                ),
                (user_id, boundary),
            )
        ]
        delete_row = self._delete_row()
        for created, member in rows[self.max_length :]:
            if int(created) == boundary:
                deletes.append((delete_row, (user_id, boundary, member)))
        self._run_all(deletes)
        return len(rows) - self.max_length

    def _delete_row(self) -> Any:
        return self._prepare(
            "delete_row",
            "delete from {ks}.home_feed where user_id = ? and created_at = ? and member = ?",
        )

    def replace_many(self, feeds: Mapping[int, Iterable[FeedEntry]]) -> int:
        """Each feed: a partition delete, then its newest `max_length` entries, one unlogged
        batch per user with explicit write times (the delete before the inserts: in one batch
        they would share a timestamp and the delete would win); the version is the inserts' time."""
        from cassandra.query import BatchStatement, BatchType

        def run() -> int:
            self._connect()
            gen = self._cluster.timestamp_generator
            delete = self._prepare(
                "delete_feed", "delete from {ks}.home_feed using timestamp ? where user_id = ?"
            )
            insert = self._prepare(
                "insert_at",
                "insert into {ks}.home_feed (user_id, created_at, member, post_id, author_id)"
                " values (?, ?, ?, ?, ?) using timestamp ?",
            )
            bump = self._prepare(
                "bump_at",
                "update {ks}.home_feed using timestamp ? set version = ? where user_id = ?",
            )
            writes: list[tuple[Any, Sequence[Any]]] = []
            kept = 0
            for user_id, entries in feeds.items():
                top = sorted(
                    {e.member: e for e in entries}.values(),
                    key=lambda e: (e.created_ms, e.member),
                    reverse=True,
                )[: self.max_length]
                deleted_at = gen()
                written_at = gen()
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                batch.add(delete, (deleted_at, int(user_id)))
                for e in top:
                    batch.add(
                        insert,
                        (int(user_id), e.created_ms, e.member, e.post_id, e.author_id, written_at),
                    )
                batch.add(bump, (written_at, written_at, int(user_id)))
                writes.append((batch, ()))
                kept += len(top)
            self._run_all(writes)
            return kept

        return self._call(run)

    def remove_post(self, post_id: int, author_id: int, follower_ids: Iterable[int]) -> int:
        member = encode_member(post_id, author_id)

        def run() -> int:
            users = list(dict.fromkeys(int(u) for u in follower_ids))
            find = self._prepare(
                "find_post",
                "select created_at from {ks}.home_feed where user_id = ? and post_id = ?"
                " allow filtering",
            )
            found = self._run_all([(find, (u, post_id)) for u in users])
            return self._delete(
                {
                    u: [(int(r[0]), member) for r in rows]
                    for u, rows in zip(users, found, strict=True)
                    if rows
                }
            )

        return self._call(run)

    def remove_author(self, user_id: int, author_id: int) -> int:
        def run() -> int:
            find = self._prepare(
                "find_author",
                "select created_at, member from {ks}.home_feed where user_id = ? and author_id = ?"
                " allow filtering",
            )
            rows = self._run_all([(find, (user_id, author_id))])[0]
            return self._delete({user_id: [(int(c), m) for c, m in rows]} if rows else {})

        return self._call(run)

    def _delete(self, rows_by_user: Mapping[int, list[tuple[int, str]]]) -> int:
        delete_row, bump = self._delete_row(), self._bump()
        writes: list[tuple[Any, Sequence[Any]]] = []
        for user_id, rows in rows_by_user.items():
            batch, written_at = self._versioned_batch()
            for created, member in rows:
                batch.add(delete_row, (user_id, created, member))
            batch.add(bump, (written_at, user_id))
            writes.append((batch, ()))
        self._run_all(writes)
        return sum(len(rows) for rows in rows_by_user.values())

    # --- reads --------------------------------------------------------------------------------

    def read(self, user_id: int, limit: int, max_created_ms: int | None = None) -> list[FeedEntry]:
        limit = min(limit, self.max_length)
        if limit <= 0:
            return []
        top = int(max_created_ms) if max_created_ms is not None else 2**62
        statement = self._prepare(
            "read",
            "select post_id, author_id, created_at from {ks}.home_feed"
            " where user_id = ? and created_at <= ? limit ?",
        )
        rows = self._call(lambda: self._connect().execute(statement, (int(user_id), top, limit)))
        return [FeedEntry(post, author, created) for post, author, created in rows]

    def version(self, user_id: int) -> int:
        statement = self._prepare(
            "version", "select version from {ks}.home_feed where user_id = ? limit 1"
        )
        rows = self._call(lambda: list(self._connect().execute(statement, (int(user_id),))))
        return int(rows[0][0] or 0) if rows else 0

    def length(self, user_id: int) -> int:
        # count(created_at), not count(*): a partition's static row (the version) has no entry
        statement = self._prepare(
            "length", "select count(created_at) from {ks}.home_feed where user_id = ?"
        )
        rows = self._call(lambda: list(self._connect().execute(statement, (int(user_id),))))
        return min(int(rows[0][0]), self.max_length)

    def ping(self) -> None:
        self._call(lambda: self._connect().execute("select release_version from system.local"))

    # --- the social graph ---------------------------------------------------------------------

    def follow(self, follower_id: int, followed_id: int, created_ms: int) -> None:
        """Both directions in one logged batch (two partitions that must agree)."""
        from cassandra.query import BatchStatement, BatchType

        def run() -> None:
            batch = BatchStatement(batch_type=BatchType.LOGGED)
            batch.add(
                self._prepare(
                    "follow",
                    "insert into {ks}.following (user_id, followed_id, created_at)"
                    " values (?, ?, ?)",
                ),
                (follower_id, followed_id, created_ms),
            )
            batch.add(
                self._prepare(
                    "followed",
                    "insert into {ks}.followers (user_id, follower_id, created_at)"
                    " values (?, ?, ?)",
                ),
                (followed_id, follower_id, created_ms),
            )
            self._connect().execute(batch)

        self._call(run)

    def unfollow(self, follower_id: int, followed_id: int) -> None:
        from cassandra.query import BatchStatement, BatchType

        def run() -> None:
            batch = BatchStatement(batch_type=BatchType.LOGGED)
            batch.add(
                self._prepare(
                    "unfollow", "delete from {ks}.following where user_id = ? and followed_id = ?"
                ),
                (follower_id, followed_id),
            )
            batch.add(
                self._prepare(
                    "unfollowed",
                    "delete from {ks}.followers where user_id = ? and follower_id = ?",
                ),
                (followed_id, follower_id),
            )
            self._connect().execute(batch)

        self._call(run)

    def following(self, user_id: int) -> list[int]:
        statement = self._prepare(
            "following_of", "select followed_id from {ks}.following where user_id = ?"
        )
        return [
            int(r[0]) for r in self._call(lambda: self._connect().execute(statement, (user_id,)))
        ]

    def followers(self, user_id: int) -> list[int]:
        statement = self._prepare(
            "followers_of", "select follower_id from {ks}.followers where user_id = ?"
        )
        return [
            int(r[0]) for r in self._call(lambda: self._connect().execute(statement, (user_id,)))
        ]

    # --- housekeeping -------------------------------------------------------------------------

    def clear(self) -> None:
        """Empty every table of this keyspace (tests, rebuilds)."""

        def run() -> None:
            session = self._connect()
            for table in ("home_feed", "following", "followers"):
                session.execute(f"truncate {self.keyspace}.{table}", timeout=60)

        self._call(run)

    def drop_keyspace(self) -> None:
        self._call(
            lambda: self._connect().execute(f"drop keyspace if exists {self.keyspace}", timeout=60)
        )

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = None
        self._prepared.clear()
