"""The common holdout of `bench.common_holdout`: drawn from the generated world and the truth
alone (so every policy's rankers are scored on the same rows, whatever they served), only live
posts, never a viewer's own post, labels drawn from the true p; and its statistics (rank
correlation, AUC, paired bootstrap intervals) against their textbook definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from bench.common_holdout import (
    World,
    auc,
    bootstrap,
    draw_pairs,
    entity_sql,
    paired_difference,
    spearman,
    world_of,
)
from workload.config import WorkloadConfig, default_start
from workload.generator import generate
from workload.truth_oracle import TruthOracle


@pytest.fixture(scope="module")
def generated():
    workload = generate(WorkloadConfig(users=40, days=1, seed=5))
    return world_of(workload), TruthOracle.of(workload), default_start(1) + timedelta(days=1)


def truth_of(oracle: TruthOracle):
    return lambda v, p, a, now: float(oracle.probability(v, [p], [a], [0], now)[0])


def test_the_pairs_depend_on_the_world_and_seed_only(generated) -> None:
    world, oracle, at = generated
    first = draw_pairs(world, truth_of(oracle), at, 400, seed=7)
    again = draw_pairs(world, truth_of(oracle), at, 400, seed=7)
    other = draw_pairs(world, truth_of(oracle), at, 400, seed=8)
    assert first.equals(again)
    assert not first[["user_id", "post_id"]].equals(other[["user_id", "post_id"]])
    expected = [
        oracle.probability(int(u), [int(p)], [int(a)], [0], at.timestamp())[0]
        for u, p, a in zip(first["user_id"], first["post_id"], first["author_id"], strict=True)
    ]
    np.testing.assert_allclose(first["true_p"], expected)
    assert (first["position"] == 0).all() and not first["explored"].any()
    assert (first["user_id"] != first["author_id"]).all()
    assert first["impression_id"].is_unique


def test_only_posts_live_at_that_time_are_drawn() -> None:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    now = at.timestamp()
    world = World(
        users=np.array([1, 2, 3]),
        posts=np.array([10, 11, 12, 13]),
        authors=np.array([1, 2, 3, 1]),
        created_s=np.array([now - 10, now + 10, now - 10, now - 10]),  # 11: not yet posted
        deleted_s=np.array([np.inf, np.inf, now - 5, np.inf]),  # 12: deleted before
    )
    pairs = draw_pairs(world, lambda v, p, a, t: 0.5, at, 300, seed=1)
    assert set(pairs["post_id"]) == {10, 13}
    assert set(pairs["user_id"]) == {2, 3}  # user 1 wrote both live posts
    assert 0.4 < pairs["is_engaged"].mean() < 0.6  # drawn from p = 0.5


def test_labels_follow_the_true_p(generated) -> None:
    world, _, at = generated
    high = {int(p) for p in world.posts[::2]}
    pairs = draw_pairs(world, lambda v, p, a, t: 0.9 if p in high else 0.02, at, 2000, seed=3)
    liked = pairs["post_id"].isin(high)
    assert liked.any() and not liked.all()
    assert pairs.loc[liked, "is_engaged"].mean() > 0.8
    assert pairs.loc[~liked, "is_engaged"].mean() < 0.08


def test_the_entity_rows_carry_every_pair(generated) -> None:
    world, oracle, at = generated
    pairs = draw_pairs(world, truth_of(oracle), at, 5, seed=2)
    sql = entity_sql(pairs)
    for u, p in zip(pairs["user_id"], pairs["post_id"], strict=True):
        assert f", {u}, {p}, " in sql
    assert sql.count("('holdout-") == 5


def test_the_statistics_match_their_definitions() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random(500)
    scores = truth + rng.normal(0, 0.3, 500)
    labels = rng.random(500) < truth
    assert spearman(scores, truth) == pytest.approx(spearmanr(scores, truth).statistic)
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


def test_the_paired_interval_separates_a_better_ranker_and_not_a_copy() -> None:
    rng = np.random.default_rng(1)
    truth = rng.random(800)
    good = truth + rng.normal(0, 0.1, 800)
    poor = truth + rng.normal(0, 1.0, 800)
    better = paired_difference(good, poor, truth, resamples=150)
    assert better.low > 0
    same = paired_difference(good, good.copy(), truth, resamples=150)
    assert same.low == same.high == same.value == 0.0
    estimate = bootstrap(lambda rows: spearman(poor[rows], truth[rows]), 800, resamples=150)
    assert estimate.low < estimate.value < estimate.high
