"""Precomputed feeds on a platform built end to end, checked against the marts in SQL.

The expected feeds are computed by an independent ClickHouse query over the follow graph,
blocks, mutes and posts, so the pandas path in `fanout.precompute` is checked, not restated.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from platform_support import BuiltPlatform

from appconfig import Settings, get_settings
from fanout import FeedStore
from fanout.fanout import to_ms
from fanout.precompute import FeedSnapshot, load_snapshot, write_feeds
from fanout.pull import RecentPostIndex, merge_candidates
from fanout.redis_store import RedisFeedStore
from fanout.sqlite_store import SQLiteFeedStore
from warehouse import clickhouse_client

CELEBRITIES = 5  # the most-followed authors, made celebrities through the follower threshold


def _celebrity_threshold(platform: BuiltPlatform) -> int:
    with clickhouse_client(platform.settings.clickhouse_url) as client:
        counts = client.query(
            f"select ifNull(follower_count, 0) from {platform.marts}.dim_users"
            f" order by follower_count desc limit {CELEBRITIES}"
        ).result_rows
    return int(counts[-1][0])


@pytest.fixture(scope="module")
def feed_settings(built_platform: BuiltPlatform) -> Settings:
    threshold = _celebrity_threshold(built_platform)
    return built_platform.settings.model_copy(update={"feed_pull_min_followers": threshold})


@pytest.fixture(scope="module")
def snapshot(feed_settings: Settings) -> FeedSnapshot:
    with clickhouse_client(feed_settings.clickhouse_url) as client:
        return load_snapshot(client, feed_settings)


def _expected_feeds(settings: Settings, snapshot: FeedSnapshot) -> dict[int, set[int]]:
    """Followed, visible, non-celebrity authors' non-deleted posts in the window, by SQL."""
    assert snapshot.as_of is not None
    marts = settings.marts_database
    inter = settings.intermediate_database
    end = to_ms(snapshot.as_of)
    start = end - settings.feed_window_hours * 3_600_000
    with clickhouse_client(settings.clickhouse_url) as client:
        rows = client.query(
            f"""
            with posts as (
                select post_id, author_id,
                       toUnixTimestamp64Milli(toDateTime64(created_at, 3)) as created_ms
                from {marts}.dim_posts
                where not is_deleted and created_ms between {start} and {end}
                  and author_id not in {{celebrities:Array(Int64)}}
            )
            select f.follower_id, p.post_id
            from {inter}.int_follow_graph as f
            inner join posts as p on p.author_id = f.followee_id
            where (f.follower_id, p.author_id) not in (select blocker_id, blocked_id from {inter}.int_blocks)
              and (p.author_id, f.follower_id) not in (select blocker_id, blocked_id from {inter}.int_blocks)
              and (f.follower_id, p.author_id) not in (select muter_id, muted_id from {inter}.int_mutes)
            """,
            parameters={"celebrities": sorted(snapshot.celebrities)},
        ).result_rows
    expected: dict[int, set[int]] = {}
    for user, post in rows:
        expected.setdefault(int(user), set()).add(int(post))
    return expected


@pytest.fixture(params=["sqlite", "redis"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[int], FeedStore]]:
    opened: list[RedisFeedStore | SQLiteFeedStore] = []

    def make(max_length: int) -> FeedStore:
        store: RedisFeedStore | SQLiteFeedStore
        if request.param == "redis":
            url = request.getfixturevalue("redis_url")
            store = RedisFeedStore(
                url, max_length=max_length, prefix=f"test-precompute-{uuid.uuid4().hex}:"
            )
        else:
            store = SQLiteFeedStore(tmp_path / f"feeds-{max_length}.sqlite", max_length=max_length)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.clear()
        store.close()


def test_precomputed_feeds_hold_exactly_the_followed_visible_non_celebrity_posts(
    feed_settings: Settings, snapshot: FeedSnapshot, make_store: Callable[[int], FeedStore]
) -> None:
    assert len(snapshot.celebrities) >= CELEBRITIES
    expected = _expected_feeds(feed_settings, snapshot)
    assert sum(map(len, expected.values())) > 1_000, "too little data for a meaningful check"
    store = make_store(100_000)

    report = write_feeds(store, snapshot)

    assert report.users_written == len(snapshot.users)
    assert report.entries == sum(map(len, expected.values()))
    assert report.celebrity_authors_skipped == len(snapshot.celebrities)
    assert report.withheld_by_privacy > 0  # the workload has blocks and mutes among follows
    for user in snapshot.users.tolist():
        feed = store.read(user, 100_000)
        assert {e.post_id for e in feed} == expected.get(user, set()), user
        assert not {e.author_id for e in feed} & snapshot.celebrities
        times = [e.created_ms for e in feed]
        assert times == sorted(times, reverse=True)


def test_feeds_are_capped_to_the_newest_posts_and_rewritten_in_place(
    feed_settings: Settings, snapshot: FeedSnapshot, make_store: Callable[[int], FeedStore]
) -> None:
    cap = 25
    store = make_store(cap)
    expected = _expected_feeds(feed_settings, snapshot)
    busiest = max(expected, key=lambda u: len(expected[u]))
    assert len(expected[busiest]) > cap
    store.push_many([(busiest, 1, 1, 10**15)])  # a stale entry a rebuild must drop

    write_feeds(store, snapshot)
    write_feeds(store, snapshot)  # idempotent

    feed = store.read(busiest, 1_000)
    assert len(feed) == cap
    assert 1 not in {e.post_id for e in feed}
    newest = snapshot.posts[snapshot.posts["post_id"].isin(expected[busiest])]
    assert min(e.created_ms for e in feed) >= newest["created_ms"].nlargest(cap).min()
    assert store.version(busiest) == 3


def test_celebrity_posts_come_back_through_the_pull_index(
    feed_settings: Settings, snapshot: FeedSnapshot, make_store: Callable[[int], FeedStore]
) -> None:
    store = make_store(800)
    write_feeds(store, snapshot)
    index = RecentPostIndex()
    with clickhouse_client(feed_settings.clickhouse_url) as client:
        indexed = index.refresh(client, feed_settings, snapshot.celebrities, as_of=snapshot.as_of)
    assert indexed > 0 and index.authors <= snapshot.celebrities
    fans = [
        u
        for u in snapshot.users.tolist()
        if snapshot.graph.follows(u) & index.authors and snapshot.graph.follows(u) - index.authors
    ]
    assert fans, "no user follows both a celebrity and an ordinary author"

    for viewer in fans[:20]:
        pushed = store.read(viewer, 800)
        pulled = index.for_viewer(viewer, snapshot.graph, 200)
        merged = merge_candidates(pushed, pulled, 1_000)
        ids = [e.post_id for e in merged]
        assert len(ids) == len(set(ids)) == len({e.post_id for e in [*pushed, *pulled]})
        for entry in pulled:
            assert entry.author_id in snapshot.graph.follows(viewer)
            assert snapshot.graph.can_see_post(viewer, entry.post_id, entry.author_id)


def test_home_feeds_asset_materializes_with_metadata(
    feed_settings: Settings,
    snapshot: FeedSnapshot,
    built_platform: BuiltPlatform,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestration.feeds.assets import home_feeds
    from orchestration.feeds.resources import FeedStoreResource
    from orchestration.resources import ClickHouseResource

    for name, value in {
        "PLATFORM_DATA_DIR": str(feed_settings.data_dir),
        "CLICKHOUSE_URL": feed_settings.clickhouse_url,
        "CLICKHOUSE_RAW_DATABASE": feed_settings.clickhouse_raw_database,
        "FEED_PULL_MIN_FOLLOWERS": str(feed_settings.feed_pull_min_followers),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("REDIS_URL", "FEED_STORE_URL", "KAFKA_BOOTSTRAP_SERVERS", "PLATFORM_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    path = built_platform.work / f"asset-feeds-{uuid.uuid4().hex[:6]}.sqlite"
    try:
        result = dg.materialize(
            [home_feeds],
            resources={
                "clickhouse": ClickHouseResource(url=feed_settings.clickhouse_url),
                "feed_store": FeedStoreResource(url=f"sqlite:///{path}", max_length=50),
            },
        )
    finally:
        get_settings.cache_clear()

    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.materialization is not None
    metadata: dict[str, Any] = {k: v.value for k, v in event.materialization.metadata.items()}
    users = snapshot.users.tolist()
    assert metadata["users_written"] == len(users) == built_platform.workload.config.users
    assert metadata["celebrity_authors_skipped"] >= CELEBRITIES
    assert metadata["capped_feeds"] > 0
    assert "data:image/png;base64" in str(metadata["feed_lengths"])
    with SQLiteFeedStore(path, max_length=50) as store:
        assert metadata["entries"] == sum(store.length(u) for u in users)
        assert max(store.length(u) for u in users) == 50


def test_the_code_location_has_the_feeds_asset_job_and_lineage(settings: Settings) -> None:
    from orchestration.definitions import defs

    repo = (defs() if callable(defs) else defs).get_repository_def()
    node = repo.asset_graph.get(dg.AssetKey(["feeds", "home_feeds"]))
    assert node.group_name == "feeds"
    assert {
        dg.AssetKey(["marts", "dim_posts"]),
        dg.AssetKey(["marts", "dim_users"]),
        dg.AssetKey(["intermediate", "int_follow_graph"]),
    } <= node.parent_keys
    assert repo.has_job("build_feeds")
    assert "feed_store" in repo.get_top_level_resources()
