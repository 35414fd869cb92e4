"""Spark ALS fit time and the MovieLens 100K quality table.

Fit time is measured on MovieLens 100K (explicit ratings and implicit feedback) and on a
generated implicit matrix of `--interactions` rows (power-law items, like follows). The
baseline, measured in the same run on the same rows, is the popularity model's fit (a count per
item in pandas): the ratio says what the factorisation costs over the cheapest recommender.
Spark's session start is measured once and excluded from fit times.

    uv run python -m bench.als --interactions 1000000
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import numpy as np
import pandas as pd
from rich.console import Console

from appconfig import get_settings
from ml.recommenders.evaluate import Popularity
from ml.recommenders.factors import AlsParams, fit_als
from ml.recommenders.movielens import EXPLICIT, IMPLICIT, load_ratings, movielens_report
from ml.spark import spark_session, stop_spark

console = Console()
T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def generated_interactions(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users = max(1000, rows // 20)
    items = max(1000, rows // 20)
    popularity = 1.0 + rng.pareto(1.3, items)
    item = rng.choice(items, rows, p=popularity / popularity.sum())
    frame = pd.DataFrame({"user_id": rng.integers(0, users, rows), "item_id": item, "weight": 1.0})
    return frame.drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    args = parser.parse_args()
    settings = get_settings()
    console.print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"SPARK_MASTER={settings.spark_master}, driver {settings.spark_driver_memory}"
    )
    spark, start = timed(lambda: spark_session(settings))
    console.print(f"Spark session start: {start:.1f} s")
    _, warm = timed(partial(fit_als, spark, generated_interactions(20_000), AlsParams(rank=4)))
    console.print(f"warm-up fit (JIT, first jobs; excluded): {warm:.1f} s")
    try:
        ratings = load_ratings()
        cases = [
            ("MovieLens 100K explicit", ratings.rename(columns={"rating": "weight"}), EXPLICIT),
            ("MovieLens 100K implicit", ratings.assign(weight=1.0), IMPLICIT),
        ]
        with console.status("generating interactions"):
            generated = generated_interactions(args.interactions)
        cases.append(
            (f"generated {len(generated):,} implicit", generated, AlsParams(rank=16, reg=0.1))
        )
        console.print("\n| data | rows | ALS params | ALS fit s | popularity fit s | ratio |")
        console.print("| --- | ---: | --- | ---: | ---: | ---: |")
        for name, frame, params in cases:
            with console.status(f"ALS on {name}"):
                _, als_seconds = timed(partial(fit_als, spark, frame, params))
            _, pop_seconds = timed(partial(Popularity, frame["item_id"].to_numpy()))
            console.print(
                f"| {name} | {len(frame):,} | rank {params.rank}, {params.max_iter} it, "
                f"{'implicit' if params.implicit else 'explicit'} | {als_seconds:.2f} | "
                f"{pop_seconds:.3f} | {als_seconds / pop_seconds:.0f}x |"
            )
        with console.status("MovieLens quality (RMSE, top-k)"):
            report, seconds = timed(lambda: movielens_report(spark))
        console.print(f"\nMovieLens 100K quality ({seconds:.0f} s):\n")
        console.print(report.rmse_table())
        console.print(
            f"\nRecall@10 {report.recall_at_10:.4f} vs popularity "
            f"{report.popularity_recall_at_10:.4f} "
            f"({report.recall_at_10 / report.popularity_recall_at_10:.2f}x); NDCG@10 "
            f"{report.ndcg_at_10:.4f} vs {report.popularity_ndcg_at_10:.4f} "
            f"({report.ndcg_at_10 / report.popularity_ndcg_at_10:.2f}x), "
            f"{report.evaluated_users} users"
        )
    finally:
        stop_spark()


if __name__ == "__main__":
    main()
