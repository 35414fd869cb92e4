"""The feed store: Cassandra, Cassandra behind its Redis cache, Redis and SQLite (all real) behave
the same, and a dead Redis or Cassandra fails fast."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from appconfig import Settings
from fanout import FeedEntry, FeedStore, FeedStoreUnavailable, open_feed_store
from fanout.cached_store import CachedFeedStore
from fanout.cassandra_store import CassandraFeedStore
from fanout.redis_store import RedisFeedStore
from fanout.sqlite_store import SQLiteFeedStore


@pytest.fixture(params=["redis", "sqlite", "cassandra", "cassandra+redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeedStore]:
    feed_store: RedisFeedStore | SQLiteFeedStore | CassandraFeedStore | CachedFeedStore
    prefix = f"test-feeds-{uuid.uuid4().hex}:"
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        feed_store = RedisFeedStore(url, max_length=5, prefix=prefix)
    elif request.param == "sqlite":
        feed_store = SQLiteFeedStore(tmp_path / "feeds.sqlite", max_length=5)
    else:
        hosts = request.getfixturevalue("cassandra_hosts")
        keyspace = request.getfixturevalue("cassandra_keyspace")
        feed_store = CassandraFeedStore(hosts, keyspace, max_length=5, timeout=10)
        feed_store.clear()  # one keyspace per session: start from empty tables
        if request.param == "cassandra+redis":
            feed_store = CachedFeedStore(
                feed_store, request.getfixturevalue("redis_url"), prefix=prefix
            )
    yield feed_store
    if isinstance(feed_store, CachedFeedStore):
        feed_store.clear_cache()
    elif not isinstance(feed_store, CassandraFeedStore):
        feed_store.clear()
    feed_store.close()


def test_read_is_newest_first_and_capped(store: FeedStore) -> None:
    written = store.push_many((7, post, 100 + post % 3, 1_000 * post) for post in range(1, 9))

    assert written == 8
    entries = store.read(7, limit=50)
    assert [e.post_id for e in entries] == [8, 7, 6, 5, 4]  # cap 5 dropped the oldest
    assert entries[0] == FeedEntry(8, 102, 8_000)
    assert store.length(7) == 5
    assert store.read(8, limit=10) == []


def test_read_limit_and_upper_bound(store: FeedStore) -> None:
    store.push_many((1, post, 9, 1_000 * post) for post in range(1, 6))

    assert [e.post_id for e in store.read(1, limit=2)] == [5, 4]
    assert [e.post_id for e in store.read(1, limit=10, max_created_ms=3_000)] == [3, 2, 1]
    assert store.read(1, limit=0) == []


def test_equal_times_break_ties_like_redis(store: FeedStore) -> None:
    store.push_many([(1, 10, 1, 500), (1, 9, 1, 500), (1, 11, 2, 500)])

    # same score: members compared as strings, descending ("9:1" > "11:2" > "10:1")
    assert [e.post_id for e in store.read(1, limit=10)] == [9, 11, 10]


def changes(store: FeedStore, before: int, after: int) -> int:
    """How many changes lie between two versions: Redis and SQLite count them; Cassandra's
    version is the write time of the last change, so it only says whether there was one."""
    if isinstance(store, CassandraFeedStore):
        assert after >= before
        return int(after > before)
    return after - before


def test_push_is_idempotent_and_bumps_version_only_on_change(store: FeedStore) -> None:
    """A version grows on every change and only then (Redis and SQLite count changes;
    Cassandra's is the write time of the last change, so it grows by more than 1)."""
    # versions are compared to where they start: the cached store's carry its cache's epoch
    v3, v4 = store.version(3), store.version(4)
    assert store.push_many([(3, 1, 2, 10), (4, 1, 2, 10)]) == 2
    after_first = store.version(3)
    assert after_first > v3

    assert store.push_many([(3, 1, 2, 10)]) == 0  # a re-delivered event changes nothing
    assert store.version(3) == after_first
    assert store.length(3) == 1

    store.push_many([(3, 2, 2, 20)])
    assert changes(store, after_first, store.version(3)) == 1
    assert changes(store, v4, store.version(4)) == 1


def test_a_user_never_written_has_version_0_in_their_epoch(store: FeedStore) -> None:
    """The cached store's versions carry its cache epoch in the high 32 bits (so a restarted
    cache never reissues an old version); the count within the epoch starts at 0 everywhere."""
    never_written = store.version(12345)
    assert never_written & 0xFFFFFFFF == 0
    if isinstance(store, CachedFeedStore):
        assert never_written >> 32 > 0
    else:
        assert never_written == 0
    store.push_many([(12345, 1, 2, 10)])
    assert store.version(12345) > never_written


def test_remove_post_from_followers(store: FeedStore) -> None:
    store.push_many([(u, 1, 50, 10) for u in (1, 2, 3)] + [(1, 2, 51, 20)])
    versions = [store.version(u) for u in (1, 2, 3)]

    removed = store.remove_post(1, 50, [1, 2, 99])

    assert removed == 2
    assert [e.post_id for e in store.read(1, 10)] == [2]
    assert store.read(2, 10) == []
    assert [e.post_id for e in store.read(3, 10)] == [1]  # not named: untouched
    after = [store.version(u) for u in (1, 2, 3)]
    assert after[0] > versions[0] and after[1] > versions[1]
    assert after[2] == versions[2]


def test_remove_author(store: FeedStore) -> None:
    store.push_many([(1, 1, 50, 10), (1, 2, 51, 20), (1, 3, 50, 30)])

    assert store.remove_author(1, 50) == 2
    assert [e.author_id for e in store.read(1, 10)] == [51]
    assert store.remove_author(1, 50) == 0


def test_replace_feed_drops_old_entries_and_caps(store: FeedStore) -> None:
    store.push_many([(1, 99, 5, 10)])
    version = store.version(1)

    kept = store.replace_feed(1, [FeedEntry(p, 6, 100 * p) for p in range(1, 8)])

    assert kept == 5
    assert [e.post_id for e in store.read(1, 10)] == [7, 6, 5, 4, 3]
    assert changes(store, version, store.version(1)) == 1
    assert store.replace_many({2: [], 3: [FeedEntry(1, 2, 3)]}) == 1
    assert store.read(2, 10) == []


def test_ping(store: FeedStore) -> None:
    store.ping()


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dead_redis_raises_unavailable_fast() -> None:
    store = RedisFeedStore(f"redis://127.0.0.1:{_dead_port()}/0")
    for call in (store.ping, lambda: store.read(1, 10), lambda: store.push_many([(1, 2, 3, 4)])):
        started = time.monotonic()
        with pytest.raises(FeedStoreUnavailable):
            call()
        assert time.monotonic() - started < 2.0
    store.close()


def test_open_feed_store_follows_settings(tmp_path: Path, redis_url: str) -> None:
    embedded = Settings(PLATFORM_DATA_DIR=tmp_path, REDIS_URL=None, FEED_STORE_URL="")
    with open_feed_store(embedded) as store:
        assert isinstance(store, SQLiteFeedStore)
        assert store.path == tmp_path / "feeds.sqlite"
        assert store.max_length == 800

    services = Settings(PLATFORM_DATA_DIR=tmp_path, REDIS_URL=redis_url, FEED_MAX_LENGTH=3)
    with open_feed_store(services) as store:
        assert isinstance(store, RedisFeedStore)
        assert store.max_length == 3
        store.ping()

    with pytest.raises(ValueError, match="FEED_STORE_URL"):
        open_feed_store(Settings(PLATFORM_DATA_DIR=tmp_path, FEED_STORE_URL="mongo://x"))


def test_push_posts_fans_one_post_out_to_many_users(store: FeedStore) -> None:
    before = [store.version(u) for u in (1, 2, 3, 4)]
    written = store.push_posts([(1, 50, 100, [1, 2, 3]), (2, 51, 200, [1]), (3, 52, 300, [])])

    assert written == 4
    assert [(e.post_id, e.author_id) for e in store.read(1, 10)] == [(2, 51), (1, 50)]
    assert [e.post_id for e in store.read(3, 10)] == [1]
    # one write per user per call, however many entries
    assert changes(store, before[0], store.version(1)) == 1
    assert store.push_post(1, 50, 100, [1, 2, 3, 4]) == 1  # only user 4 is new
    assert [
        changes(store, v, store.version(u)) for u, v in zip((1, 2, 3, 4), before, strict=True)
    ] == [1] * 4


_WRITER = """
import sys
from fanout.sqlite_store import SQLiteFeedStore
path, first = sys.argv[1], int(sys.argv[2])
with SQLiteFeedStore(path, max_length=1000) as store:
    for post in range(first, first + 200):
        store.push_many([(user, post, 7, post) for user in (1, 2, 3)])
"""


def test_sqlite_store_is_safe_for_concurrent_writer_processes(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "feeds.sqlite"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(first)])
        for first in (1, 1001, 2001)
    ]
    with SQLiteFeedStore(path, max_length=1000) as reader:
        while any(w.poll() is None for w in writers):
            reader.read(1, 10)  # reads go on while the writers hold the lock in turn
        assert [w.returncode for w in writers] == [0, 0, 0]
        for user in (1, 2, 3):
            assert reader.length(user) == 600
            assert reader.version(user) == 600  # no lost update
