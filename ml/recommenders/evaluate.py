"""Top-k evaluation of recommenders on held-out interactions, beside a popularity baseline.

Both the model and the baseline answer the same question for the same users (recommend k items
the user had not interacted with in training), so their Recall@k and NDCG@k are comparable. The
holdout is time-based: each user's latest interactions, never a random sample, because a
recommender is always asked about the future.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

Recommend = Callable[[int, int], Sequence[int]]


@dataclass(frozen=True)
class RankingMetrics:
    """Mean Recall@k and NDCG@k (binary relevance) over `users` evaluated users."""

    k: int
    recall: float
    ndcg: float
    users: int

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{key}": float(value) for key, value in asdict(self).items()}


def time_holdout(
    interactions: pd.DataFrame,
    *,
    user_col: str,
    time_col: str,
    fraction: float = 0.2,
    min_interactions: int = 3,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split each user's rows by time: the latest `fraction` (at least one) are held out.

    Users with fewer than `min_interactions` rows stay entirely in training."""
    if not 0 < fraction < 1:
        raise ValueError("fraction must be in (0, 1)")
    ordered = interactions.sort_values([user_col, time_col], kind="stable")
    position = ordered.groupby(user_col).cumcount(ascending=False)  # 0 = latest
    size = ordered.groupby(user_col)[user_col].transform("size")
    held = np.maximum(1, np.floor(size * fraction)).astype(int)
    is_test = (size >= min_interactions) & (position < held)
    return ordered[~is_test].reset_index(drop=True), ordered[is_test].reset_index(drop=True)


def relevant_items(test: pd.DataFrame, user_col: str, item_col: str) -> dict[int, set[int]]:
    return {
        int(user): set(map(int, items))
        for user, items in test.groupby(user_col)[item_col].unique().items()
    }


def ranking_metrics(
    recommend: Recommend, relevant: Mapping[int, set[int]], k: int
) -> RankingMetrics:
    """Recall@k = hits / |relevant|; NDCG@k with binary gains, ideal over min(|relevant|, k)."""
    recalls, ndcgs = [], []
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for user, items in relevant.items():
        if not items:
            continue
        ranked = list(recommend(user, k))[:k]
        gains = np.array([1.0 if item in items else 0.0 for item in ranked])
        dcg = float((gains * discounts[: len(gains)]).sum())
        ideal = float(discounts[: min(len(items), k)].sum())
        recalls.append(gains.sum() / len(items))
        ndcgs.append(dcg / ideal)
    if not recalls:
        return RankingMetrics(k, float("nan"), float("nan"), 0)
    return RankingMetrics(k, float(np.mean(recalls)), float(np.mean(ndcgs)), len(recalls))


def per_user_ndcg(recommend: Recommend, relevant: Mapping[int, set[int]], k: int) -> np.ndarray:
    """NDCG@k of each user with relevant items, in `relevant`'s order (for intervals)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    out = []
    for user, items in relevant.items():
        if not items:
            continue
        ranked = list(recommend(user, k))[:k]
        gains = np.array([1.0 if item in items else 0.0 for item in ranked])
        ideal = float(discounts[: min(len(items), k)].sum())
        out.append(float((gains * discounts[: len(gains)]).sum()) / ideal)
    return np.asarray(out)


class Popularity:
    """The baseline: the items most interacted with in training, minus what the user has seen."""

    def __init__(self, items: Iterable[int], weights: Iterable[float] | None = None) -> None:
        index = np.asarray(items if isinstance(items, np.ndarray) else list(items), np.int64)
        values = np.ones(len(index)) if weights is None else np.asarray(list(weights), float)
        counts = pd.Series(values, index=index, dtype=float)
        counts = counts.groupby(level=0).sum().sort_values(ascending=False, kind="stable")
        self.item_ids = counts.index.to_numpy(np.int64)
        self.counts = counts.to_numpy()

    def scores(self) -> pd.Series:
        return pd.Series(self.counts, index=self.item_ids)

    def recommend(
        self, k: int, exclude: set[int] | None = None, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The top k items, skipping `exclude` and (when given) items not `allowed` (a mask)."""
        out: list[tuple[int, float]] = []
        for position, (item, count) in enumerate(zip(self.item_ids, self.counts, strict=True)):
            if allowed is not None and not allowed[position]:
                continue
            if exclude and int(item) in exclude:
                continue
            out.append((int(item), float(count)))
            if len(out) >= k:
                break
        return out


def compare(
    model: Recommend, baseline: Recommend, relevant: Mapping[int, set[int]], k: int
) -> dict[str, float]:
    """Model and baseline on the same users and k, flat for metrics/metadata."""
    ours = ranking_metrics(model, relevant, k)
    theirs = ranking_metrics(baseline, relevant, k)
    return {
        f"recall_at_{k}": ours.recall,
        f"ndcg_at_{k}": ours.ndcg,
        f"popularity_recall_at_{k}": theirs.recall,
        f"popularity_ndcg_at_{k}": theirs.ndcg,
        "evaluated_users": float(ours.users),
    }
