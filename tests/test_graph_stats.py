"""The follow-graph statistics (`workload.graph_stats`) on a graph small enough to count by hand,
and the generator's graph having the structure issue 14 asks for: reciprocity, clustering
(friends-of-friends already followed), and a heavy-tailed in-degree led by one account."""

from __future__ import annotations

import pandas as pd
import pytest

from workload.graph_stats import generated_follows, graph_stats


def test_statistics_of_a_tiny_graph() -> None:
    # 1 <-> 2 mutual, 1 -> 3, 2 -> 3, 3 -> 4: 4 edges between the three sampled, 2 reciprocated
    follows = pd.DataFrame({"follower_id": [1, 2, 1, 2, 3], "followee_id": [2, 1, 3, 3, 4]})
    stats = graph_stats(follows, sample=10)
    assert stats.sampled == 3  # the accounts that follow someone
    assert stats.reciprocity == pytest.approx(2 / 4)
    # user 1 follows 2, 3; their follows: 1 (self, dropped), 3, 4 -> top {3, 4}: 3 followed
    # user 2: friends 1, 3 -> {2: self, 3, 4}: 3 followed; user 3: friend 4 -> nothing
    assert stats.fof_top50_followed == pytest.approx(0.5)
    assert stats.out_degree_median == 2
    assert stats.in_degree_top_share == pytest.approx(2 / 3)  # 3 is followed by 1 and 2


def test_generated_graph_is_reciprocal_clustered_and_heavy_tailed() -> None:
    stats = graph_stats(generated_follows(400, 2, 3))
    assert 0.3 < stats.reciprocity < 0.7  # real: 0.45; popularity alone gave 0.03
    assert stats.fof_top_k_followed > 0.3  # real: 0.60; popularity alone gave about 0.2
    assert stats.in_degree_top_share > 0.6  # real: 0.85
