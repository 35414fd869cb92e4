"""Explore's hybrid: its rules (at most k posts per author in a page, nothing too old or not yet
published at request time) and its signal weights, which must come from the data: planted taste
for hashtags makes the hashtag signal weigh most, planted taste for a media type makes the media
signal weigh most, planted taste for the topics a viewer picked at signup makes the topic signal
weigh most, with the same code and parameters (real Spark ALS for the collaborative signals).
Weights that rank unseen validation users below popularity alone are not kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from recommend_support import spark_for_tests

from ml.recommenders.explore import (
    Explore,
    ExploreParams,
    ValidationUser,
    checked_weights,
    fit_signal_weights,
)
from ml.recommenders.explore_signals import SIGNALS, ContentProfiles, Declared
from ml.recommenders.factors import AlsParams, Factors
from visibility import VisibilityGraph

START = pd.Timestamp("2026-11-01", tz="UTC")
TAGS = ("cats", "food", "travel", "music")
MEDIA = ("photo", "video", "carousel")
SMALL_ALS = AlsParams(rank=4, max_iter=3, reg=0.1, alpha=5.0)  # the signals, cheaply (CI time)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    yield spark_for_tests(tmp_path_factory.mktemp("spark"))


def pool_explore(params: ExploreParams, created: list[pd.Timestamp] | None = None) -> Explore:
    """Ten posts by author 10 (the most popular), one each by authors 11-15 (collaborative)."""
    ids = np.arange(1, 21, dtype=np.int64)
    rng = np.random.default_rng(1)
    factors = Factors(ids, rng.normal(size=(20, 4)), ids, rng.normal(size=(20, 4)))
    authors = [10] * 10 + [11, 12, 13, 14, 15]
    pool = pd.DataFrame(
        {
            "post_id": np.arange(100, 115, dtype=np.int64),
            "author_id": authors,
            "created_at": created or [START] * 15,
            "popularity": [100.0 - i for i in range(10)] + [5.0, 4.0, 3.0, 2.0, 1.0],
        }
    )
    engaged = pd.DataFrame({"post_id": [114], "user_id": [2]})
    return Explore(factors, pool, engaged, params, as_of=START + pd.Timedelta(hours=1))


def test_a_page_has_at_most_k_posts_of_one_author() -> None:
    graph = VisibilityGraph.from_edges(follows=[(1, 19)])
    authors = pool_explore(ExploreParams(max_per_author=2)).pool.set_index("post_id")["author_id"]
    for cap in (1, 2, 3):
        page = pool_explore(ExploreParams(max_per_author=cap)).recommend(1, 8, graph)
        counts = pd.Series([authors[p] for p, _ in page]).value_counts()
        assert counts.max() == cap, page  # the popular author fills exactly its share
        assert len(page) == min(8, cap + 5)
    uncapped = pool_explore(ExploreParams(max_per_author=0)).recommend(1, 8, graph)
    assert [authors[p] for p, _ in uncapped] == [10] * 8  # what the cap prevents


def test_posts_older_than_the_limit_or_not_yet_published_are_never_shown() -> None:
    graph = VisibilityGraph.from_edges(follows=[(1, 19)])
    created = (
        [START - pd.Timedelta(hours=100)] * 5 + [START] * 5 + [START + pd.Timedelta(days=2)] * 5
    )
    explore = pool_explore(ExploreParams(max_per_author=0, max_age_hours=72.0), created)
    at = START + pd.Timedelta(hours=1)
    shown = {p for p, _ in explore.recommend(1, 15, graph, now=at)}
    assert shown == set(range(105, 110))  # 100 h old and future posts dropped
    later = explore.recommend(1, 15, graph, now=START + pd.Timedelta(days=3, hours=1))
    assert {p for p, _ in later} == set(range(110, 115))  # now the 2-day-later posts only
    # the default `now` is when the pool was cut
    assert {p for p, _ in explore.recommend(1, 15, graph)} == shown
    no_limit = pool_explore(ExploreParams(max_per_author=0, max_age_hours=0), created)
    assert {p for p, _ in no_limit.recommend(1, 15, graph, now=at)} == set(range(100, 110))


def planted(taste: str, seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """80 viewers, 30 authors posting every hour for 2 days; a viewer engages (within a day)
    with a post far more often when it carries their hashtag (`taste="hashtags"`) or media type
    ("media")."""
    rng = np.random.default_rng(seed)
    viewers = np.arange(1000, 1080)
    authors = np.arange(2000, 2030)
    hours = 48
    n = len(authors) * hours
    posts = pd.DataFrame(
        {
            "post_id": np.arange(5_000_000, 5_000_000 + n, dtype=np.int64),
            "author_id": np.tile(authors, hours),
            "created_at": START + pd.to_timedelta(np.repeat(np.arange(hours), len(authors)), "h"),
            "is_deleted": False,
            "media_type": rng.choice(MEDIA, n),
            "hashtags": [[t] for t in rng.choice(TAGS, n)],
            "location_id": 0,
        }
    )
    liked_tag = rng.choice(TAGS, len(viewers))
    liked_media = rng.choice(MEDIA, len(viewers))
    rows = []
    for i, viewer in enumerate(viewers):
        shown = rng.choice(n, 200, replace=False)
        tag = np.array([t[0] for t in posts["hashtags"].to_numpy()[shown]]) == liked_tag[i]
        media = posts["media_type"].to_numpy()[shown] == liked_media[i]
        match = tag if taste == "hashtags" else media
        chance = np.where(match, 0.5, 0.03)
        for row in shown[rng.random(len(shown)) < chance]:
            at = posts["created_at"].iloc[row] + pd.Timedelta(minutes=int(rng.integers(1, 24 * 60)))
            rows.append(
                (
                    int(viewer),
                    int(posts["post_id"].iloc[row]),
                    int(posts["author_id"].iloc[row]),
                    at,
                )
            )
    engagements = pd.DataFrame(rows, columns=["viewer_id", "post_id", "author_id", "engaged_at"])
    engagements["weight"] = 1.0
    return engagements, posts


@pytest.mark.parametrize("taste", ["hashtags", "media"])
def test_the_weights_are_learned_from_the_data(spark: SparkSession, taste: str) -> None:
    engagements, posts = planted(taste)
    as_of = datetime(2026, 11, 3, tzinfo=UTC)
    graph = VisibilityGraph.from_edges(follows=[])
    params = ExploreParams(SMALL_ALS, window_hours=48.0, max_age_hours=48.0)
    model = Explore.fit(spark, engagements, posts, as_of, params, graph)
    assert model.kind == "hybrid" and model.weights is not None
    assert model.weights.rows > 1000 and model.weights.positives > 100
    weights = model.weights.weights()
    assert list(weights) == list(SIGNALS)
    content = {name: weights[name] for name in ("author", "hashtags", "media", "location")}
    assert max(content, key=lambda name: content[name]) == taste, weights
    assert weights[taste] > 0.3, weights
    # and the ranking follows: a viewer's page is mostly their planted taste
    viewer = int(engagements["viewer_id"].iloc[0])
    column = "hashtags" if taste == "hashtags" else "media_type"
    theirs = engagements[engagements["viewer_id"] == viewer].merge(posts, on="post_id")
    favourite = theirs[column].astype(str).value_counts().index[0]
    page = [p for p, _ in model.recommend(viewer, 10, graph)]
    on_page = posts.set_index("post_id").loc[page, column].astype(str)
    assert (on_page == favourite).mean() >= 0.6, (favourite, on_page.tolist())


def test_without_validation_data_there_are_no_weights(spark: SparkSession) -> None:
    """No engagement times: no validation split, so no learned weights (the collaborative blend
    ranks and says so), never weights set by hand."""
    engagements, posts = planted("hashtags")
    weights = fit_signal_weights(
        spark,
        engagements.drop(columns="engaged_at"),
        posts,
        ExploreParams(SMALL_ALS, window_hours=48.0),
        VisibilityGraph.from_edges(follows=[]),
    )
    assert weights is None
    bare = pool_explore(ExploreParams())
    assert bare.kind == "collaborative"


def test_content_profiles_round_trip(tmp_path_factory: pytest.TempPathFactory) -> None:
    engagements, posts = planted("media")
    profiles = ContentProfiles.build(engagements, posts)
    directory = tmp_path_factory.mktemp("profiles")
    profiles.save(directory)
    loaded = ContentProfiles.load(directory)
    pool = profiles.pool(posts.head(200))
    again = loaded.pool(posts.head(200))
    viewer = int(engagements["viewer_id"].iloc[0])
    assert np.allclose(profiles.viewer_signals(viewer, pool), loaded.viewer_signals(viewer, again))
    assert (profiles.viewer_signals(viewer, pool)[:, 2] > 0).all()  # media shares, smoothed
    engagements, posts, declared = planted_topics()  # and the declared topics
    profiles = ContentProfiles.build(engagements, posts, declared)
    profiles.save(directory / "declared")
    loaded = ContentProfiles.load(directory / "declared")
    pool, again = profiles.pool(posts.head(200)), loaded.pool(posts.head(200))
    signals = profiles.viewer_signals(1000, pool)
    assert np.allclose(signals, loaded.viewer_signals(1000, again))
    assert signals[:, 4].max() == 1.0  # topics: a post about the topic viewer 1000 picked


def test_new_posts_carry_their_content() -> None:
    engagements, posts = planted("hashtags")
    explore = pool_explore(ExploreParams())
    explore.profiles = ContentProfiles.build(engagements, posts)
    explore.add_post(9_999_999, 2001, START, media_type="photo", hashtags=("cats",))
    assert explore.pool.iloc[-1]["hashtags"] == ["cats"]
    fan = int(engagements["viewer_id"].iloc[0])
    rows = explore.signal_rows(fan, VisibilityGraph(), explore.as_of)
    assert rows.shape == (len(explore.pool), len(SIGNALS))
    hashtags = SIGNALS.index("hashtags")
    share = explore.profiles.by_tag[explore.profiles.viewer_ids.get_loc(fan)].toarray().ravel()
    cats = share[explore.profiles.tags.get_loc("cats")]
    assert rows[-1, hashtags] == pytest.approx(cats) and cats > 0


def planted_topics(seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame, Declared]:
    """The hashtag world of `planted`, but each viewer engages far more often with posts about
    the topic they picked at signup; a post's topic is drawn apart from its hashtags and media,
    so only the declared topics explain the engagements."""
    _, posts = planted("media", seed)  # its posts only: the engagements are drawn here
    rng = np.random.default_rng(seed)
    viewers = np.arange(1000, 1080)
    picked = rng.integers(0, len(TAGS), len(viewers))
    about = rng.integers(0, len(TAGS), len(posts))
    user_topics = pd.DataFrame(np.eye(len(TAGS))[picked], index=viewers, columns=list(TAGS))
    post_topics = pd.DataFrame(np.eye(len(TAGS))[about], index=posts["post_id"], columns=list(TAGS))
    topic_of = dict(zip(posts["post_id"].tolist(), about.tolist(), strict=True))
    pick_of = dict(zip(viewers.tolist(), picked.tolist(), strict=True))
    rows = []
    for viewer in viewers.tolist():
        shown = rng.choice(len(posts), 200, replace=False)
        ids = posts["post_id"].to_numpy()[shown]
        match = np.array([topic_of[int(p)] == pick_of[viewer] for p in ids])
        for row in shown[rng.random(len(shown)) < np.where(match, 0.5, 0.03)]:
            at = posts["created_at"].iloc[row] + pd.Timedelta(minutes=int(rng.integers(1, 24 * 60)))
            rows.append(
                (viewer, int(posts["post_id"].iloc[row]), int(posts["author_id"].iloc[row]), at)
            )
    engagements = pd.DataFrame(rows, columns=["viewer_id", "post_id", "author_id", "engaged_at"])
    engagements["weight"] = 1.0
    declared = Declared(user_topics, post_topics, pd.Series(dtype=object))
    return engagements, posts, declared


def test_topics_the_viewer_picked_are_learned(spark: SparkSession) -> None:
    """The topic signal (signup topics x what the post is about) exists, weighs most when it is
    what drives engagement, and the page follows it."""
    engagements, posts, declared = planted_topics()
    as_of = datetime(2026, 11, 3, tzinfo=UTC)
    graph = VisibilityGraph.from_edges(follows=[])
    params = ExploreParams(SMALL_ALS, window_hours=48.0, max_age_hours=48.0)
    model = Explore.fit(spark, engagements, posts, as_of, params, graph, declared=declared)
    assert model.weights is not None
    weights = model.weights.weights()
    assert max(weights, key=lambda name: weights[name]) == "topics", weights
    assert model.weights.validation_ndcg > model.weights.validation_popularity_ndcg
    viewer = 1000
    page = [p for p, _ in model.recommend(viewer, 10, graph)]
    topics = declared.post_topics.loc[page].to_numpy().argmax(axis=1)
    favourite = int(declared.user_topics.loc[viewer].to_numpy().argmax())
    assert (topics == favourite).mean() >= 0.6, (favourite, topics.tolist())


def validation_users(trap: bool, users: int = 30, seed: int = 0) -> list[ValidationUser]:
    """Validation users of 100 candidates each; the most popular candidate is engaged with.
    With `trap`, five middling candidates are engaged with too and carry the `author` signal,
    which ten a little more popular candidates nobody engaged with carry as well: across all
    rows the author signal separates engaged from not far better than popularity does, so a
    regression fitted on the rows ranks those ten first (none engaged), while popularity ranks
    the one popular positive first.
    Without it the author signal marks the positives: a real signal."""
    rng = np.random.default_rng(seed)
    popularity, author = SIGNALS.index("popularity"), SIGNALS.index("author")
    out = []
    for _ in range(users):
        signals = np.zeros((100, len(SIGNALS)))
        signals[:, popularity] = np.linspace(0.0, 1.0, 100) + rng.normal(0, 0.001, 100)
        engaged = np.zeros(100, dtype=bool)
        engaged[99] = True
        if trap:
            engaged[45:50] = True
            signals[45:50, author] = 1.0
            signals[60:70, author] = 1.0
        else:
            engaged[[20, 40, 60]] = True
            signals[[20, 40, 60], author] = 1.0
        out.append(ValidationUser(signals, engaged.astype(np.int64), signals, engaged, 10))
    return out


def test_weights_that_rank_unseen_users_below_popularity_are_not_kept() -> None:
    """Popularity is one of the signals, so the hybrid must never rank below it: the weights are
    checked on validation users they were not fitted on, and replaced by popularity alone when
    they lose (before, the regression's weights were used whatever they ranked)."""
    trapped = validation_users(trap=True)
    weights = checked_weights(trapped, 0.01, np.random.default_rng(0))
    assert weights is not None
    assert weights.validation_ndcg < weights.validation_popularity_ndcg  # the trap worked
    ranking = weights.weights()
    assert ranking["popularity"] == 1.0 and sum(abs(v) for v in ranking.values()) == 1.0
    for case in trapped:  # popularity's ranking: the popular positive first
        assert case.ndcg(weights.score(case.candidates)) == case.ndcg(case.candidates[:, 0])
    honest = checked_weights(validation_users(trap=False), 0.01, np.random.default_rng(0))
    assert honest is not None and honest.weights()["author"] > 0  # a real signal is kept
    assert honest.validation_ndcg > honest.validation_popularity_ndcg
