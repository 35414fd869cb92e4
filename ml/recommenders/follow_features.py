"""Candidates and features for who to follow, and the item-item CF baseline.

Only the follow graph is required (a real, follow-only edge list has nothing else); country and
interests are used when the users have them, else those features are 0 for everyone:
- candidates: friends-of-friends (the most common 200), the user's followers they do not follow
  back, ALS's top 100 and the 50 most followed accounts;
- features of (user u, candidate c), all computed on the graph as it is at request time:
  common neighbours (u's follows that follow c), Adamic-Adar (the same, each weighted
  1/log(2 + out-degree)), Jaccard of u's follows and c's followers, follows-back (c follows u),
  mutual follows (accounts both follow), the ALS score, popularity (log followers), shared
  country, shared interests, and the share of all accounts that follow the candidate (linear, so
  a linear ranker can single out the accounts nearly everyone follows).
Every figure is a count or a ratio of the graph, not an id, so a ranker over them transfers
from the generated graph to a real one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.recommenders.evaluate import Popularity
from ml.recommenders.factors import Factors, top_k
from visibility import VisibilityGraph

FEATURES = (
    "common_neighbours",
    "adamic_adar",
    "jaccard",
    "follows_back",
    "mutual_follows",
    "als_score",
    "popularity",
    "same_country",
    "shared_interests",
    "follower_share",
)
FOF_CANDIDATES = 200
ALS_CANDIDATES = 100
POPULAR_CANDIDATES = 50


@dataclass
class UserAttributes:
    """Optional per-user country and interests (absent from follow-only graphs)."""

    country: Mapping[int, str]
    interests: Mapping[int, frozenset[int]]

    @classmethod
    def empty(cls) -> UserAttributes:
        return cls({}, {})

    @classmethod
    def from_frame(cls, users: pd.DataFrame | None) -> UserAttributes:
        """users: user_id and any of country, interests (an iterable of topic ids)."""
        if users is None or users.empty:
            return cls.empty()
        ids = users["user_id"].astype("int64").tolist()
        country = (
            {u: str(c) for u, c in zip(ids, users["country"], strict=True) if isinstance(c, str)}
            if "country" in users
            else {}
        )
        interests = (
            {
                u: frozenset(int(t) for t in topics)
                for u, topics in zip(ids, users["interests"], strict=True)
                if topics is not None and len(topics)
            }
            if "interests" in users
            else {}
        )
        return cls(country, interests)


def candidates(
    graph: VisibilityGraph,
    user: int,
    factors: Factors | None,
    popularity: Popularity,
) -> tuple[np.ndarray, Counter[int]]:
    """Candidate ids for `user` (suggestable ones only) and the friends-of-friends counts."""
    mine = graph.follows(user)
    fof: Counter[int] = Counter()
    for friend in mine:
        fof.update(graph.follows(friend))
    pool: set[int] = {c for c, _ in fof.most_common(FOF_CANDIDATES + len(mine) + 1)}
    pool.update(graph.followers(user))
    if factors is not None:
        scores = factors.scores(user)
        if scores is not None:
            pool.update(factors.item_ids[top_k(scores, ALS_CANDIDATES + len(mine))].tolist())
    pool.update(popularity.item_ids[: POPULAR_CANDIDATES + len(mine)].tolist())
    ids = np.fromiter(pool, dtype=np.int64, count=len(pool))
    return ids[graph.suggestable_mask(user, ids)], fof


def features(
    graph: VisibilityGraph,
    user: int,
    ids: np.ndarray,
    fof: Counter[int],
    factors: Factors | None,
    popularity: pd.Series,
    attributes: UserAttributes,
) -> np.ndarray:
    """One row of FEATURES per candidate in `ids`."""
    mine = graph.follows(user)
    followers_of_user = graph.followers(user)
    weight = {w: 1.0 / math.log(2.0 + len(graph.follows(w))) for w in mine}
    country = attributes.country.get(user)
    interests = attributes.interests.get(user, frozenset())
    als = np.zeros(len(ids))
    if factors is not None:
        row = factors.user_row(user)
        if row is not None:
            rows = factors.item_rows(ids)
            known = rows >= 0
            als[known] = factors.item_factors[rows[known]] @ factors.user_factors[row]
    out = np.zeros((len(ids), len(FEATURES)), dtype=np.float64)
    for i, candidate in enumerate(ids.tolist()):
        their_followers = graph.followers(candidate)
        common = mine & their_followers
        union = len(mine) + len(their_followers) - len(common)
        out[i, 0] = math.log1p(fof.get(candidate, 0))
        out[i, 1] = sum(weight[w] for w in common)
        out[i, 2] = len(common) / union if union else 0.0
        out[i, 3] = float(candidate in followers_of_user)
        out[i, 4] = math.log1p(len(mine & graph.follows(candidate)))
        out[i, 7] = float(country is not None and attributes.country.get(candidate) == country)
        out[i, 8] = float(len(interests & attributes.interests.get(candidate, frozenset())))
    out[:, 5] = als
    followers = popularity.reindex(ids).fillna(0.0).to_numpy()
    out[:, 6] = np.log1p(followers)
    out[:, 9] = followers / max(len(popularity), 1)
    return out


class ItemItemCF:
    """The classic baseline: score c by the summed cosine similarity (over their followers) of c
    with each account the user follows."""

    def __init__(self, follows: pd.DataFrame) -> None:
        users = pd.Index(pd.unique(follows["follower_id"]))
        self.items = pd.Index(pd.unique(follows["followee_id"]))
        matrix = sp.csr_matrix(
            (
                np.ones(len(follows)),
                (
                    users.get_indexer(follows["follower_id"]),
                    self.items.get_indexer(follows["followee_id"]),
                ),
            ),
            shape=(len(users), len(self.items)),
        )
        matrix.data[:] = 1.0
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0))).ravel()
        self._normalised = sp.csc_matrix(matrix @ sp.diags(1.0 / np.maximum(norms, 1e-9)))
        self._ids = self.items.to_numpy(np.int64)

    def recommend(self, graph: VisibilityGraph, user: int, k: int) -> list[int]:
        rows = self.items.get_indexer(np.fromiter(graph.follows(user), dtype=np.int64))
        rows = rows[rows >= 0]
        if len(rows) == 0:
            return []
        profile = np.asarray(self._normalised[:, rows].sum(axis=1)).ravel()
        scores = np.asarray(self._normalised.T @ profile).ravel()
        scores[~graph.suggestable_mask(user, self._ids)] = -np.inf
        scores[scores <= 0] = -np.inf
        return [int(self._ids[i]) for i in top_k(scores, k)]
