"""Who to follow: candidates from friends-of-friends, followers, Spark ALS and popularity,
ranked by a logistic regression over graph features fitted on a validation split.

ALS (implicit feedback) learns who tends to be followed together; friends-of-friends, Adamic-Adar,
Jaccard, follows-back and mutual follows describe the graph around a candidate (the signals real
follow graphs are made of: triadic closure and reciprocity); popularity and shared
country/interests complete them (`follow_features`). The weights are not hand-set: the model
holds out each user's latest training follows, generates candidates on the graph without them
and fits the logistic regression to find them, then refits ALS on every training follow. A user
who follows nobody gets the most followed accounts of their country and interests (cold start).
Without a fitted ranker (`learned=False`) the older hand-weighted ALS + friends-of-friends blend
ranks. Every suggestion passes `VisibilityGraph.can_suggest` at request time: never the user,
someone they follow, or someone blocked, muted or blocking, whatever the model learned.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml.recommenders.evaluate import (
    Popularity,
    RankingMetrics,
    ranking_metrics,
    relevant_items,
    time_holdout,
)
from ml.recommenders.factors import RECOMMENDER_ALS, AlsParams, Factors, fit_als, top_k
from ml.recommenders.follow_features import (
    FEATURES,
    ItemItemCF,
    UserAttributes,
    candidates,
    features,
)
from visibility import VisibilityGraph

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class WhoToFollowParams:
    als: AlsParams = RECOMMENDER_ALS
    fof_weight: float = 0.5  # friends-of-friends, relative to the ALS score (both scaled to 1)
    engagement_weight: float = 0.1  # one like's worth of engagement, relative to one follow
    popularity_weight: float = 1.0  # log follower count, a prior ALS regularises away
    learned: bool = True  # rank with a logistic regression over graph features (else the blend)
    validation_fraction: float = 0.2  # each user's latest training follows the ranker learns
    ranker_users: int = 600  # users whose candidates train the ranker (a sample, for speed)

    def as_dict(self) -> dict[str, float | int | bool]:
        return {
            **{f"als_{k}": v for k, v in self.als.as_dict().items()},
            "fof_weight": self.fof_weight,
            "engagement_weight": self.engagement_weight,
            "popularity_weight": self.popularity_weight,
            "learned": self.learned,
            "validation_fraction": self.validation_fraction,
            "ranker_users": self.ranker_users,
        }


@dataclass
class FollowRanker:
    """A logistic regression over standardised FEATURES: what orders the candidates."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def score(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(((rows - self.mean) / self.scale) @ self.coef + self.intercept)

    def weights(self) -> dict[str, float]:
        return {name: float(w) for name, w in zip(FEATURES, self.coef, strict=True)}

    def to_json(self) -> dict[str, list[float] | float]:
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
        }

    @classmethod
    def from_json(cls, data: dict) -> FollowRanker:
        return cls(
            np.asarray(data["mean"]),
            np.asarray(data["scale"]),
            np.asarray(data["coef"]),
            float(data["intercept"]),
        )

    @classmethod
    def fit(
        cls, rows: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
    ) -> FollowRanker:
        from sklearn.linear_model import LogisticRegression

        mean = rows.mean(axis=0)
        scale = rows.std(axis=0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=1.0, max_iter=500)
        model.fit((rows - mean) / scale, labels, sample_weight=weights)
        return cls(mean, scale, model.coef_[0].copy(), float(model.intercept_[0]))


def fit_follow_ranker(
    graph: VisibilityGraph,
    factors: Factors | None,
    popularity: Popularity,
    attributes: UserAttributes,
    relevant: dict[int, set[int]],
    users: int,
    seed: int = 0,
) -> FollowRanker | None:
    """Fit on the candidates of (a sample of) the users with held-out follows: label 1 for the
    candidates they went on to follow. Each user's rows weigh 1 / (their held-out follows), as
    a hit does in Recall@k averaged over users, so users who followed many accounts do not set
    the weights for everyone. None when there is nothing to learn from."""
    chosen = sorted(relevant)
    if len(chosen) > users:
        chosen = sorted(np.random.default_rng(seed).choice(chosen, users, replace=False).tolist())
    prior = popularity.scores()
    blocks, labels, weights = [], [], []
    for user in chosen:
        ids, fof = candidates(graph, user, factors, popularity)
        if len(ids) == 0:
            continue
        blocks.append(features(graph, user, ids, fof, factors, prior, attributes))
        labels.append(np.isin(ids, np.fromiter(relevant[user], dtype=np.int64)))
        weights.append(np.full(len(ids), 1.0 / len(relevant[user])))
    if not blocks:
        return None
    y = np.concatenate(labels)
    if y.all() or not y.any():
        return None
    w = np.concatenate(weights)
    return FollowRanker.fit(np.concatenate(blocks), y.astype(np.int64), w / w.mean())


class WhoToFollow:
    """Suggestions for one user at a time, filtered by the visibility graph given."""

    def __init__(
        self,
        factors: Factors,
        popularity: Popularity,
        params: WhoToFollowParams,
        visibility: VisibilityGraph | None = None,
        ranker: FollowRanker | None = None,
        attributes: UserAttributes | None = None,
    ) -> None:
        self.factors = factors
        self.popularity = popularity
        self.params = params
        self.visibility = visibility
        self.ranker = ranker
        self.attributes = attributes or UserAttributes.empty()
        self.version = ""  # the registry version, once loaded from it
        prior = np.log1p(popularity.counts)
        self._prior = pd.Series(prior / (prior.max() or 1.0), index=popularity.item_ids)
        # the prior in factor-row order, so a request does no index building over all items
        self._known_prior = self._prior.reindex(factors.item_ids).fillna(0.0).to_numpy()

    @classmethod
    def fit(
        cls,
        spark: SparkSession,
        follows: pd.DataFrame,
        params: WhoToFollowParams | None = None,
        *,
        engagements: pd.DataFrame | None = None,
        visibility: VisibilityGraph | None = None,
        users: pd.DataFrame | None = None,
    ) -> WhoToFollow:
        """Train on (follower_id, followee_id, followed_since) rows, optional (viewer_id,
        author_id, weight, engaged_at) engagements and optional users (user_id, country,
        interests)."""
        params = params or WhoToFollowParams()
        attributes = UserAttributes.from_frame(users)
        ranker = None
        if params.learned and "followed_since" in follows:
            ranker = _validation_ranker(spark, follows, params, engagements, attributes)
        factors = fit_als(spark, _als_pairs(follows, engagements, params), params.als)
        popularity = Popularity(follows["followee_id"].to_numpy())
        return cls(factors, popularity, params, visibility, ranker, attributes)

    def recommend(
        self, user_id: int, k: int, visibility: VisibilityGraph | None = None
    ) -> list[tuple[int, float]]:
        """Up to k (candidate_id, score), best first; a new user gets the most followed."""
        graph = visibility or self.visibility
        if graph is None:
            raise ValueError("who-to-follow needs a VisibilityGraph to filter suggestions")
        if k <= 0:
            return []
        if self.ranker is not None:
            return self._ranked(graph, user_id, k)
        followed = graph.follows(user_id)
        fof = Counter(c for friend in followed for c in graph.follows(friend))
        als = self.factors.scores(user_id)
        if als is None and not fof:
            allowed = graph.suggestable_mask(user_id, self.popularity.item_ids)
            return self.popularity.recommend(k, allowed=allowed)

        known = self.factors.item_ids
        fof_ids = np.fromiter(fof.keys(), dtype=np.int64, count=len(fof))
        rows = self.factors.item_rows(fof_ids)
        unknown = rows < 0
        extra = fof_ids[unknown]
        rows[unknown] = len(known) + np.arange(len(extra))  # appended after the known items
        candidates = np.concatenate([known, extra])
        scores = np.zeros(len(candidates), dtype=np.float64)
        if als is not None:
            scale = float(np.max(np.abs(als))) or 1.0
            scores[: len(known)] = als / scale
        if fof:
            counts = np.log1p(np.fromiter(fof.values(), dtype=np.float64, count=len(fof)))
            scores[rows] += self.params.fof_weight * counts / counts.max()
        if self.params.popularity_weight:
            extra_prior = self._prior.reindex(extra).fillna(0.0).to_numpy()
            prior = np.concatenate([self._known_prior, extra_prior])
            scores += self.params.popularity_weight * prior
        scores[~graph.suggestable_mask(user_id, candidates)] = -np.inf
        return [(int(candidates[i]), float(scores[i])) for i in top_k(scores, k)]

    def _ranked(self, graph: VisibilityGraph, user_id: int, k: int) -> list[tuple[int, float]]:
        assert self.ranker is not None
        if not graph.follows(user_id):
            return self.cold_start(graph, user_id, k)
        ids, fof = candidates(graph, user_id, self.factors, self.popularity)
        if len(ids) == 0:
            return self.cold_start(graph, user_id, k)
        rows = features(
            graph, user_id, ids, fof, self.factors, self.popularity.scores(), self.attributes
        )
        scores = self.ranker.score(rows)
        return [(int(ids[i]), float(scores[i])) for i in top_k(scores, k)]

    def cold_start(self, graph: VisibilityGraph, user_id: int, k: int) -> list[tuple[int, float]]:
        """A user who follows nobody: the most followed accounts, those of the user's country
        first, then those sharing their interests (popularity alone when neither is known)."""
        ids = self.popularity.item_ids
        score = np.log1p(self.popularity.counts)
        country = self.attributes.country.get(user_id)
        if country is not None:
            same = np.array([self.attributes.country.get(int(c)) == country for c in ids])
            score = score + 2.0 * same
        interests = self.attributes.interests.get(user_id)
        if interests:
            shared = np.array(
                [len(interests & self.attributes.interests.get(int(c), frozenset())) for c in ids]
            )
            score = score + 1.0 * shared
        score = np.where(graph.suggestable_mask(user_id, ids), score, -np.inf)
        return [(int(ids[i]), float(score[i])) for i in top_k(score, k)]

    def score_pairs(self, users: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """ALS score plus the popularity prior for (user, candidate) pairs, without the
        graph-dependent friends-of-friends term or any filtering: the MLflow pyfunc's output."""
        users = np.asarray(users, dtype=np.int64)
        candidates = np.asarray(candidates, dtype=np.int64)
        user_rows = pd.Index(self.factors.user_ids).get_indexer(users)
        item_rows = self.factors.item_rows(candidates)
        known = (user_rows >= 0) & (item_rows >= 0)
        out = np.zeros(len(users), dtype=np.float64)
        out[known] = np.einsum(
            "ij,ij->i",
            self.factors.user_factors[user_rows[known]],
            self.factors.item_factors[item_rows[known]],
        )
        prior = self._prior.reindex(candidates).fillna(0.0).to_numpy()
        return out + self.params.popularity_weight * prior

    # --- persistence -------------------------------------------------------------------------

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        self.factors.save(directory)
        np.savez(
            directory / "popularity.npz",
            item_ids=self.popularity.item_ids,
            counts=self.popularity.counts,
        )
        params = self.params.as_dict()
        (directory / "params.json").write_text(json.dumps({"kind": "who-to-follow", **params}))
        if self.ranker is not None:
            (directory / "ranker.json").write_text(json.dumps(self.ranker.to_json()))
        (directory / "attributes.json").write_text(
            json.dumps(
                {
                    "country": {str(u): c for u, c in self.attributes.country.items()},
                    "interests": {str(u): sorted(t) for u, t in self.attributes.interests.items()},
                }
            )
        )
        return directory

    @classmethod
    def load(cls, directory: Path, visibility: VisibilityGraph | None = None) -> WhoToFollow:
        meta = json.loads((directory / "params.json").read_text())
        if meta.get("kind") != "who-to-follow":
            raise ValueError(f"{directory} does not hold a who-to-follow model")
        als = AlsParams(**{k[4:]: v for k, v in meta.items() if k.startswith("als_")})
        params = WhoToFollowParams(
            als,
            meta["fof_weight"],
            meta["engagement_weight"],
            meta["popularity_weight"],
            bool(meta.get("learned", False)),
            float(meta.get("validation_fraction", 0.2)),
            int(meta.get("ranker_users", 600)),
        )
        with np.load(directory / "popularity.npz") as data:
            popularity = Popularity(data["item_ids"], data["counts"])
        ranker_file = directory / "ranker.json"
        ranker = (
            FollowRanker.from_json(json.loads(ranker_file.read_text()))
            if ranker_file.exists()
            else None
        )
        attributes = UserAttributes.empty()
        attributes_file = directory / "attributes.json"
        if attributes_file.exists():
            data = json.loads(attributes_file.read_text())
            attributes = UserAttributes(
                {int(u): c for u, c in data["country"].items()},
                {int(u): frozenset(t) for u, t in data["interests"].items()},
            )
        return cls(Factors.load(directory), popularity, params, visibility, ranker, attributes)


def _als_pairs(
    follows: pd.DataFrame, engagements: pd.DataFrame | None, params: WhoToFollowParams
) -> pd.DataFrame:
    """ALS's (user_id, item_id, weight): follows (1) plus engagements with authors (weighted)."""
    pairs = follows[["follower_id", "followee_id"]].rename(
        columns={"follower_id": "user_id", "followee_id": "item_id"}
    )
    pairs = pairs.assign(weight=1.0)
    if engagements is not None and not engagements.empty and params.engagement_weight > 0:
        engaged = engagements[engagements["viewer_id"] != engagements["author_id"]]
        engaged = (
            engaged.groupby(["viewer_id", "author_id"], as_index=False)["weight"]
            .sum()
            .rename(columns={"viewer_id": "user_id", "author_id": "item_id"})
        )
        engaged["weight"] *= params.engagement_weight
        pairs = (
            pd.concat([pairs, engaged])
            .groupby(["user_id", "item_id"], as_index=False)["weight"]
            .sum()
        )
    return pairs


def _validation_ranker(
    spark: SparkSession,
    follows: pd.DataFrame,
    params: WhoToFollowParams,
    engagements: pd.DataFrame | None,
    attributes: UserAttributes,
) -> FollowRanker | None:
    """The ranker fitted on each user's latest training follows, from candidates and features
    of the graph (and an ALS) without them."""
    earlier, later = time_holdout(
        follows,
        user_col="follower_id",
        time_col="followed_since",
        fraction=params.validation_fraction,
    )
    if later.empty:
        return None
    if engagements is not None and "engaged_at" in engagements:
        cutoff = later.groupby("follower_id")["followed_since"].min()
        viewer_cutoff = engagements["viewer_id"].map(cutoff)
        keep = viewer_cutoff.isna() | (engagements["engaged_at"] < viewer_cutoff)
        engagements = engagements[keep.to_numpy()]
    graph = VisibilityGraph.from_edges(
        follows=earlier[["follower_id", "followee_id"]].itertuples(index=False)
    )
    factors = fit_als(spark, _als_pairs(earlier, engagements, params), params.als)
    return fit_follow_ranker(
        graph,
        factors,
        Popularity(earlier["followee_id"].to_numpy()),
        attributes,
        relevant_items(later, "follower_id", "followee_id"),
        params.ranker_users,
    )


# --- evaluation ------------------------------------------------------------------------------


@dataclass
class WhoToFollowEvaluation:
    model: RankingMetrics
    popularity: RankingMetrics
    als_only: RankingMetrics
    fof_only: RankingMetrics
    item_cf: RankingMetrics
    blend: RankingMetrics  # the hand-weighted ALS + friends-of-friends + prior, for reference
    ranker_weights: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        k = self.model.k
        return {
            f"item_cf_recall_at_{k}": self.item_cf.recall,
            f"item_cf_ndcg_at_{k}": self.item_cf.ndcg,
            f"blend_recall_at_{k}": self.blend.recall,
            f"blend_ndcg_at_{k}": self.blend.ndcg,
            f"recall_at_{k}": self.model.recall,
            f"ndcg_at_{k}": self.model.ndcg,
            f"popularity_recall_at_{k}": self.popularity.recall,
            f"popularity_ndcg_at_{k}": self.popularity.ndcg,
            f"als_only_recall_at_{k}": self.als_only.recall,
            f"als_only_ndcg_at_{k}": self.als_only.ndcg,
            f"fof_only_recall_at_{k}": self.fof_only.recall,
            f"fof_only_ndcg_at_{k}": self.fof_only.ndcg,
            "evaluated_users": float(self.model.users),
        }

    def as_json(self) -> dict[str, dict[str, float]]:
        return {
            name: asdict(value) if isinstance(value, RankingMetrics) else dict(value)
            for name, value in vars(self).items()
        }


@dataclass
class FollowHoldout:
    """Each user's latest follows held out; the graph as it was before them."""

    train: pd.DataFrame
    test: pd.DataFrame
    train_engagements: pd.DataFrame | None
    graph: VisibilityGraph
    relevant: dict[int, set[int]]

    @classmethod
    def split(
        cls,
        follows: pd.DataFrame,
        engagements: pd.DataFrame | None = None,
        fraction: float = 0.2,
        base: VisibilityGraph | None = None,
    ) -> FollowHoldout:
        """Engagements after a user's first held-out follow are dropped from training (they
        would reveal the held-out edges). Blocks and mutes come from `base` when given."""
        train, test = time_holdout(
            follows, user_col="follower_id", time_col="followed_since", fraction=fraction
        )
        train_engagements = None
        if engagements is not None:
            cutoff = test.groupby("follower_id")["followed_since"].min()
            viewer_cutoff = engagements["viewer_id"].map(cutoff)
            keep = viewer_cutoff.isna() | (engagements["engaged_at"] < viewer_cutoff)
            train_engagements = engagements[keep.to_numpy()]
        graph = VisibilityGraph.from_edges(
            follows=train[["follower_id", "followee_id"]].itertuples(index=False),
            blocks=base.block_edges() if base is not None else (),
            mutes=base.mute_edges() if base is not None else (),
        )
        return cls(
            train,
            test,
            train_engagements,
            graph,
            relevant_items(test, "follower_id", "followee_id"),
        )

    def score(self, recommender: WhoToFollow, k: int = 10) -> RankingMetrics:
        return ranking_metrics(
            lambda user, n: [c for c, _ in recommender.recommend(user, n, self.graph)],
            self.relevant,
            k,
        )

    def popularity(self, popularity: Popularity, k: int = 10) -> RankingMetrics:
        def popular(user: int, n: int) -> list[int]:
            allowed = self.graph.suggestable_mask(user, popularity.item_ids)
            return [c for c, _ in popularity.recommend(n, allowed=allowed)]

        return ranking_metrics(popular, self.relevant, k)


def evaluate_who_to_follow(
    spark: SparkSession,
    follows: pd.DataFrame,
    params: WhoToFollowParams | None = None,
    *,
    engagements: pd.DataFrame | None = None,
    k: int = 20,
    fraction: float = 0.2,
    base: VisibilityGraph | None = None,
    users: pd.DataFrame | None = None,
) -> tuple[WhoToFollowEvaluation, WhoToFollow, FollowHoldout]:
    """Fit on all but each user's latest follows; Recall@k / NDCG@k on those, beside popularity
    (most-followed accounts), item-item CF, the hand-weighted blend and each half of it alone,
    all filtered the same way."""
    params = params or WhoToFollowParams()
    holdout = FollowHoldout.split(follows, engagements, fraction, base)
    model = WhoToFollow.fit(
        spark,
        holdout.train,
        params,
        engagements=holdout.train_engagements,
        visibility=holdout.graph,
        users=users,
    )

    def variant(fof_weight: float, als: bool) -> WhoToFollow:
        factors = model.factors
        if not als:
            factors = Factors(
                factors.user_ids,
                np.zeros_like(factors.user_factors),
                factors.item_ids,
                factors.item_factors,
            )
        tuned = WhoToFollowParams(params.als, fof_weight, params.engagement_weight, 0.0)
        return WhoToFollow(factors, model.popularity, tuned)

    cf = ItemItemCF(holdout.train)
    evaluation = WhoToFollowEvaluation(
        model=holdout.score(model, k),
        popularity=holdout.popularity(model.popularity, k),
        als_only=holdout.score(variant(0.0, als=True), k),
        fof_only=holdout.score(variant(1.0, als=False), k),
        item_cf=ranking_metrics(
            lambda user, n: cf.recommend(holdout.graph, user, n), holdout.relevant, k
        ),
        blend=holdout.score(WhoToFollow(model.factors, model.popularity, params), k),
        ranker_weights=model.ranker.weights() if model.ranker is not None else {},
    )
    return evaluation, model, holdout
