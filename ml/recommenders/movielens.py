"""MovieLens 100K: the recommenders' ALS checked on real ratings against published figures.

Two questions, both on the raw ratings file (`ml-100k.inter`, tab-separated, typed headers such
as `user_id:token`):

- rating prediction: explicit ALS on a seeded random 80/20 split, RMSE beside the published
  matrix-factorisation figures (Surprise's 5-fold benchmark on the same data set);
- top-k retrieval: implicit ALS on each user's earlier ratings, Recall@10 / NDCG@10 on their
  latest 20%, beside the popularity baseline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from importers.movielens import DEFAULT_DIRECTORY as MOVIELENS_DIRECTORY
from ml.recommenders.evaluate import Popularity, compare, relevant_items, time_holdout
from ml.recommenders.factors import AlsParams, Factors, fit_als, top_k

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_DIR = (
    MOVIELENS_DIRECTORY  # MOVIELENS_DIR, else ../shared/datasets/movielens-100k beside the clone
)

# Surprise's benchmark on MovieLens 100K (5-fold CV; surpriselib.com, README "Benchmarks")
PUBLISHED_RMSE: dict[str, float] = {
    "SVD (Surprise)": 0.934,
    "SVD++ (Surprise)": 0.919,
    "NMF (Surprise)": 0.963,
    "k-NN Baseline (Surprise)": 0.931,
    "Baseline only (Surprise)": 0.944,
}

EXPLICIT = AlsParams(rank=10, max_iter=15, reg=0.1, implicit=False, seed=42)
IMPLICIT = AlsParams(rank=64, max_iter=12, reg=0.1, alpha=5.0, implicit=True, seed=42)


def load_ratings(directory: Path = DEFAULT_DIR) -> pd.DataFrame:
    """The ratings as user_id, item_id, rating, timestamp (typed-header suffixes dropped)."""
    path = directory / "ml-100k.inter"
    if not path.exists():
        raise FileNotFoundError(f"MovieLens ratings not found at {path}")
    frame = pd.read_csv(path, sep="\t")
    frame.columns = [column.split(":", 1)[0] for column in frame.columns]
    missing = {"user_id", "item_id", "rating", "timestamp"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}")
    return frame.astype(
        {"user_id": "int64", "item_id": "int64", "rating": "float64", "timestamp": "int64"}
    )


def random_split(
    ratings: pd.DataFrame, test_fraction: float = 0.2, seed: int = 42
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    is_test = rng.random(len(ratings)) < test_fraction
    return ratings[~is_test].reset_index(drop=True), ratings[is_test].reset_index(drop=True)


def predict_ratings(factors: Factors, pairs: pd.DataFrame, fallback: float) -> np.ndarray:
    """Dot products clipped to the 1-5 scale; users or items unseen in training get `fallback`."""
    users = pd.Index(factors.user_ids).get_indexer(pairs["user_id"].to_numpy())
    items = factors.item_rows(pairs["item_id"].to_numpy())
    known = (users >= 0) & (items >= 0)
    out = np.full(len(pairs), fallback, dtype=np.float64)
    out[known] = np.einsum(
        "ij,ij->i", factors.user_factors[users[known]], factors.item_factors[items[known]]
    )
    return np.clip(out, 1.0, 5.0)


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


@dataclass(frozen=True)
class MovieLensReport:
    als_rmse: float
    mean_rmse: float  # predicting the training mean: the floor any model must beat
    train_ratings: int
    test_ratings: int
    recall_at_10: float
    ndcg_at_10: float
    popularity_recall_at_10: float
    popularity_ndcg_at_10: float
    evaluated_users: int

    def as_dict(self) -> dict[str, float]:
        return {key: float(value) for key, value in asdict(self).items()}

    def rmse_table(self) -> str:
        """Markdown: our RMSE beside the published ones."""
        rows = [("Spark ALS, explicit (this run, 80/20 split)", self.als_rmse)]
        rows += list(PUBLISHED_RMSE.items())
        rows.append(("global mean (this run)", self.mean_rmse))
        lines = ["| model | RMSE |", "| --- | ---: |"]
        lines += [f"| {name} | {value:.3f} |" for name, value in rows]
        return "\n".join(lines)


def rating_rmse(
    spark: SparkSession, ratings: pd.DataFrame, params: AlsParams = EXPLICIT, seed: int = 42
) -> tuple[float, float, int, int]:
    """(ALS RMSE, global-mean RMSE, train size, test size) on a seeded 80/20 split."""
    train, test = random_split(ratings, seed=seed)
    factors = fit_als(
        spark, train, params, user_col="user_id", item_col="item_id", weight_col="rating"
    )
    mean = float(train["rating"].mean())
    predicted = predict_ratings(factors, test, fallback=mean)
    actual = test["rating"].to_numpy()
    return rmse(predicted, actual), rmse(np.full(len(test), mean), actual), len(train), len(test)


def retrieval_metrics(
    spark: SparkSession, ratings: pd.DataFrame, params: AlsParams = IMPLICIT, k: int = 10
) -> dict[str, float]:
    """Implicit ALS vs popularity on each user's latest 20% of ratings (any rating = relevant)."""
    train, test = time_holdout(ratings, user_col="user_id", time_col="timestamp")
    factors = fit_als(
        spark,
        train.assign(weight=1.0),
        params,
        user_col="user_id",
        item_col="item_id",
        weight_col="weight",
    )
    seen = {int(u): set(map(int, items)) for u, items in train.groupby("user_id")["item_id"]}
    popularity = Popularity(train["item_id"].to_numpy())

    def als_top(user: int, n: int) -> list[int]:
        scores = factors.scores(user)
        if scores is None:
            return [item for item, _ in popularity.recommend(n, seen.get(user))]
        scores = scores.copy()
        scores[factors.item_rows(np.fromiter(seen.get(user, ()), dtype=np.int64))] = -np.inf
        return [int(factors.item_ids[i]) for i in top_k(scores, n)]

    def popular_top(user: int, n: int) -> list[int]:
        return [item for item, _ in popularity.recommend(n, seen.get(user))]

    relevant = relevant_items(test, "user_id", "item_id")
    return compare(als_top, popular_top, relevant, k)


def movielens_report(spark: SparkSession, directory: Path = DEFAULT_DIR) -> MovieLensReport:
    ratings = load_ratings(directory)
    als_rmse, mean_rmse, n_train, n_test = rating_rmse(spark, ratings)
    topk = retrieval_metrics(spark, ratings)
    return MovieLensReport(
        als_rmse=als_rmse,
        mean_rmse=mean_rmse,
        train_ratings=n_train,
        test_ratings=n_test,
        recall_at_10=topk["recall_at_10"],
        ndcg_at_10=topk["ndcg_at_10"],
        popularity_recall_at_10=topk["popularity_recall_at_10"],
        popularity_ndcg_at_10=topk["popularity_ndcg_at_10"],
        evaluated_users=int(topk["evaluated_users"]),
    )


def main() -> None:
    """`python -m ml.recommenders.movielens`: print the RMSE table and the top-k figures."""
    from ml.spark import spark_session, stop_spark

    try:
        report = movielens_report(spark_session())
    finally:
        stop_spark()
    print(report.rmse_table())
    print(
        f"\nRecall@10 {report.recall_at_10:.4f} (popularity {report.popularity_recall_at_10:.4f}),"
        f" NDCG@10 {report.ndcg_at_10:.4f} (popularity {report.popularity_ndcg_at_10:.4f}),"
        f" {report.evaluated_users} users"
    )


if __name__ == "__main__":
    main()
