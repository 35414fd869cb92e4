"""Explore: recent posts from outside the user's follows, retrieved by taste.

Spark ALS factorises viewer x author engagements (authors, not posts: a post lives for days and
has few engagements, an author's audience is stable). A candidate post has collaborative signals
- taste: the viewer's factor times its author's factor (works for a post nobody has seen yet),
- neighbours: the engagements it got from the viewer's nearest users in factor space,
- popularity: its engagements so far (log-scaled),
and content-based ones (`explore_signals`): the viewer's past engagements with its author, with
its hashtags, media type and place, the author's reach and the post's age.

Two models share this class. The hybrid (the default, `kind == "hybrid"`) ranks by a logistic
regression over all the signals, fitted on a validation split of the training engagements (the
latest `validation_fraction` held out, signals computed from what came before, a second ALS fit),
so the data, not a person, sets the weights. The collaborative model (`hybrid=False`) is the
earlier hand-weighted blend of the first three signals, kept as the comparison.

Rules on top of the score, for both: at most `max_per_author` posts of one author in a page
(diversity), nothing older than `max_age_hours` at request time (freshness; the age is also a
signal the regression weighs). A viewer with no engagements (no ALS row: cold start) borrows from
the accounts they follow: their mean factor as the taste vector, their engagements as the
neighbour votes; a viewer with neither gets the popular posts. The pool keeps only posts the
viewer may see (`VisibilityGraph.visible_posts_mask`), from authors the viewer does not follow,
not their own, not deleted, not already engaged with.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml.recommenders.evaluate import RankingMetrics, ranking_metrics
from ml.recommenders.explore_signals import (
    CONTENT_COLUMNS,
    SIGNALS,
    ContentProfiles,
    Declared,
    SignalWeights,
    with_content,
)
from ml.recommenders.factors import RECOMMENDER_ALS, AlsParams, Factors, fit_als, top_k
from visibility import VisibilityGraph

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


TRENDING_HOURS = 12.0  # the trending signal counts engagements this recent (before the cutoff)


@dataclass(frozen=True)
class ExploreParams:
    als: AlsParams = RECOMMENDER_ALS
    window_hours: float = 72.0  # posts this recent are candidates
    neighbours: int = 50
    # measured: on the generated workload (no taste among strangers) a heavier taste term
    # fell below popularity (Recall@10 0.004 vs 0.033); these weights match it there
    taste_weight: float = 0.3
    neighbour_weight: float = 0.3
    popularity_weight: float = 1.0
    hybrid: bool = True  # rank by learned weights over all signals (else the blend above)
    max_per_author: int = 2  # diversity: posts of one author in a page (0: no cap)
    max_age_hours: float = 72.0  # freshness: older posts are never shown (0: no limit)
    validation_fraction: float = 0.2  # the latest training engagements the weights learn from
    ranker_users: int = 600  # validation users whose candidates train the weights (a sample)
    negatives: int = 200  # candidates per validation user not engaged with (a sample)
    weights_c: float = 0.01  # the regression's inverse L2 strength (SignalWeights.fit says why)

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
        *,
        profiles: ContentProfiles | None = None,
        weights: SignalWeights | None = None,
        as_of: datetime | pd.Timestamp | None = None,
    ) -> None:
        """pool: post_id, author_id, created_at, popularity (+ media_type, hashtags,
        location_id); engaged: post_id, user_id pairs. `weights` (and `profiles`) make it the
        hybrid; `as_of` is when the pool was cut (the default `now` of the freshness rule)."""
        self.factors = factors
        self.params = params
        self.visibility = visibility
        self.profiles = profiles
        self.weights = weights
        self.version = ""  # the registry version, once loaded from it
        pool = with_content(pool.reset_index(drop=True))
        if "trending" not in pool:
            pool["trending"] = 0.0
        self._set_pool(pool, engaged)
        if as_of is None:
            latest = self.pool["created_at"].max() if len(self.pool) else pd.Timestamp(0)
            as_of = pd.Timestamp(latest, tz="UTC") if pd.Timestamp(latest).tz is None else latest
        self.as_of = pd.Timestamp(as_of)

    @property
    def kind(self) -> str:
        """`hybrid` (learned weights over collaborative and content signals) or `collaborative`
        (the hand-weighted blend of taste, neighbours and popularity); model_version names it."""
        return "hybrid" if self.weights is not None else "collaborative"

    def _set_pool(self, pool: pd.DataFrame, engaged: pd.DataFrame) -> None:
        self.pool = pool
        self.engaged = engaged[["post_id", "user_id"]].reset_index(drop=True)
        self._post_ids = pool["post_id"].to_numpy(np.int64)
        self._authors = pool["author_id"].to_numpy(np.int64)
        created = pd.to_datetime(pool["created_at"], utc=True)
        epoch = pd.Timestamp(0, tz="UTC")
        self._created_s = ((created - epoch) / pd.Timedelta(seconds=1)).to_numpy(np.float64)
        pop = np.log1p(pool["popularity"].to_numpy(np.float64))
        self._popularity = pop / ((pop.max() if len(pop) else 0.0) or 1.0)
        trend = np.log1p(pool["trending"].fillna(0.0).to_numpy(np.float64))
        self._trending = trend / ((trend.max() if len(trend) else 0.0) or 1.0)
        self._author_rows = self.factors.item_rows(self._authors)
        self._engaged_rows = pd.Index(self._post_ids).get_indexer(self.engaged["post_id"])
        self._engaged_users = self.engaged["user_id"].to_numpy(np.int64)
        norms = np.linalg.norm(self.factors.user_factors, axis=1, keepdims=True)
        self._unit_users = self.factors.user_factors / np.maximum(norms, 1e-9)
        self._content = self.profiles.pool(pool) if self.profiles is not None else None

    def with_pool(
        self,
        pool: pd.DataFrame,
        engaged: pd.DataFrame,
        as_of: datetime | pd.Timestamp,
        params: ExploreParams | None = None,
    ) -> Explore:
        """The same factors, profiles and weights over another pool (a holdout's)."""
        return Explore(
            self.factors,
            pool,
            engaged,
            params or self.params,
            self.visibility,
            profiles=self.profiles,
            weights=self.weights,
            as_of=as_of,
        )

    @classmethod
    def fit(
        cls,
        spark: SparkSession,
        engagements: pd.DataFrame,
        posts: pd.DataFrame,
        as_of: datetime,
        params: ExploreParams | None = None,
        visibility: VisibilityGraph | None = None,
        declared: Declared | None = None,
    ) -> Explore:
        """engagements: viewer_id, post_id, author_id, weight; posts: post_id, author_id,
        created_at, is_deleted (+ media_type, hashtags, location_id); declared: signup topics,
        post topics and countries (None: those signals are 0). Only engagements and posts
        before `as_of` are used; the hybrid also fits its weights on a validation split of them."""
        params = params or ExploreParams()
        as_of_ts = pd.Timestamp(as_of)
        if "engaged_at" in engagements:
            engagements = engagements[engagements["engaged_at"] < as_of_ts]
        weights = profiles = None
        if params.hybrid:
            weights = fit_signal_weights(
                spark, engagements, posts, params, visibility, declared=declared
            )
            profiles = ContentProfiles.build(engagements, posts, declared) if weights else None
        factors = fit_als(spark, _als_pairs(engagements), params.als)
        window = as_of_ts - timedelta(hours=params.window_hours)
        recent = posts[
            (posts["created_at"] >= window)
            & (posts["created_at"] < as_of_ts)
            & ~posts["is_deleted"]
        ]
        pool = _pool_frame(recent, engagements)
        engaged = (
            engagements[engagements["post_id"].isin(pool["post_id"])][["post_id", "viewer_id"]]
            .drop_duplicates()
            .rename(columns={"viewer_id": "user_id"})
        )
        return cls(
            factors, pool, engaged, params, visibility,
            profiles=profiles, weights=weights, as_of=as_of_ts,
        )  # fmt: skip

    def add_post(
        self,
        post_id: int,
        author_id: int,
        created_at: datetime,
        *,
        media_type: str = "",
        hashtags: tuple[str, ...] = (),
        location_id: int = 0,
    ) -> None:
        """A post published after training joins the pool (taste and content still score it)."""
        row = pd.DataFrame(
            {
                "post_id": [post_id],
                "author_id": [author_id],
                "created_at": [pd.Timestamp(created_at)],
                "popularity": [0.0],
                "trending": [0.0],
                "media_type": [media_type],
                "hashtags": [list(hashtags)],
                "location_id": [location_id],
            }
        )
        self._set_pool(pd.concat([self.pool, row], ignore_index=True), self.engaged)

    def recommend(
        self,
        user_id: int,
        k: int,
        visibility: VisibilityGraph | None = None,
        now: datetime | pd.Timestamp | None = None,
    ) -> list[tuple[int, float]]:
        """Up to k (post_id, score), best first, at most `max_per_author` per author, none older
        than `max_age_hours` at `now` (default: when the pool was cut)."""
        graph = visibility or self.visibility
        if graph is None:
            raise ValueError("explore needs a VisibilityGraph to filter posts")
        if k <= 0 or len(self._post_ids) == 0:
            return []
        at = self.as_of if now is None else pd.Timestamp(now)
        scores = self.scores(user_id, graph, at)
        scores = np.where(self.candidate_mask(user_id, graph, at), scores, -np.inf)
        return [(int(self._post_ids[i]), float(scores[i])) for i in self._page(scores, k)]

    def scores(self, user_id: int, graph: VisibilityGraph, at: pd.Timestamp) -> np.ndarray:
        """The ranking score of every pool post for the viewer (before any filter)."""
        if self.weights is not None:
            return self.weights.score(self.signal_rows(user_id, graph, at))
        taste, votes = self._collaborative(user_id, graph)
        p = self.params
        return (
            p.popularity_weight * self._popularity
            + p.taste_weight * taste
            + (p.neighbour_weight * votes)
        )

    def signal_rows(self, user_id: int, graph: VisibilityGraph, at: pd.Timestamp) -> np.ndarray:
        """pool x len(SIGNALS): every signal of every pool post for the viewer."""
        taste, votes = self._collaborative(user_id, graph)
        content = np.zeros((len(self._post_ids), 7))  # ContentProfiles.viewer_signals
        reach = np.zeros(len(self._post_ids))
        if self.profiles is not None and self._content is not None:
            content = self.profiles.viewer_signals(user_id, self._content)
            reach = self._content.author_reach
        age_hours = np.maximum(at.timestamp() - self._created_s, 0.0) / 3600.0
        columns = [
            self._popularity,
            self._trending,
            taste,
            votes,
            *content.T,
            reach,
            np.log1p(age_hours),
        ]
        return np.column_stack(columns)

    def candidate_mask(self, user_id: int, graph: VisibilityGraph, at: pd.Timestamp) -> np.ndarray:
        """Pool posts the viewer may be shown: visible, not by someone they follow or by
        themselves, not engaged with already, published by `at` and not more than
        `max_age_hours` before it."""
        mask = graph.visible_posts_mask(user_id, self._post_ids, self._authors)
        excluded = np.fromiter(graph.follows(user_id) | {user_id}, dtype=np.int64)
        mask &= ~np.isin(self._authors, excluded)
        seen = self._engaged_rows[(self._engaged_users == user_id) & (self._engaged_rows >= 0)]
        mask[seen] = False
        mask &= self._created_s <= at.timestamp()  # nothing from the future of `at`
        if self.params.max_age_hours > 0:
            mask &= self._created_s >= at.timestamp() - self.params.max_age_hours * 3600.0
        return mask

    def _page(self, scores: np.ndarray, k: int) -> list[int]:
        """The best k rows with a finite score, at most `max_per_author` of any one author."""
        cap = self.params.max_per_author
        if cap <= 0:
            return [int(i) for i in top_k(scores, k)]
        finite = np.flatnonzero(np.isfinite(scores))
        order = finite[np.argsort(-scores[finite], kind="stable")]
        taken: dict[int, int] = {}
        page: list[int] = []
        for row in order.tolist():
            author = int(self._authors[row])
            if taken.get(author, 0) >= cap:
                continue
            taken[author] = taken.get(author, 0) + 1
            page.append(row)
            if len(page) >= k:
                break
        return page

    def _collaborative(self, user_id: int, graph: VisibilityGraph) -> tuple[np.ndarray, np.ndarray]:
        """(taste, neighbour votes), each scaled to at most 1: the viewer's own, or for a
        viewer without engagements (cold start) those of the accounts they follow."""
        row = self.factors.user_row(user_id)
        if row is not None:
            return self._taste(vector=self.factors.user_factors[row]), self._neighbour_votes(row)
        return self._from_follows(graph.follows(user_id))

    def _from_follows(self, followed: set[int]) -> tuple[np.ndarray, np.ndarray]:
        """Cold start: taste and votes of the accounts the viewer follows (0 if none known)."""
        rows = pd.Index(self.factors.user_ids).get_indexer(
            np.fromiter(followed, dtype=np.int64, count=len(followed))
        )
        rows = rows[rows >= 0]
        if len(rows) == 0:
            return np.zeros(len(self._post_ids)), np.zeros(len(self._post_ids))
        taste = self._taste(vector=self._unit_users[rows].mean(axis=0))
        votes = np.zeros(len(self._post_ids))
        by_follow = np.isin(self._engaged_users, self.factors.user_ids[rows])
        valid = by_follow & (self._engaged_rows >= 0)
        np.add.at(votes, self._engaged_rows[valid], 1.0)
        scale = float(votes.max()) or 1.0
        return taste, votes / scale

    def _taste(self, vector: np.ndarray) -> np.ndarray:
        known = self._author_rows >= 0
        taste = np.zeros(len(self._post_ids))
        taste[known] = self.factors.item_factors[self._author_rows[known]] @ vector
        scale = float(np.max(np.abs(taste))) or 1.0
        return taste / scale

    def _neighbour_votes(self, row: int) -> np.ndarray:
        """Sum of the cosine similarities of the nearest users who engaged with each post."""
        votes = np.zeros(len(self._post_ids))
        if self.params.neighbours <= 0:
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
        return votes / scale

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
        meta = {"kind": "explore", "as_of": self.as_of.isoformat(), **self.params.as_dict()}
        (directory / "params.json").write_text(json.dumps(meta))
        if self.weights is not None and self.profiles is not None:
            (directory / "weights.json").write_text(json.dumps(self.weights.to_json()))
            self.profiles.save(directory / "profiles", posts=self._post_ids)
        return directory

    @classmethod
    def load(cls, directory: Path, visibility: VisibilityGraph | None = None) -> Explore:
        meta = json.loads((directory / "params.json").read_text())
        if meta.pop("kind", None) != "explore":
            raise ValueError(f"{directory} does not hold an explore model")
        as_of = meta.pop("as_of", None)
        weights = profiles = None
        if (directory / "weights.json").exists():
            weights = SignalWeights.from_json(json.loads((directory / "weights.json").read_text()))
            profiles = ContentProfiles.load(directory / "profiles")
        return cls(
            Factors.load(directory),
            pd.read_parquet(directory / "pool.parquet"),
            pd.read_parquet(directory / "engaged.parquet"),
            ExploreParams.from_dict(meta),
            visibility,
            profiles=profiles,
            weights=weights,
            as_of=pd.Timestamp(as_of) if as_of else None,
        )


def _als_pairs(engagements: pd.DataFrame) -> pd.DataFrame:
    """viewer x author engagement weights, own posts left out: what ALS factorises."""
    own = engagements["viewer_id"] == engagements["author_id"]
    return (
        engagements[~own]
        .groupby(["viewer_id", "author_id"], as_index=False)["weight"]
        .sum()
        .rename(columns={"viewer_id": "user_id", "author_id": "item_id"})
    )


def _pool_frame(posts: pd.DataFrame, engagements: pd.DataFrame) -> pd.DataFrame:
    """Candidate posts with their engagements from `engagements` (popularity), those of its
    last TRENDING_HOURS (trending: the generated and real audiences both pile onto what is being
    engaged with now) and content."""
    popularity = engagements.groupby("post_id")["weight"].sum()
    trending = pd.Series(dtype="float64")
    if "engaged_at" in engagements and len(engagements):
        since = engagements["engaged_at"].max() - pd.Timedelta(hours=TRENDING_HOURS)
        recent = engagements[engagements["engaged_at"] >= since]
        trending = recent.groupby("post_id")["weight"].sum()
    columns = ["post_id", "author_id", "created_at", *(c for c in CONTENT_COLUMNS if c in posts)]
    return posts[columns].assign(
        popularity=lambda f: f["post_id"].map(popularity).fillna(0.0).to_numpy(),
        trending=lambda f: f["post_id"].map(trending).fillna(0.0).to_numpy(),
    )


def fit_signal_weights(
    spark: SparkSession,
    engagements: pd.DataFrame,
    posts: pd.DataFrame,
    params: ExploreParams,
    visibility: VisibilityGraph | None,
    seed: int = 0,
    declared: Declared | None = None,
) -> SignalWeights | None:
    """The hybrid's weights from the data: hold out the latest `validation_fraction` of the
    training engagements, compute every signal from what came before (its own ALS fit and
    content profiles), label 1 the candidates each validation user went on to engage with and
    fit a logistic regression on those and a sample of the rest. None when there is nothing to
    learn from (then the collaborative blend ranks).

    Popularity is one of the signals, so the fitted model should never rank worse than it. The
    regression fits every candidate alike while NDCG@10 is decided at the top, so that is
    checked, not assumed: the validation users are split in `WEIGHT_FOLDS`, each fold ranked by
    weights fitted on the others; if those rank worse than popularity alone, the weights are
    popularity alone (measured: C=1 weights ranked at 0.6-0.7x popularity on the holdout)."""
    graph = visibility or VisibilityGraph()
    if "engaged_at" not in engagements or engagements.empty:
        return None
    split = EngagementHoldout.split(
        engagements,
        posts,
        graph,
        fraction=params.validation_fraction,
        window_hours=params.window_hours,
    )
    if not split.relevant or split.train.empty:
        return None
    inner = Explore(
        fit_als(spark, _als_pairs(split.train), params.als),
        split.pool,
        split.engaged,
        params,
        profiles=ContentProfiles.build(split.train, posts, declared),
        weights=None,
        as_of=split.cutoff,
    )
    rng = np.random.default_rng(seed)
    users = sorted(split.relevant)
    if len(users) > params.ranker_users:
        users = sorted(rng.choice(users, params.ranker_users, replace=False).tolist())
    cases: list[ValidationUser] = []
    for user in users:
        mask = inner.candidate_mask(user, graph, inner.as_of)
        positive = mask & np.isin(inner._post_ids, np.fromiter(split.relevant[user], np.int64))
        others = np.flatnonzero(mask & ~positive)
        if not positive.any():
            continue
        sample = rng.choice(others, min(params.negatives, len(others)), replace=False)
        rows = np.concatenate([np.flatnonzero(positive), sample])
        signals = inner.signal_rows(user, graph, inner.as_of)
        cases.append(
            ValidationUser(
                signals[rows],
                np.r_[np.ones(int(positive.sum())), np.zeros(len(sample))].astype(np.int64),
                signals[mask],
                positive[mask],
                len(split.relevant[user]),
            )
        )
    return checked_weights(cases, params.weights_c, rng)


def checked_weights(
    cases: list[ValidationUser], c: float, rng: np.random.Generator
) -> SignalWeights | None:
    """The regression fitted on every validation user's rows, kept only if weights fitted the
    same way rank the users they were not fitted on (`WEIGHT_FOLDS` folds) at least as well as
    popularity alone ranks them by NDCG@10; otherwise popularity alone. None: no labels."""
    if not cases:
        return None
    y = np.concatenate([case.labels for case in cases])
    if y.all() or not y.any():
        return None
    learned = SignalWeights.fit(np.concatenate([case.rows for case in cases]), y, c)
    folds = rng.permutation(len(cases)) % WEIGHT_FOLDS
    held_out = np.zeros(len(cases))
    for fold in range(WEIGHT_FOLDS):
        fit_on = [case for case, f in zip(cases, folds, strict=True) if f != fold]
        labels = np.concatenate([case.labels for case in fit_on]) if fit_on else np.zeros(0)
        if not labels.any() or labels.all():
            return SignalWeights.popularity_only()
        weights = SignalWeights.fit(np.concatenate([case.rows for case in fit_on]), labels, c)
        for i in np.flatnonzero(folds == fold):
            held_out[i] = cases[i].ndcg(weights.score(cases[i].candidates))
    popular = SIGNALS.index("popularity")
    baseline = float(np.mean([case.ndcg(case.candidates[:, popular]) for case in cases]))
    chosen = learned if held_out.mean() >= baseline else SignalWeights.popularity_only()
    return replace(
        chosen,
        rows=learned.rows,
        positives=learned.positives,
        validation_ndcg=float(held_out.mean()),
        validation_popularity_ndcg=baseline,
    )


WEIGHT_FOLDS = 3  # validation users per check: each fold scored by weights fitted on the rest


@dataclass
class ValidationUser:
    """One validation user: the sampled rows the regression fits, and every candidate (with
    which were engaged) that NDCG@10 ranks."""

    rows: np.ndarray
    labels: np.ndarray
    candidates: np.ndarray
    engaged: np.ndarray
    relevant: int  # held-out engagements, reachable or not (NDCG's ideal, as in evaluation)

    def ndcg(self, scores: np.ndarray, k: int = 10) -> float:
        top = np.argsort(-scores, kind="stable")[:k]
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        gains = self.engaged[top].astype(np.float64)
        return float(
            (gains * discounts[: len(gains)]).sum() / discounts[: min(self.relevant, k)].sum()
        )


# --- evaluation ------------------------------------------------------------------------------


@dataclass
class ExploreEvaluation:
    """The model, popularity and (for a hybrid) the collaborative-only blend on one holdout."""

    model: RankingMetrics
    popularity: RankingMetrics
    cutoff: datetime
    collaborative: RankingMetrics | None = None
    weights: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        k = self.model.k
        out = {
            f"recall_at_{k}": self.model.recall,
            f"ndcg_at_{k}": self.model.ndcg,
            f"popularity_recall_at_{k}": self.popularity.recall,
            f"popularity_ndcg_at_{k}": self.popularity.ndcg,
            "evaluated_users": float(self.model.users),
        }
        if self.collaborative is not None:
            out[f"collaborative_recall_at_{k}"] = self.collaborative.recall
            out[f"collaborative_ndcg_at_{k}"] = self.collaborative.ndcg
        out.update({f"weight_{name}": value for name, value in self.weights.items()})
        return out


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
        window_hours: float = ExploreParams.window_hours,
    ) -> EngagementHoldout:
        cutoff = engagements["engaged_at"].quantile(1 - fraction).floor("s")
        train = engagements[engagements["engaged_at"] < cutoff]
        test = engagements[engagements["engaged_at"] >= cutoff]
        end = engagements["engaged_at"].max() + pd.Timedelta(seconds=1)
        window = cutoff - pd.Timedelta(hours=window_hours)
        live = posts[(posts["created_at"] >= window) & (posts["created_at"] < end)]
        live = live[~live["is_deleted"]]
        pool = _pool_frame(live, train)
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
        """The recommender's factors, profiles and weights over this holdout's pool, at the
        cutoff (the freshness rule's `now`)."""
        ranked = recommender.with_pool(self.pool, self.engaged, self.cutoff)
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
    declared: Declared | None = None,
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
    model = Explore.fit(
        spark, holdout.train, posts, holdout.cutoff, params, visibility, declared=declared
    )
    popular = model.with_pool(model.pool, model.engaged, model.as_of, popularity_only(params))
    popular.weights = None
    collaborative = None
    if model.kind == "hybrid":
        blend = model.with_pool(model.pool, model.engaged, model.as_of, collaborative_only(params))
        blend.weights = None
        collaborative = holdout.score(blend, k)
    evaluation = ExploreEvaluation(
        holdout.score(model, k),
        holdout.score(popular, k),
        holdout.cutoff.to_pydatetime(),
        collaborative,
        model.weights.weights() if model.weights is not None else {},
    )
    return evaluation, model, holdout


def popularity_only(params: ExploreParams) -> ExploreParams:
    """The baseline: engagements before the cutoff alone, no cap (what serving falls back to)."""
    return replace(
        params,
        neighbours=0,
        taste_weight=0.0,
        neighbour_weight=0.0,
        popularity_weight=1.0,
        hybrid=False,
        max_per_author=0,
    )


def collaborative_only(params: ExploreParams) -> ExploreParams:
    """The model before the hybrid: the hand-weighted ALS blend, no cap."""
    return replace(params, hybrid=False, max_per_author=0)
