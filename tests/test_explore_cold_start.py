"""Explore for a viewer with no engagements (no ALS row): the posts the accounts they follow
engaged with come before merely popular ones; with no follows either, popularity decides."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.recommenders.explore import Explore, ExploreParams
from ml.recommenders.factors import Factors
from visibility import VisibilityGraph


def test_a_viewer_without_engagements_gets_explore_from_their_follows() -> None:
    rng = np.random.default_rng(2)
    ids = np.arange(1, 21, dtype=np.int64)
    factors = Factors(ids, rng.normal(size=(20, 4)), ids, rng.normal(size=(20, 4)))
    pool = pd.DataFrame(
        {
            "post_id": [100, 101, 102],
            "author_id": [10, 11, 12],
            "created_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "popularity": [1.0, 50.0, 20.0],  # 101 is the popular one
        }
    )
    engaged = pd.DataFrame({"post_id": [100, 100, 102], "user_id": [1, 2, 15]})
    explore = Explore(factors, pool, engaged, ExploreParams(neighbour_weight=2.0))
    newcomer = 99  # no engagements, so no ALS row
    graph = VisibilityGraph.from_edges(follows=[(newcomer, 1), (newcomer, 2)])
    assert factors.user_row(newcomer) is None
    ranked = [p for p, _ in explore.recommend(newcomer, 3, graph)]
    assert ranked[0] == 100, ranked  # what the follows engaged with, though least popular
    # nobody followed either: popularity alone
    stranger = VisibilityGraph.from_edges(follows=[(5, 6)])
    assert [p for p, _ in explore.recommend(98, 3, stranger)] == [101, 102, 100]
