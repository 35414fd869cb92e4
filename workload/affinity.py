"""The visible structure of a viewer x author pair, from which most of the hidden affinity grows.

Real apps see why two people engage: one follows the other (or is followed back), they share
interests, live in the same city, have friends in common. `TruthModel.structural_affinity` turns
these into the visible part of the pair's affinity; a smaller latent part stays hidden. Computed
once per pair from the whole window's follow history ("ever"), like the affinity itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from workload.vocab import TOPICS

CHUNK = 50_000  # pairs per sparse row product (bounds memory on big workloads)
STRUCTURE = ("follows", "followed_by", "topic_overlap", "same_city", "common_follows")


def interest_matrix(users: pd.DataFrame) -> np.ndarray:
    """users x TOPICS, True where the user declared the topic."""
    matrix = np.zeros((len(users), len(TOPICS)), dtype=bool)
    for row, topics in enumerate(users["interests"].tolist()):
        matrix[row, list(topics)] = True
    return matrix


def pair_structure(
    users: pd.DataFrame, followed_codes: np.ndarray, viewer: np.ndarray, author: np.ndarray
) -> dict[str, np.ndarray]:
    """Per pair (user indexes): follows, followed_by (0/1), topic_overlap (Jaccard of declared
    interests), same_city (0/1) and common_follows (v's followees who follow a).

    followed_codes: follower * n + followee for every pair that ever followed."""
    n = len(users)
    codes = np.unique(np.asarray(followed_codes, dtype=np.int64))
    interests = interest_matrix(users)
    both = (interests[viewer] & interests[author]).sum(axis=1)
    either = (interests[viewer] | interests[author]).sum(axis=1)
    city = users["city"].to_numpy()
    follows = sparse.csr_matrix(
        (np.ones(len(codes)), (codes // n, codes % n)), shape=(n, n), dtype=np.float64
    )
    followers = follows.T.tocsr()
    common = np.zeros(len(viewer))
    for lo in range(0, len(viewer), CHUNK):
        v, a = viewer[lo : lo + CHUNK], author[lo : lo + CHUNK]
        common[lo : lo + CHUNK] = np.asarray(follows[v].multiply(followers[a]).sum(axis=1)).ravel()
    return {
        "follows": np.isin(viewer * n + author, codes).astype(np.float64),
        "followed_by": np.isin(author * n + viewer, codes).astype(np.float64),
        "topic_overlap": np.where(either > 0, both / np.maximum(either, 1), 0.0),
        "same_city": (city[viewer] == city[author]).astype(np.float64),
        "common_follows": common,
    }
