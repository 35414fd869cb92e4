"""Train and evaluate each recommender on the marts, ready to publish: the steps the Dagster
assets and the benchmark share.

The published model is the one trained on the evaluation's training side, so the figures logged
with it are its own, and promotion scores candidate and champion on the same holdout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ml.recommenders.data import Interactions
from ml.recommenders.explore import Explore, ExploreParams, evaluate_explore
from ml.recommenders.explore_signals import Declared
from ml.recommenders.who_to_follow import WhoToFollow, WhoToFollowParams, evaluate_who_to_follow
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
    baseline_ndcg: float  # popularity's NDCG@k on the same holdout: the promotion gate's floor
    details: dict[str, Any] = field(default_factory=dict)
    holdout: Any = None  # the holdout itself (benchmarks compute intervals over its users)


def who_to_follow_run(
    spark: SparkSession,
    interactions: Interactions,
    visibility: VisibilityGraph,
    params: WhoToFollowParams | None = None,
    k: int = 20,
) -> RecommenderRun:
    params = params or WhoToFollowParams()
    evaluation, model, holdout = evaluate_who_to_follow(
        spark,
        interactions.follows,
        params,
        engagements=interactions.engagements,
        k=k,
        base=visibility,
        users=interactions.users,
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
        evaluation.popularity.ndcg,
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
    declared = Declared.of(interactions.user_topics, interactions.post_topics, interactions.users)
    evaluation, model, holdout = evaluate_explore(
        spark,
        interactions.engagements,
        interactions.posts,
        visibility,
        params,
        k=k,
        declared=declared,
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
        evaluation.metrics()[f"popularity_ndcg_at_{k}"],
        {
            "cutoff": str(holdout.cutoff),
            "relevant_users": len(holdout.relevant),
            "kind": model.kind,
            "signal_weights": evaluation.weights,
        },
        holdout,
    )


def main() -> None:
    """`python -m ml.recommenders.pipeline`: both recommenders evaluated on the marts of the
    configured data dir (after `make demo`), with the latency of `recommend(user, 20)`."""
    import time

    import numpy as np
    from rich.console import Console

    from appconfig import get_settings
    from ml.recommenders.data import load_interactions
    from ml.spark import spark_session, stop_spark
    from warehouse import clickhouse_client

    console = Console()
    settings = get_settings()
    with console.status("reading the marts"), clickhouse_client(settings.clickhouse_url) as client:
        interactions = load_interactions(client, settings)
        visibility = VisibilityGraph.from_clickhouse(client, settings)
    console.print(
        f"{len(interactions.follows):,} follows, {len(interactions.engagements):,} "
        f"engagements, {len(interactions.posts):,} posts; {visibility!r}"
    )
    try:
        spark = spark_session(settings)
        for train in (who_to_follow_run, explore_run):
            with console.status(f"training and evaluating {train.__name__}"):
                started = time.perf_counter()
                run = train(spark, interactions, visibility)
                seconds = time.perf_counter() - started
            console.print(
                f"{run.name} ({seconds:.1f} s): "
                + ", ".join(f"{k} {v:.4f}" for k, v in run.metrics.items())
            )
            users = [u for u in interactions.follows["follower_id"].unique()[:500]]
            latencies = []
            for user in users:
                started = time.perf_counter()
                run.model.recommend(int(user), 20)
                latencies.append((time.perf_counter() - started) * 1000)
            console.print(
                f"{run.name} recommend(k=20): p50 {np.percentile(latencies, 50):.2f} ms, "
                f"p99 {np.percentile(latencies, 99):.2f} ms over {len(users)} users"
            )
    finally:
        stop_spark()


if __name__ == "__main__":
    main()
