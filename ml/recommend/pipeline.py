"""Train and evaluate each recommender on the marts, ready to publish: the steps the Dagster
assets and the benchmark share.

The published model is the one trained on the evaluation's training side, so the figures logged
with it are its own, and promotion scores candidate and champion on the same holdout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ml.recommend.data import Interactions
from ml.recommend.explore import Explore, ExploreParams, evaluate_explore
from ml.recommend.who_to_follow import WhoToFollow, WhoToFollowParams, evaluate_who_to_follow
from visibility import VisibilityGraph

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class RecommenderRun:
    name: str
    model: WhoToFollow | Explore
    metrics: dict[str, float]
    params: dict[str, Any]
    holdout_ndcg: Callable[[Any], float]  # NDCG@k of any recommender of this kind
    details: dict[str, Any] = field(default_factory=dict)


def who_to_follow_run(
    spark: SparkSession,
    interactions: Interactions,
    visibility: VisibilityGraph,
    params: WhoToFollowParams | None = None,
    k: int = 10,
) -> RecommenderRun:
    params = params or WhoToFollowParams()
    evaluation, model, holdout = evaluate_who_to_follow(
        spark,
        interactions.follows,
        params,
        engagements=interactions.engagements,
        k=k,
        base=visibility,
    )
    model.visibility = visibility
    return RecommenderRun(
        "who-to-follow",
        model,
        evaluation.metrics(),
        {
            **params.as_dict(),
            "k": k,
            "train_follows": len(holdout.train),
            "holdout_follows": len(holdout.test),
        },
        lambda recommender: holdout.score(recommender, k).ndcg,
        evaluation.as_json(),
    )


def explore_run(
    spark: SparkSession,
    interactions: Interactions,
    visibility: VisibilityGraph,
    params: ExploreParams | None = None,
    k: int = 10,
) -> RecommenderRun:
    params = params or ExploreParams()
    evaluation, model, holdout = evaluate_explore(
        spark, interactions.engagements, interactions.posts, visibility, params, k=k
    )
    model.visibility = visibility
    return RecommenderRun(
        "explore",
        model,
        evaluation.metrics(),
        {
            **params.as_dict(),
            "k": k,
            "cutoff": str(holdout.cutoff),
            "train_engagements": len(holdout.train),
            "pool_posts": len(holdout.pool),
        },
        lambda recommender: holdout.score(recommender, k).ndcg,
        {"cutoff": str(holdout.cutoff), "relevant_users": len(holdout.relevant)},
    )
