"""Who to follow's learned path without Spark: random ALS factors and fixed ranker weights, so
hypothesis can draw whole graphs (follows, blocks, mutes) cheaply. Whatever the weights, no
suggestion may be the user, an account they follow, block, are blocked by or mute, through the
ranked path and the cold-start path alike. Cold start: a user who follows nobody gets the most
followed accounts of their own country (then interests) first. The features and the ranker's
fit are checked on a graph where the answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.recommenders.evaluate import Popularity
from ml.recommenders.factors import Factors
from ml.recommenders.follow_features import (
    FEATURES,
    ItemItemCF,
    UserAttributes,
    candidates,
    features,
)
from ml.recommenders.who_to_follow import FollowRanker, WhoToFollow, WhoToFollowParams
from visibility import VisibilityGraph

IDS = list(range(1, 41))
PAIRS = st.tuples(st.sampled_from(IDS), st.sampled_from(IDS)).filter(lambda p: p[0] != p[1])


def model(follows: list[tuple[int, int]], attributes: UserAttributes | None = None) -> WhoToFollow:
    rng = np.random.default_rng(1)
    ids = np.array(IDS, dtype=np.int64)
    factors = Factors(ids, rng.normal(size=(len(ids), 3)), ids, rng.normal(size=(len(ids), 3)))
    popular = Popularity([b for _, b in follows] or IDS)
    width = len(FEATURES)
    ranker = FollowRanker(np.zeros(width), np.ones(width), rng.normal(size=width), 0.0)
    return WhoToFollow(factors, popular, WhoToFollowParams(), None, ranker, attributes)


@given(
    follows=st.lists(PAIRS, max_size=120, unique=True),
    blocks=st.lists(PAIRS, max_size=15),
    mutes=st.lists(PAIRS, max_size=15),
    viewer=st.sampled_from(IDS),
)
@settings(max_examples=150, deadline=None)
def test_never_suggests_self_followed_blocked_blocking_or_muted(
    follows: list[tuple[int, int]],
    blocks: list[tuple[int, int]],
    mutes: list[tuple[int, int]],
    viewer: int,
) -> None:
    graph = VisibilityGraph.from_edges(follows=follows, blocks=blocks, mutes=mutes)
    recommender = model(follows)
    suggested = [c for c, _ in recommender.recommend(viewer, 30, graph)]
    barred = (
        {viewer}
        | graph.follows(viewer)
        | {b for a, b in blocks if a == viewer}
        | {a for a, b in blocks if b == viewer}
        | {b for a, b in mutes if a == viewer}
    )
    assert len(set(suggested)) == len(suggested)
    assert not set(suggested) & barred, (suggested, barred)
    cf = ItemItemCF(pd.DataFrame(follows or [(1, 2)], columns=["follower_id", "followee_id"]))
    assert not set(cf.recommend(graph, viewer, 30)) & barred


def test_cold_start_prefers_the_users_country_then_interests() -> None:
    # 1..20 follow popular accounts 30 (FR), 31 (US), 32 (US, interest 5), 33 (FR, interest 5)
    follows = [(u, 30) for u in range(1, 21)] + [(u, 31) for u in range(1, 16)]
    follows += [(u, 32) for u in range(1, 9)] + [(u, 33) for u in range(1, 5)]
    attributes = UserAttributes(
        {40: "FR", 30: "FR", 31: "US", 32: "US", 33: "FR"},
        {40: frozenset({5}), 32: frozenset({5}), 33: frozenset({5})},
    )
    graph = VisibilityGraph.from_edges(follows=follows)
    newcomer = model(follows, attributes)
    top = [c for c, _ in newcomer.recommend(40, 4, graph)]
    assert top[:2] == [30, 33]  # the user's country first, by popularity
    # no attributes known: popularity alone
    assert [c for c, _ in model(follows).recommend(40, 3, graph)] == [30, 31, 32]


def test_features_of_a_known_graph() -> None:
    # 1 follows 2, 3; both follow 4; 4 follows 1; 5 is followed by 2 only
    graph = VisibilityGraph.from_edges(follows=[(1, 2), (1, 3), (2, 4), (3, 4), (4, 1), (2, 5)])
    popular = Popularity([2, 3, 4, 4, 1, 5])
    ids, fof = candidates(graph, 1, None, popular)
    assert set(ids) == {4, 5}  # friends-of-friends and followers, never 1, 2, 3
    rows = features(graph, 1, ids, fof, None, popular.scores(), UserAttributes.empty())
    by_id = dict(zip(ids.tolist(), rows, strict=True))
    column = {name: i for i, name in enumerate(FEATURES)}
    assert by_id[4][column["common_neighbours"]] == pytest.approx(np.log1p(2))
    assert by_id[4][column["follows_back"]] == 1.0 and by_id[5][column["follows_back"]] == 0.0
    assert by_id[4][column["jaccard"]] == 1.0  # 1's follows {2, 3} = 4's followers {2, 3}
    assert by_id[4][column["adamic_adar"]] > by_id[5][column["adamic_adar"]]


def test_ranker_learns_which_features_predict_a_follow() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(2000, len(FEATURES)))
    labels = (rows[:, 0] - rows[:, 6] + 0.3 * rng.normal(size=2000) > 1).astype(np.int64)
    weights = FollowRanker.fit(rows, labels).weights()
    assert weights["common_neighbours"] > 1 and weights["popularity"] < -1
    assert all(np.isfinite(list(weights.values())))
