"""Feeds on Cassandra (real server) with Redis (real server) as their read-through cache: the cap,
the social graph tables, the cache's fill and invalidation, and real processes killed mid-traffic
(a private redis-server, and a private Cassandra node: the shared ones are never touched).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cassandra_support import PrivateCassandra, PrivateRedis, Traffic, free_port

from appconfig import Settings
from fanout import FeedEntry, FeedStoreUnavailable, open_feed_store
from fanout.cached_store import CachedFeedStore
from fanout.cassandra_store import CassandraFeedStore


def _users(count: int) -> list[int]:
    """Ids of this test's own (the session's keyspace is shared by the tests)."""
    base = random.randrange(1, 1 << 40) * 1_000
    return [base + i for i in range(count)]


@pytest.fixture
def durable(cassandra_hosts: str, cassandra_keyspace: str) -> Iterator[CassandraFeedStore]:
    store = CassandraFeedStore(cassandra_hosts, cassandra_keyspace, max_length=1_000, timeout=10)
    yield store
    store.close()


@pytest.fixture
def cached(durable: CassandraFeedStore, redis_url: str) -> Iterator[CachedFeedStore]:
    store = CachedFeedStore(durable, redis_url, prefix=f"test-cached-{uuid.uuid4().hex}:")
    yield store
    store.clear_cache()
    store.close()


def _posts(store: CassandraFeedStore | CachedFeedStore, user: int) -> list[int]:
    return [e.post_id for e in store.read(user, store.max_length)]


def test_the_cap_is_kept_in_the_partition(cassandra_hosts: str, cassandra_keyspace: str) -> None:
    store = CassandraFeedStore(cassandra_hosts, cassandra_keyspace, max_length=5, slack=1)
    try:
        (user,) = _users(1)
        for start in (0, 4, 8):
            store.push_many((user, post, 9, 100 + post) for post in range(start, start + 4))
        rows = store._connect().execute(
            f"select count(*) from {cassandra_keyspace}.home_feed where user_id = %s", (user,)
        )
        assert next(iter(rows))[0] == 5  # trimmed on disk, not only hidden by the read's limit
        assert _posts(store, user) == [11, 10, 9, 8, 7]
    finally:
        store.close()


def test_a_push_after_a_replace_is_kept(durable: CassandraFeedStore) -> None:
    (user,) = _users(1)
    durable.replace_feed(user, [FeedEntry(1, 5, 10), FeedEntry(2, 5, 20)])
    durable.push_many([(user, 3, 5, 30)])
    durable.replace_feed(user, [FeedEntry(4, 5, 40)])  # the replace wins over what was there
    durable.push_many([(user, 5, 5, 50)])

    assert _posts(durable, user) == [5, 4]


def test_every_change_moves_the_version_and_an_emptied_feed_has_no_entries(
    durable: CassandraFeedStore,
) -> None:
    """The version is a static column beside the entries: removing, replacing and emptying a
    feed move it, and the partition's static row is never read as an entry."""
    (user,) = _users(1)
    durable.push_many([(user, 1, 5, 10), (user, 2, 6, 20)])
    versions = [durable.version(user)]
    durable.remove_post(1, 5, [user])
    versions.append(durable.version(user))
    durable.replace_feed(user, [FeedEntry(3, 5, 30)])
    versions.append(durable.version(user))
    durable.replace_feed(user, [])
    versions.append(durable.version(user))

    assert versions == sorted(set(versions)), versions  # strictly growing
    assert durable.read(user, 10) == []
    assert durable.length(user) == 0
    assert durable.remove_author(user, 5) == 0
    durable.push_many([(user, 4, 5, 40)])
    assert _posts(durable, user) == [4]
    assert durable.version(user) > versions[-1]


def test_a_keyspace_of_the_counter_design_gets_the_version_column(cassandra_hosts: str) -> None:
    """Feeds written before the version became a static column keep working: the column is
    added on connect and the old entries are read."""
    keyspace = f"old_{uuid.uuid4().hex[:10]}"
    store = CassandraFeedStore(cassandra_hosts, keyspace, timeout=30)
    try:
        session = store._connect()
        session.execute(f"drop table {keyspace}.home_feed", timeout=60)
        session.execute(
            f"create table {keyspace}.home_feed (user_id bigint, created_at bigint, member text,"
            " post_id bigint, author_id bigint, primary key ((user_id), created_at, member))"
            " with clustering order by (created_at desc, member desc)",
            timeout=60,
        )
        session.execute(
            f"insert into {keyspace}.home_feed (user_id, created_at, member, post_id, author_id)"
            " values (1, 10, '7:3', 7, 3)"
        )
        store.close()
        reopened = CassandraFeedStore(cassandra_hosts, keyspace, timeout=30)
        try:
            assert reopened.version(1) == 0
            assert reopened.push_many([(1, 8, 3, 20)]) == 1
            assert [e.post_id for e in reopened.read(1, 10)] == [8, 7]
            assert reopened.version(1) > 0
        finally:
            reopened.drop_keyspace()
            reopened.close()
    finally:
        store.close()


def test_following_and_followers_tables_agree(durable: CassandraFeedStore) -> None:
    a, b, c = _users(3)
    durable.follow(a, c, 1)
    durable.follow(b, c, 2)
    durable.follow(a, b, 3)

    assert sorted(durable.followers(c)) == sorted([a, b])
    assert sorted(durable.following(a)) == sorted([b, c])
    durable.unfollow(a, c)
    assert durable.followers(c) == [b]
    assert durable.following(a) == [b]


def test_a_dead_cassandra_raises_unavailable_fast() -> None:
    store = CassandraFeedStore(f"127.0.0.1:{free_port()}", "feeds", connect_timeout=1)
    for call in (store.ping, lambda: store.read(1, 10), lambda: store.push_many([(1, 2, 3, 4)])):
        started = time.monotonic()
        with pytest.raises(FeedStoreUnavailable, match="Cassandra"):
            call()
        assert time.monotonic() - started < 5.0
    store.close()


def test_open_feed_store_puts_redis_in_front_of_cassandra(
    tmp_path: Path, cassandra_hosts: str, cassandra_keyspace: str, redis_url: str
) -> None:
    services = Settings(
        PLATFORM_DATA_DIR=tmp_path,
        CASSANDRA_HOSTS=cassandra_hosts,
        CASSANDRA_KEYSPACE=cassandra_keyspace,
        REDIS_URL=redis_url,
        FEED_MAX_LENGTH=7,
    )
    assert services.feed_store_url == f"cassandra://{cassandra_hosts}/{cassandra_keyspace}"
    with open_feed_store(services, prefix=f"test-open-{uuid.uuid4().hex}:") as store:
        assert isinstance(store, CachedFeedStore)
        assert store.max_length == 7
        assert store.durable.keyspace == cassandra_keyspace
        store.ping()
    uncached = Settings(
        PLATFORM_DATA_DIR=tmp_path, CASSANDRA_HOSTS=cassandra_hosts, FEED_CACHE_URL="none"
    )
    with open_feed_store(uncached) as store:
        assert isinstance(store, CassandraFeedStore)
        assert store.keyspace == "feeds"


def test_a_miss_fills_the_cache_and_a_hit_never_reads_cassandra(
    cached: CachedFeedStore, durable: CassandraFeedStore
) -> None:
    user, other = _users(2)
    cached.push_many([(user, 1, 9, 10), (user, 2, 9, 20), (other, 1, 9, 10)])
    reads: list[int] = []
    original = durable.read

    def counted(user_id: int, limit: int, max_created_ms: int | None = None) -> list[FeedEntry]:
        reads.append(user_id)
        return original(user_id, limit, max_created_ms)

    durable.read = counted  # type: ignore[method-assign]

    assert _posts(cached, user) == [2, 1]  # a miss: read from Cassandra, then cached
    cached.wait_for_fills()  # the fill runs off the read path
    assert _posts(cached, user) == [2, 1]
    assert len(reads) == 1
    assert cached.stats["fills"] == 1

    version = cached.version(user)
    cached.push_many([(user, 3, 9, 30)])  # the fan-out writes both tiers
    assert cached.version(user) == version + 1
    assert _posts(cached, user) == [3, 2, 1]
    assert len(reads) == 1  # still from the cache
    assert durable.read(user, 10)[0].post_id == 3


def test_a_fan_out_during_a_miss_is_not_hidden_by_the_fill(
    cached: CachedFeedStore, durable: CassandraFeedStore
) -> None:
    (user,) = _users(1)
    cached.push_many([(user, 1, 9, 10)])
    original = durable.read

    def read_then_a_post_arrives(*args: object, **kwargs: object) -> list[FeedEntry]:
        entries = original(*args, **kwargs)  # type: ignore[arg-type]
        cached.push_many([(user, 2, 9, 20)])  # lands between the Cassandra read and the fill
        return entries

    durable.read = read_then_a_post_arrives  # type: ignore[method-assign]
    assert _posts(cached, user) == [1]  # what Cassandra had when the read began
    durable.read = original  # type: ignore[method-assign]
    cached.wait_for_fills()

    assert cached.stats["fills"] == 0  # the version moved: the stale copy was not cached
    assert _posts(cached, user) == [2, 1]


def test_removals_and_replaces_invalidate_the_cached_feed(cached: CachedFeedStore) -> None:
    user, other = _users(2)
    cached.push_many([(user, 1, 8, 10), (user, 2, 9, 20), (user, 3, 8, 30)])
    assert _posts(cached, user) == [3, 2, 1]  # cached now

    assert cached.remove_author(user, 8) == 2
    assert _posts(cached, user) == [2]
    assert cached.remove_post(2, 9, [user, other]) == 1
    assert _posts(cached, user) == []
    assert cached.replace_feed(user, [FeedEntry(5, 9, 50)]) == 1
    assert _posts(cached, user) == [5]


def test_redis_down_reads_from_cassandra_and_flags_only_slow_reads(
    durable: CassandraFeedStore, tmp_path: Path
) -> None:
    redis_server = PrivateRedis(tmp_path / "redis", appendonly=False)
    redis_server.start()
    (user,) = _users(1)
    try:
        fast = CachedFeedStore(durable, redis_server.url, read_budget_ms=10_000)
        slow = CachedFeedStore(durable, redis_server.url, read_budget_ms=0)
        fast.push_many([(user, 1, 9, 10)])
        redis_server.kill()

        entries, degraded = fast.read_with_status(user, 10)
        assert [e.post_id for e in entries] == [1] and degraded is None
        entries, degraded = slow.read_with_status(user, 10)
        assert [e.post_id for e in entries] == [1]
        assert degraded is not None and "served from Cassandra" in degraded
        with pytest.raises(FeedStoreUnavailable, match="not to the cache"):
            fast.push_many([(user, 2, 9, 20)])  # written to Cassandra, the caller retries
        assert [e.post_id for e in durable.read(user, 10)] == [2, 1]
    finally:
        redis_server.kill()


@pytest.mark.parametrize("appendonly", [True, False], ids=["aof", "empty-restart"])
def test_redis_killed_mid_traffic_loses_no_entry(
    durable: CassandraFeedStore, tmp_path: Path, appendonly: bool
) -> None:
    """kill -9 of the cache mid-traffic, then a restart (from its AOF, or empty): reads never
    fail (Cassandra serves them), the writer retries, and afterwards every acknowledged entry is
    in every feed, read through the cache."""
    redis_server = PrivateRedis(tmp_path / "redis", appendonly=appendonly)
    redis_server.start()
    users = _users(12)
    store = CachedFeedStore(durable, redis_server.url, retry_seconds=0.3)
    traffic = Traffic(store, users, users, author=7, first_post=1, posts=120)
    try:
        store.push_post(0, 7, traffic.created_ms(0), users)
        for user in users:
            assert _posts(store, user) == [0]  # every feed cached
        traffic.start()
        time.sleep(1.5)
        redis_server.kill()
        down_at = len(traffic.acknowledged)
        time.sleep(2.0)
        redis_server.start()
        traffic.wait_written(120)
    finally:
        traffic.stop()
    try:
        assert traffic.read_errors == []
        assert 0 < down_at < traffic.posts  # the kill really was mid-traffic
        assert traffic.write_retries > 0
        assert store.stats["cache_down_reads"] > 0  # reads went on while Redis was down
        expected = [*range(traffic.posts, 0, -1), 0]
        hits = store.stats["hits"]
        for user in users:
            assert _posts(store, user) == expected
        assert store.stats["hits"] > hits  # read from the cache after recovery
        for user in users:
            assert _posts(durable, user) == expected
    finally:
        store.clear_cache()
        redis_server.kill()


def test_cassandra_killed_mid_traffic_is_served_from_a_warm_cache(
    redis_url: str, tmp_path: Path
) -> None:
    """A private Cassandra node is killed (SIGKILL) while readers read cached feeds and a writer
    fans out: the cached feeds keep being served (not degraded), a feed that is not cached fails
    for that user only, the writer retries until the node is back (restarted and ready within
    the test), and then no acknowledged entry is missing from either tier."""
    node = PrivateCassandra(tmp_path / "cassandra")
    node.start()
    durable = CassandraFeedStore(node.hosts, "feeds", max_length=1_000, timeout=5)
    store = CachedFeedStore(durable, redis_url, prefix=f"test-cassandra-kill-{uuid.uuid4().hex}:")
    warm, cold = _users(8), _users(1)
    traffic = Traffic(store, warm + cold, warm, author=9, first_post=1, posts=150, pause=0.03)
    try:
        store.push_post(0, 9, traffic.created_ms(0), warm + cold)
        for user in warm:
            assert _posts(store, user) == [0]
        traffic.start()
        time.sleep(1.5)
        node.kill()
        down_at = len(traffic.acknowledged)
        reads_before = traffic.reads
        time.sleep(3.0)
        with pytest.raises(FeedStoreUnavailable) as miss:
            store.read(cold[0], 10)  # never cached: nothing to serve it from
        assert miss.value.partial
        assert traffic.reads > reads_before  # warm feeds served while the node was down
        node.start()
        traffic.wait_written(180)
    finally:
        traffic.stop()
    try:
        assert traffic.read_errors == []
        assert traffic.degraded_reads == 0
        assert 0 < down_at < traffic.posts
        assert traffic.write_retries > 0
        expected = [*range(traffic.posts, 0, -1), 0]
        for user in warm + cold:
            assert _posts(store, user) == expected
            assert _posts(durable, user) == expected
    finally:
        store.clear_cache()
        store.close()
        node.stop()


def test_the_consumer_commits_only_after_both_writes(
    kafka_bootstrap: str, durable: CassandraFeedStore, tmp_path: Path
) -> None:
    """Redis (the cache) is down when a batch arrives: the consumer keeps applying the batch,
    commits nothing, and once Redis is back it finishes the batch and commits its offsets."""
    import json
    import threading

    from kafka import KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    from fanout.fanout import FanOut
    from fanout.streaming import FanOutConsumer, make_consumer
    from visibility import VisibilityGraph

    run = uuid.uuid4().hex[:10]
    topic, group = f"test.feeds.{run}.cassandra", f"test-feeds-cassandra-{run}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","), client_id="test-feeds")
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    author, (follower,) = 5, _users(1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","), acks="all")
    for post in (31, 32):
        event = {"event_type": "post_created", "user_id": author, "post_id": post,
                 "occurred_at": f"2026-11-04T10:00:{post}Z"}  # fmt: skip
        producer.send(topic, json.dumps(event).encode())
    producer.flush()
    producer.close()

    redis_server = PrivateRedis(tmp_path / "redis", appendonly=False)
    redis_server.start()
    store = CachedFeedStore(durable, redis_server.url, retry_seconds=0.2)
    graph = VisibilityGraph.from_edges(follows=[(follower, author)])
    consumer = make_consumer(
        kafka_bootstrap, (topic,), group_id=group, auto_offset_reset="earliest"
    )
    runner = FanOutConsumer(
        FanOut(store, graph, celebrities=()), consumer, retry_seconds=(0.1, 0.5)
    )
    partition = TopicPartition(topic, 0)
    try:
        redis_server.kill()
        applied: list[int] = []
        thread = threading.Thread(target=lambda: applied.append(runner.poll_once(10_000)))
        thread.start()
        deadline = time.monotonic() + 60
        while runner.report.store_retries < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runner.report.store_retries >= 3  # the batch is being applied again and again
        assert thread.is_alive()
        assert consumer.committed(partition) is None  # nothing committed while Redis is down

        redis_server.start()
        thread.join(60)
        assert applied == [2]
        assert consumer.committed(partition) == 2
        assert [e.post_id for e in store.read(follower, 10)] == [32, 31]
        assert runner.report.fanout.pushed_entries == 0  # Cassandra had them from the 1st try
    finally:
        runner.stop()
        runner.close()
        redis_server.kill()
