"""Who to follow on a follow graph: the learned ranker against popularity and item-item CF.

    uv run python -m bench.who_to_follow_quality --users 1000 --days 3 --seed 7   # generated
    uv run python -m bench.who_to_follow_quality --edges follows.csv               # a real one

A generated graph is taken straight from the generator (every pair that ever followed, with its
first follow time), so the numbers need no platform build; an edge list without times is held
out at random per user (the `followed_since` column is then a random order). Recall@20 and
NDCG@20 on each user's latest 20% of follows, every model filtered the same way.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def generated(users: int, days: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from workload.config import WorkloadConfig
    from workload.graph import build_graph

    graph = build_graph(
        WorkloadConfig(users=users, days=days, seed=seed), np.random.default_rng(seed)
    )
    ids = graph.users["user_id"].to_numpy()
    rows = []
    for batch in graph.batches:
        if batch.event_type in ("follow", "follow_request"):
            rows.append(
                pd.DataFrame(
                    {
                        "follower_id": batch.columns["user_id"],
                        "followee_id": batch.columns["target_user_id"],
                        "followed_since": pd.to_datetime(batch.occurred_ms, unit="ms", utc=True),
                    }
                )
            )
    follows = pd.concat(rows).sort_values("followed_since")
    follows = follows.drop_duplicates(["follower_id", "followee_id"]).reset_index(drop=True)
    del ids
    users_frame = graph.users[["user_id", "country", "interests"]]
    return follows, users_frame


def from_csv(path: str, seed: int) -> pd.DataFrame:
    follows = pd.read_csv(path)
    if "followed_since" not in follows:
        order = np.random.default_rng(seed).permutation(len(follows))
        follows["followed_since"] = pd.to_datetime(order, unit="s", utc=True)
    else:
        follows["followed_since"] = pd.to_datetime(follows["followed_since"], utc=True)
    return follows[["follower_id", "followee_id", "followed_since"]].drop_duplicates(
        ["follower_id", "followee_id"]
    )


def main(argv: list[str] | None = None) -> None:
    from appconfig import Settings
    from ml.recommenders.who_to_follow import evaluate_who_to_follow
    from ml.spark import spark_session, stop_spark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--edges")
    parser.add_argument("--no-attributes", action="store_true", help="drop country/interests")
    args = parser.parse_args(argv)
    users = None
    if args.edges:
        follows = from_csv(args.edges, args.seed)
    else:
        follows, users = generated(args.users, args.days, args.seed)
    if args.no_attributes:
        users = None
    spark = spark_session(Settings(PLATFORM_DATA_DIR=Path(tempfile.mkdtemp())))
    try:
        started = time.perf_counter()
        evaluation, _, holdout = evaluate_who_to_follow(spark, follows, k=20, users=users)
        seconds = time.perf_counter() - started
    finally:
        stop_spark()
    print(f"{len(follows):,} follows, {len(holdout.test):,} held out, {seconds:.0f} s")
    rows = [
        ("learned ranker", evaluation.model),
        ("popularity", evaluation.popularity),
        ("item-item CF", evaluation.item_cf),
        ("blend (hand weights)", evaluation.blend),
        ("ALS only", evaluation.als_only),
        ("friends-of-friends only", evaluation.fof_only),
    ]
    for name, metrics in rows:
        print(f"{name:<26} Recall@20 {metrics.recall:.4f}  NDCG@20 {metrics.ndcg:.4f}")
    ratio = evaluation.model.recall / max(evaluation.popularity.recall, 1e-12)
    print(f"Recall@20 learned / popularity: {ratio:.2f} (target >= 1.5)")
    print("ranker weights:", {k: round(v, 3) for k, v in evaluation.ranker_weights.items()})


if __name__ == "__main__":
    main()
