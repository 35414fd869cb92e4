"""Who to follow and Explore on generated graphs with planted communities (real Spark ALS).

Quality: on a graph where most follows stay inside communities, the blend finds the held-out
follows far better than popularity. Privacy: whatever the model learned, the visibility graph
given at request time decides, so hypothesis draws blocks, mutes, private accounts and deleted
posts after training and checks that no suggestion or Explore post breaks a rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from recommend_support import community_engagements, community_follows, spark_for_tests

from ml.recommenders.explore import Explore, ExploreParams
from ml.recommenders.who_to_follow import WhoToFollow, evaluate_who_to_follow
from visibility import VisibilityGraph

USER_IDS = st.integers(min_value=1000, max_value=1299)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    yield spark_for_tests(tmp_path_factory.mktemp("spark"))


@pytest.fixture(scope="module")
def follows() -> pd.DataFrame:
    return community_follows()


@pytest.fixture(scope="module")
def who_to_follow(spark: SparkSession, follows: pd.DataFrame) -> WhoToFollow:
    return WhoToFollow.fit(spark, follows)


@pytest.fixture(scope="module")
def explore(spark: SparkSession, follows: pd.DataFrame) -> Explore:
    engagements, posts = community_engagements(follows)
    as_of = posts["created_at"].max().to_pydatetime() + timedelta(hours=1)
    return Explore.fit(spark, engagements, posts, as_of)


def base_graph(follows: pd.DataFrame) -> VisibilityGraph:
    return VisibilityGraph.from_edges(
        follows=follows[["follower_id", "followee_id"]].itertuples(index=False)
    )


def test_who_to_follow_beats_popularity_on_held_out_follows(
    spark: SparkSession, follows: pd.DataFrame
) -> None:
    evaluation, _, _ = evaluate_who_to_follow(spark, follows, k=10)
    metrics = evaluation.metrics()
    # measured (seed 3, 300 users, 6 communities): Recall@10 0.35 vs popularity 0.13 (2.8x);
    # asserting 2x leaves room for ALS's nondeterminism across Spark versions
    assert evaluation.model.users == 300
    assert metrics["recall_at_10"] >= 2.0 * metrics["popularity_recall_at_10"], metrics
    assert metrics["ndcg_at_10"] >= 2.0 * metrics["popularity_ndcg_at_10"], metrics


@given(
    viewer=USER_IDS,
    blocks=st.lists(st.tuples(USER_IDS, USER_IDS), max_size=30),
    mutes=st.lists(st.tuples(USER_IDS, USER_IDS), max_size=30),
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_suggestions_never_include_followed_blocked_muted_blocking_or_self(
    who_to_follow: WhoToFollow,
    follows: pd.DataFrame,
    viewer: int,
    blocks: list[tuple[int, int]],
    mutes: list[tuple[int, int]],
) -> None:
    graph = base_graph(follows)
    for blocker, blocked in blocks:
        if blocker != blocked:
            graph.add_block(blocker, blocked)
    for muter, muted in mutes:
        if muter != muted:
            graph.add_mute(muter, muted)
    suggestions = [c for c, _ in who_to_follow.recommend(viewer, 20, graph)]
    assert suggestions, "every user of the graph should get suggestions"
    assert len(set(suggestions)) == len(suggestions)
    followed = graph.follows(viewer)
    blocked_by_viewer = {b for a, b in blocks if a == viewer}
    blocking_viewer = {a for a, b in blocks if b == viewer}
    muted_by_viewer = {b for a, b in mutes if a == viewer}
    barred = followed | blocked_by_viewer | blocking_viewer | muted_by_viewer
    assert viewer not in suggestions
    assert not set(suggestions) & barred


@given(
    viewer=USER_IDS,
    blocks=st.lists(st.tuples(USER_IDS, USER_IDS), max_size=30),
    mutes=st.lists(st.tuples(USER_IDS, USER_IDS), max_size=30),
    private=st.lists(USER_IDS, max_size=40),
    deleted=st.lists(st.integers(min_value=5_000_001, max_value=5_000_900), max_size=60),
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_explore_never_shows_followed_hidden_private_or_deleted_posts(
    explore: Explore,
    follows: pd.DataFrame,
    viewer: int,
    blocks: list[tuple[int, int]],
    mutes: list[tuple[int, int]],
    private: list[int],
    deleted: list[int],
) -> None:
    graph = base_graph(follows)
    for blocker, blocked in blocks:
        if blocker != blocked:
            graph.add_block(blocker, blocked)
    for muter, muted in mutes:
        if muter != muted:
            graph.add_mute(muter, muted)
    for user in private:
        graph.set_private(user, True)
    for post in deleted:
        graph.delete_post(post)
    assert explore.kind == "hybrid"  # the learned weights, not only the blend, are checked
    author_of = explore.pool.set_index("post_id")["author_id"]
    posts = [p for p, _ in explore.recommend(viewer, 30, graph)]
    assert posts, "a user with engagements should get Explore posts"
    per_author = pd.Series([int(author_of[p]) for p in posts]).value_counts()
    assert per_author.max() <= explore.params.max_per_author  # diversity holds under any graph
    authors = {int(author_of[p]) for p in posts}
    assert not set(posts) & set(deleted)
    assert viewer not in authors
    assert not authors & graph.follows(viewer)
    assert not authors & graph.hidden_authors(viewer)
    assert not authors & {a for a, b in blocks if b == viewer}  # blocking the viewer
    assert not authors & (set(private) - graph.follows(viewer))


def test_explore_taste_finds_the_viewers_community(explore: Explore, follows: pd.DataFrame) -> None:
    """Explore's taste term (ALS author factors) ranks posts of friends of friends (the
    planted community) far above their share of the candidate pool."""
    graph = base_graph(follows)
    author_of = explore.pool.set_index("post_id")["author_id"]
    taste = ExploreParams(neighbour_weight=0.0, taste_weight=1.0, popularity_weight=0.0)
    explore = Explore(explore.factors, explore.pool, explore.engaged, taste)
    share, base = [], []
    for viewer in sorted(graph._following)[:80]:
        followed = graph.follows(viewer)
        second = {c for f in followed for c in graph.follows(f)} - followed - {viewer}
        posts = [p for p, _ in explore.recommend(viewer, 10, graph)]
        share.append(np.mean([author_of[p] in second for p in posts]))
        candidates = explore.pool[~explore.pool["author_id"].isin(followed | {viewer})]
        base.append(candidates["author_id"].isin(second).mean())
    # measured: 0.86 of the top 10 vs 0.32 of the pool (taste alone)
    assert np.mean(share) >= 1.8 * np.mean(base), (np.mean(share), np.mean(base))


def test_models_survive_save_and_load(
    who_to_follow: WhoToFollow, explore: Explore, follows: pd.DataFrame, tmp_path: Path
) -> None:
    graph = base_graph(follows)
    users = sorted(graph._following)[:20]
    loaded_wtf = WhoToFollow.load(who_to_follow.save(tmp_path / "wtf"), graph)
    loaded_explore = Explore.load(explore.save(tmp_path / "explore"), graph)
    for user in users:
        assert loaded_wtf.recommend(user, 10) == who_to_follow.recommend(user, 10, graph)
        assert loaded_explore.recommend(user, 10) == explore.recommend(user, 10, graph)
    with pytest.raises(ValueError, match="who-to-follow"):
        WhoToFollow.load(tmp_path / "explore")


def test_new_users_get_popular_accounts_and_posts(
    who_to_follow: WhoToFollow, explore: Explore, follows: pd.DataFrame
) -> None:
    graph = base_graph(follows)
    newcomer = 99
    suggestions = who_to_follow.recommend(newcomer, 5, graph)
    followers = follows["followee_id"].value_counts()
    assert [followers[c] for c, _ in suggestions] == followers.iloc[:5].tolist()
    posts = explore.recommend(newcomer, 5, graph)
    assert len(posts) == 5
    explore.add_post(9_999_999, int(followers.index[0]), datetime(2026, 11, 5, tzinfo=UTC))
    assert 9_999_999 in explore.pool["post_id"].tolist()


def test_recommending_without_a_visibility_graph_is_refused(who_to_follow: WhoToFollow) -> None:
    bare = WhoToFollow(who_to_follow.factors, who_to_follow.popularity, who_to_follow.params)
    with pytest.raises(ValueError, match="VisibilityGraph"):
        bare.recommend(1000, 5)
