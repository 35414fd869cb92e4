"""Matrix factorisation with Spark MLlib ALS, returned as plain numpy factors.

Spark does the fitting (it scales out by `SPARK_MASTER`); serving needs only two small arrays
and their ids, so the factors leave Spark right after the fit. Ids are mapped to dense int32
indexes before Spark sees them: MLlib's ALS takes int ids and ours are arbitrary int64.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class AlsParams:
    """ALS hyper-parameters; `alpha` is the implicit-feedback confidence scale."""

    rank: int = 32
    max_iter: int = 12
    reg: float = 0.05
    alpha: float = 10.0
    implicit: bool = True
    seed: int = 7

    def as_dict(self) -> dict[str, float | int | bool]:
        return {
            "rank": self.rank,
            "max_iter": self.max_iter,
            "reg": self.reg,
            "alpha": self.alpha,
            "implicit": self.implicit,
            "seed": self.seed,
        }


# the ALS settings both recommenders (who to follow, Explore) start from, and the defaults of
# their Dagster configs (orchestration/models/recommenders.py)
RECOMMENDER_ALS = AlsParams(rank=16, reg=0.1, alpha=5.0)


@dataclass
class Factors:
    """User and item latent factors, row i belonging to `user_ids[i]` / `item_ids[i]`."""

    user_ids: np.ndarray
    user_factors: np.ndarray
    item_ids: np.ndarray
    item_factors: np.ndarray

    def __post_init__(self) -> None:
        self._user_row = pd.Index(self.user_ids)
        self._item_row = pd.Index(self.item_ids)

    def user_row(self, user_id: int) -> int | None:
        """The factor row of a user, or None for a user the model never saw."""
        try:
            row = self._user_row.get_loc(user_id)
        except KeyError:
            return None
        return int(row)

    def item_rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Factor rows of items (-1 for unknown items)."""
        return np.asarray(self._item_row.get_indexer(np.asarray(item_ids)), dtype=np.int64)

    def scores(self, user_id: int) -> np.ndarray | None:
        """The user's score for every item (dot products), or None for an unknown user."""
        row = self.user_row(user_id)
        if row is None:
            return None
        return np.asarray(self.item_factors @ self.user_factors[row])

    def save(self, directory: Path, prefix: str = "") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(
            directory / f"{prefix}factors.npz",
            user_ids=self.user_ids,
            user_factors=self.user_factors,
            item_ids=self.item_ids,
            item_factors=self.item_factors,
        )

    @classmethod
    def load(cls, directory: Path, prefix: str = "") -> Factors:
        with np.load(directory / f"{prefix}factors.npz") as data:
            return cls(
                data["user_ids"], data["user_factors"], data["item_ids"], data["item_factors"]
            )


def fit_als(
    spark: SparkSession,
    interactions: pd.DataFrame,
    params: AlsParams,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    weight_col: str = "weight",
) -> Factors:
    """Fit ALS on (user, item, weight) rows: implicit confidences, or explicit ratings.

    Users and items with no row get no factors (callers fall back to popularity for them)."""
    from pyspark.ml.recommendation import ALS

    if interactions.empty:
        raise ValueError("no interactions to fit ALS on")
    users, user_index = np.unique(interactions[user_col].to_numpy(np.int64), return_inverse=True)
    items, item_index = np.unique(interactions[item_col].to_numpy(np.int64), return_inverse=True)
    frame = pd.DataFrame(
        {
            "u": user_index.astype(np.int32),
            "i": item_index.astype(np.int32),
            "r": interactions[weight_col].to_numpy(np.float32),
        }
    )
    data = spark.createDataFrame(frame)
    als = ALS(
        rank=params.rank,
        maxIter=params.max_iter,
        regParam=params.reg,
        alpha=params.alpha,
        implicitPrefs=params.implicit,
        userCol="u",
        itemCol="i",
        ratingCol="r",
        nonnegative=False,
        coldStartStrategy="nan",
        seed=params.seed,
    )
    model = als.fit(data)
    user_factors = _dense(model.userFactors.toPandas(), len(users), params.rank)
    item_factors = _dense(model.itemFactors.toPandas(), len(items), params.rank)
    return Factors(users, user_factors, items, item_factors)


def _dense(frame: pd.DataFrame, rows: int, rank: int) -> np.ndarray:
    """Spark's (id, features) rows as an array indexed by id (rows Spark dropped stay zero)."""
    out = np.zeros((rows, rank), dtype=np.float32)
    if not frame.empty:
        out[frame["id"].to_numpy()] = np.stack(frame["features"].to_numpy()).astype(np.float32)
    return out


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the k largest finite scores, best first."""
    finite = np.isfinite(scores)
    candidates = np.flatnonzero(finite)
    if candidates.size == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    k = min(k, candidates.size)
    values = scores[candidates]
    part = np.argpartition(-values, k - 1)[:k]
    order = part[np.argsort(-values[part], kind="stable")]
    return candidates[order]
