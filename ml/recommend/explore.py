"""Explore: recent posts from outside the user's follows, retrieved by taste.

Spark ALS factorises viewer x author engagements (authors, not posts: a post lives for days and
has few engagements, an author's audience is stable). A candidate post scores by
- taste: the viewer's factor times its author's factor (works for a post nobody has seen yet),
- neighbours: the engagements it got from the viewer's nearest users in factor space,
- popularity: its engagements so far (log-scaled),
A viewer with no engagements (no ALS row: cold start) borrows from the accounts they follow: their
mean factor as the taste vector, their engagements as the neighbour votes; a viewer with neither
gets the popular posts. The pool keeps only posts the viewer may see (`VisibilityGraph.visible_posts_mask`), from
authors the viewer does not follow, not their own, not deleted, not already engaged with.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml.recommend.evaluate import RankingMetrics, ranking_metrics
from ml.recommend.factors import AlsParams, Factors, fit_als, top_k
from visibility import VisibilityGraph

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class ExploreParams:
    als: AlsParams = field(default_factory=lambda: AlsParams(rank=16, reg=0.1, alpha=5.0))
    window_hours: float = 72.0  # posts this recent are candidates
    neighbours: int = 50
    # measured: on the generated workload (no taste among strangers) a heavier taste term
    # fell below popularity (Recall@10 0.004 vs 0.033); these weights match it there
    taste_weight: float = 0.3
    neighbour_weight: float = 0.3
    popularity_weight: float = 1.0

    def as_dict(self) -> dict[str, float | int | bool]:
        out: dict[str, float | int | bool] = {f"als_{k}": v for k, v in self.als.as_dict().items()}
        out.update({k: v for k, v in asdict(self).items() if k != "als"})
        return out

    @classmethod
    def from_dict(cls, values: dict[str, float | int | bool]) -> ExploreParams:
        als = AlsParams(**{k[4:]: v for k, v in values.items() if k.startswith("als_")})  # type: ignore[arg-type]
        rest = {k: v for k, v in values.items() if k in cls.__dataclass_fields__ and k != "als"}
        return cls(als, **rest)  # type: ignore[arg-type]


class Explore:
    """Explore posts for one user at a time over a pool of recent posts."""

    def __init__(
        self,
        factors: Factors,
        pool: pd.DataFrame,
        engaged: pd.DataFrame,
        params: ExploreParams,
        visibility: VisibilityGraph | None = None,
    ) -> None:
        """pool: post_id, author_id, created_at, popularity; engaged: post_id, user_id pairs."""
        self.factors = factors
        self.params = params
        self.visibility = visibility
        self.version = ""  # the registry version, once loaded from it
        self._set_pool(pool.reset_index(drop=True), engaged)

    def _set_pool(self, pool: pd.DataFrame, engaged: pd.DataFrame) -> None:
        self.pool = pool
        self.engaged = engaged[["post_id", "user_id"]].reset_index(drop=True)
        self._post_ids = pool["post_id"].to_numpy(np.int64)
        self._authors = pool["author_id"].to_numpy(np.int64)
        pop = np.log1p(pool["popularity"].to_numpy(np.float64))
        self._popularity = pop / (pop.max() or 1.0)
        self._author_rows = self.factors.item_rows(self._authors)
        self._engaged_rows = pd.Index(self._post_ids).get_indexer(self.engaged["post_id"])
        self._engaged_users = self.engaged["user_id"].to_numpy(np.int64)
        norms = np.linalg.norm(self.factors.user_factors, axis=1, keepdims=True)
        self._unit_users = self.factors.user_factors / np.maximum(norms, 1e-9)

    @classmethod
    def fit(
        cls,
        spark: SparkSession,
        engagements: pd.DataFrame,
        posts: pd.DataFrame,
        as_of: datetime,
        params: ExploreParams | None = None,
        visibility: VisibilityGraph | None = None,
    ) -> Explore:
        """engagements: viewer_id, post_id, author_id, weight; posts: post_id, author_id,
        created_at, is_deleted. Only engagements and posts before `as_of` are used."""
        params = params or ExploreParams()
        as_of_ts = pd.Timestamp(as_of)
        if "engaged_at" in engagements:
            engagements = engagements[engagements["engaged_at"] < as_of_ts]
        own = engagements["viewer_id"] == engagements["author_id"]
        pairs = (
            engagements[~own]
            .groupby(["viewer_id", "author_id"], as_index=False)["weight"]
            .sum()
            .rename(columns={"viewer_id": "user_id", "author_id": "item_id"})
        )
        factors = fit_als(spark, pairs, params.als)
        window = as_of_ts - timedelta(hours=params.window_hours)
        recent = posts[
            (posts["created_at"] >= window)
            & (posts["created_at"] < as_of_ts)
            & ~posts["is_deleted"]
        ]
        popularity = engagements.groupby("post_id")["weight"].sum()
        pool = recent[["post_id", "author_id", "created_at"]].assign(
            popularity=lambda f: f["post_id"].map(popularity).fillna(0.0).to_numpy()
        )
        engaged = (
            engagements[engagements["post_id"].isin(pool["post_id"])][["post_id", "viewer_id"]]
            .drop_duplicates()
            .rename(columns={"viewer_id": "user_id"})
        )
        return cls(factors, pool, engaged, params, visibility)

    def add_post(self, post_id: int, author_id: int, created_at: datetime) -> None:
        """A post published after training joins the pool (taste still scores it)."""
        row = pd.DataFrame(
            {
                "post_id": [post_id],
                "author_id": [author_id],
                "created_at": [pd.Timestamp(created_at)],
                "popularity": [0.0],
            }
        )
        self._set_pool(pd.concat([self.pool, row], ignore_index=True), self.engaged)

    def recommend(
        self, user_id: int, k: int, visibility: VisibilityGraph | None = None
    ) -> list[tuple[int, float]]:
        """Up to k (post_id, score), best first."""
        graph = visibility or self.visibility
        if graph is None:
            raise ValueError("explore needs a VisibilityGraph to filter posts")
        if k <= 0 or len(self._post_ids) == 0:
            return []
        scores = self.params.popularity_weight * self._popularity
        row = self.factors.user_row(user_id)
        if row is not None:
            scores = scores + self._taste(row) + self._neighbour_votes(row)
        else:
            scores = scores + self._from_follows(graph.follows(user_id))
        mask = graph.visible_posts_mask(user_id, self._post_ids, self._authors)
        excluded = np.fromiter(graph.follows(user_id) | {user_id}, dtype=np.int64)
        mask &= ~np.isin(self._authors, excluded)
        seen = self._engaged_rows[(self._engaged_users == user_id) & (self._engaged_rows >= 0)]
        mask[seen] = False
        scores = np.where(mask, scores, -np.inf)
        return [(int(self._post_ids[i]), float(scores[i])) for i in top_k(scores, k)]

    def _from_follows(self, followed: set[int]) -> np.ndarray:
        """Cold start: taste and votes of the accounts the viewer follows (0 if none known)."""
        rows = pd.Index(self.factors.user_ids).get_indexer(
            np.fromiter(followed, dtype=np.int64, count=len(followed))
        )
        rows = rows[rows >= 0]
        if len(rows) == 0:
            return np.zeros(len(self._post_ids))
        taste = self._taste(vector=self._unit_users[rows].mean(axis=0))
        votes = np.zeros(len(self._post_ids))
        by_follow = np.isin(self._engaged_users, self.factors.user_ids[rows])
        valid = by_follow & (self._engaged_rows >= 0)
        np.add.at(votes, self._engaged_rows[valid], 1.0)
        scale = float(votes.max()) or 1.0
        return taste + self.params.neighbour_weight * votes / scale

    def _taste(self, row: int | None = None, vector: np.ndarray | None = None) -> np.ndarray:
        if vector is None:
            assert row is not None
            vector = self.factors.user_factors[row]
        known = self._author_rows >= 0
        taste = np.zeros(len(self._post_ids))
        taste[known] = self.factors.item_factors[self._author_rows[known]] @ vector
        scale = float(np.max(np.abs(taste))) or 1.0
        return self.params.taste_weight * taste / scale

    def _neighbour_votes(self, row: int) -> np.ndarray:
        """Sum of the cosine similarities of the nearest users who engaged with each post."""
        votes = np.zeros(len(self._post_ids))
        if self.params.neighbours <= 0 or self.params.neighbour_weight == 0:
            return votes
        similarity = self._unit_users @ self._unit_users[row]
        similarity[row] = -np.inf
        nearest = top_k(similarity, self.params.neighbours)
        weights = pd.Series(
            np.maximum(similarity[nearest], 0.0), index=self.factors.user_ids[nearest]
        )
        vote = weights.reindex(self._engaged_users).fillna(0.0).to_numpy()
        valid = self._engaged_rows >= 0
        np.add.at(votes, self._engaged_rows[valid], vote[valid])
        scale = float(votes.max()) or 1.0
        return self.params.neighbour_weight * votes / scale

    def score_pairs(self, users: np.ndarray, authors: np.ndarray) -> np.ndarray:
        """Taste of users for authors (ALS dot products; 0 where either is unknown), unfiltered:
        the MLflow pyfunc's output."""
        users = np.asarray(users, dtype=np.int64)
        user_rows = pd.Index(self.factors.user_ids).get_indexer(users)
        item_rows = self.factors.item_rows(np.asarray(authors, dtype=np.int64))
        known = (user_rows >= 0) & (item_rows >= 0)
        out = np.zeros(len(users), dtype=np.float64)
        out[known] = np.einsum(
            "ij,ij->i",
            self.factors.user_factors[user_rows[known]],
            self.factors.item_factors[item_rows[known]],
        )
        return out

    # --- persistence -------------------------------------------------------------------------

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        self.factors.save(directory)
        self.pool.to_parquet(directory / "pool.parquet", index=False)
        self.engaged.to_parquet(directory / "engaged.parquet", index=False)
        meta = {"kind": "explore", **self.params.as_dict()}
        (directory / "params.json").write_text(json.dumps(meta))
        return directory

    @classmethod
    def load(cls, directory: Path, visibility: VisibilityGraph | None = None) -> Explore:
        meta = json.loads((directory / "params.json").read_text())
        if meta.pop("kind", None) != "explore":
            raise ValueError(f"{directory} does not hold an explore model")
        return cls(
            Factors.load(directory),
            pd.read_parquet(directory / "pool.parquet"),
            pd.read_parquet(directory / "engaged.parquet"),
            ExploreParams.from_dict(meta),
            visibility,
        )


# --- evaluation ------------------------------------------------------------------------------


@dataclass
class ExploreEvaluation:
    model: RankingMetrics
    popularity: RankingMetrics
    cutoff: datetime

    def metrics(self) -> dict[str, float]:
        k = self.model.k
        return {
            f"recall_at_{k}": self.model.recall,
            f"ndcg_at_{k}": self.model.ndcg,
            f"popularity_recall_at_{k}": self.popularity.recall,
            f"popularity_ndcg_at_{k}": self.popularity.ndcg,
            "evaluated_users": float(self.model.users),
        }


@dataclass
class EngagementHoldout:
    """Engagements after a time cutoff held out; the candidate pool is every post up to the end
    of the holdout (popularity counted before the cutoff only), so a model and the baseline, or
    a candidate and the champion, rank exactly the same posts."""

    cutoff: pd.Timestamp
    train: pd.DataFrame
    pool: pd.DataFrame
    engaged: pd.DataFrame
    graph: VisibilityGraph
    relevant: dict[int, set[int]]

    @classmethod
    def split(
        cls,
        engagements: pd.DataFrame,
        posts: pd.DataFrame,
        visibility: VisibilityGraph,
        *,
        fraction: float = 0.2,
        window_hours: float = 72.0,
    ) -> EngagementHoldout:
        cutoff = engagements["engaged_at"].quantile(1 - fraction).floor("s")
        train = engagements[engagements["engaged_at"] < cutoff]
        test = engagements[engagements["engaged_at"] >= cutoff]
        end = engagements["engaged_at"].max() + pd.Timedelta(seconds=1)
        window = cutoff - pd.Timedelta(hours=window_hours)
        live = posts[(posts["created_at"] >= window) & (posts["created_at"] < end)]
        live = live[~live["is_deleted"]]
        popularity = train.groupby("post_id")["weight"].sum()
        pool = live[["post_id", "author_id", "created_at"]].assign(
            popularity=lambda f: f["post_id"].map(popularity).fillna(0.0).to_numpy()
        )
        engaged = (
            train[train["post_id"].isin(pool["post_id"])][["post_id", "viewer_id"]]
            .drop_duplicates()
            .rename(columns={"viewer_id": "user_id"})
        )
        in_pool = set(pool["post_id"].tolist())
        relevant: dict[int, set[int]] = {}
        for viewer, post, author in test[["viewer_id", "post_id", "author_id"]].itertuples(
            index=False
        ):
            if post in in_pool and author != viewer and not visibility.is_following(viewer, author):
                relevant.setdefault(int(viewer), set()).add(int(post))
        return cls(cutoff, train, pool, engaged, visibility, relevant)

    def score(self, recommender: Explore, k: int = 10) -> RankingMetrics:
        """The recommender's factors and weights over this holdout's pool."""
        ranked = Explore(recommender.factors, self.pool, self.engaged, recommender.params)
        return ranking_metrics(
            lambda user, n: [p for p, _ in ranked.recommend(user, n, self.graph)],
            self.relevant,
            k,
        )


def evaluate_explore(
    spark: SparkSession,
    engagements: pd.DataFrame,
    posts: pd.DataFrame,
    visibility: VisibilityGraph,
    params: ExploreParams | None = None,
    *,
    k: int = 10,
    holdout_fraction: float = 0.2,
) -> tuple[ExploreEvaluation, Explore, EngagementHoldout]:
    """Train before a time cutoff (the latest `holdout_fraction` of engagements are after it);
    relevant = posts each user engaged with after it, from authors they do not follow. The
    baseline ranks the same pool, under the same filters, by engagements before the cutoff."""
    params = params or ExploreParams()
    holdout = EngagementHoldout.split(
        engagements,
        posts,
        visibility,
        fraction=holdout_fraction,
        window_hours=params.window_hours,
    )
    model = Explore.fit(spark, holdout.train, posts, holdout.cutoff, params, visibility)
    popular = Explore(model.factors, model.pool, model.engaged, _popularity_only(params))
    evaluation = ExploreEvaluation(
        holdout.score(model, k), holdout.score(popular, k), holdout.cutoff.to_pydatetime()
    )
    return evaluation, model, holdout


def _popularity_only(params: ExploreParams) -> ExploreParams:
    return ExploreParams(params.als, params.window_hours, 0, 0.0, 0.0, 1.0)
