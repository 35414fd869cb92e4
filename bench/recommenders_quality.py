"""Who to follow and Explore on a freshly built platform (generated workload -> marts in chDB),
trained and evaluated exactly as the Dagster assets do (`ml.recommenders.pipeline`).

    uv run python -m bench.recommenders_quality --users 1000 --days 3 --seed 11

Prints each model's holdout metrics beside popularity (and, for who to follow, item-item CF,
the hand-weighted blend, ALS alone and friends-of-friends alone; for Explore the collaborative-
only blend, the hybrid without its per-author cap and a 95% bootstrap interval, over evaluated
users, of the hybrid's NDCG@10 ratio to popularity), all from the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--explore-only", action="store_true")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "tests"))
    from platform_support import build_platform

    from appconfig import Settings
    from ml.recommenders.data import load_interactions
    from ml.recommenders.pipeline import explore_run, who_to_follow_run
    from ml.spark import spark_session, stop_spark
    from visibility import VisibilityGraph
    from warehouse import clickhouse_client

    work = Path(tempfile.mkdtemp(prefix="recommenders-"))
    started = time.perf_counter()
    built = build_platform(work, users=args.users, days=args.days, seed=args.seed)
    print(
        f"built {args.users} users x {args.days} days (seed {args.seed}) in "
        f"{time.perf_counter() - started:.0f} s"
    )
    with clickhouse_client(built.settings.clickhouse_url) as client:
        interactions = load_interactions(client, built.settings)
        graph = VisibilityGraph.from_clickhouse(client, built.settings)
    print(f"{len(interactions.follows):,} follows, {len(interactions.engagements):,} engagements")
    spark = spark_session(Settings(PLATFORM_DATA_DIR=work / "spark"))
    try:
        trains = (explore_run,) if args.explore_only else (who_to_follow_run, explore_run)
        for train in trains:
            run = train(spark, interactions, graph)
            print(run.name, {k: round(v, 4) for k, v in run.metrics.items()})
            if run.name == "explore":
                explore_spread(run)
    finally:
        stop_spark()


def explore_spread(run: object) -> None:
    """Per-user NDCG@10 of the hybrid, popularity and the collaborative blend on the run's
    holdout; a paired bootstrap over users gives the ratio's 95% interval."""
    from dataclasses import replace

    import numpy as np

    from ml.recommenders.evaluate import per_user_ndcg
    from ml.recommenders.explore import collaborative_only, popularity_only

    model, holdout = run.model, run.holdout  # type: ignore[attr-defined]
    variants = {
        "hybrid": model,
        "hybrid_uncapped": model.with_pool(
            model.pool, model.engaged, model.as_of, replace(model.params, max_per_author=0)
        ),
        "popularity": _without_weights(model, popularity_only(model.params)),
        # the baseline under the hybrid's own rules (at most max_per_author posts per author):
        # the like-for-like comparison for the capped hybrid
        "popularity_capped": _without_weights(
            model,
            replace(popularity_only(model.params), max_per_author=model.params.max_per_author),
        ),
        "collaborative": _without_weights(model, collaborative_only(model.params)),
    }
    ndcg = {}
    for name, variant in variants.items():
        ranked = variant.with_pool(holdout.pool, holdout.engaged, holdout.cutoff)

        def recommend(user: int, n: int, ranked: Any = ranked) -> list[int]:
            return [p for p, _ in ranked.recommend(user, n, holdout.graph)]

        ndcg[name] = per_user_ndcg(recommend, holdout.relevant, 10)
    users = len(ndcg["popularity"])
    rng = np.random.default_rng(0)
    draws = rng.integers(0, users, size=(2000, users))
    for name in ("hybrid", "hybrid_uncapped", "popularity_capped", "collaborative"):
        ratios = ndcg[name][draws].mean(axis=1) / np.maximum(
            ndcg["popularity"][draws].mean(axis=1), 1e-12
        )
        low, high = np.percentile(ratios, [2.5, 97.5])
        print(
            f"explore {name}: NDCG@10 {ndcg[name].mean():.4f} vs popularity "
            f"{ndcg['popularity'].mean():.4f} = {ndcg[name].mean() / ndcg['popularity'].mean():.2f}x "
            f"(95% CI {low:.2f}-{high:.2f}, {users} users)"
        )
    weights = model.weights
    if weights is not None:
        print(
            f"explore weights: validation NDCG@10 (each fold by weights fitted on the others) "
            f"{weights.validation_ndcg:.4f} vs popularity {weights.validation_popularity_ndcg:.4f}; "
            f"{weights.positives} positives in {weights.rows} rows; "
            + ", ".join(f"{k} {v:.2f}" for k, v in weights.weights().items())
        )


def _without_weights(model: object, params: object) -> object:
    variant = model.with_pool(model.pool, model.engaged, model.as_of, params)  # type: ignore[attr-defined]
    variant.weights = None
    return variant


if __name__ == "__main__":
    main()
