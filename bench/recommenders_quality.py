"""Who to follow and Explore on a freshly built platform (generated workload -> marts in chDB),
trained and evaluated exactly as the Dagster assets do (`ml.recommend.pipeline`).

    uv run python -m bench.recommenders_quality --users 1000 --days 3 --seed 11

Prints each model's holdout metrics beside popularity (and, for who to follow, item-item CF,
the hand-weighted blend, ALS alone and friends-of-friends alone), all from the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "tests"))
    from platform_support import build_platform

    from appconfig import Settings
    from ml.recommend.data import load_interactions
    from ml.recommend.pipeline import explore_run, who_to_follow_run
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
        for train in (who_to_follow_run, explore_run):
            run = train(spark, interactions, graph)
            print(run.name, {k: round(v, 4) for k, v in run.metrics.items()})
    finally:
        stop_spark()


if __name__ == "__main__":
    main()
