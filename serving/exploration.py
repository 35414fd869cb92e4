"""The exploration slice: a small share of feed slots filled with candidates drawn uniformly at
random, so that some training rows are not chosen by the ranker that will learn from them.

A ranker retrained only on what it served learns its own preferences back (a feedback loop):
posts it ranks low are rarely shown, so it never sees evidence against that order. An explored
slot is a uniform draw over every ELIGIBLE candidate (the pool after the visibility, block,
deletion, seen and freshness filters, so privacy holds for explored items as for ranked ones)
at a uniformly drawn position; the item is flagged `explored` in the response and its
impression, so training can weight or select those rows (inverse propensity: each eligible
post had the same chance of the slot). The number of explored slots is round(share * length),
so the configured share is what the feed shows, not an expectation.
"""

from __future__ import annotations

import numpy as np


def explore(
    order: np.ndarray, pool: int, share: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(new order, per slot whether it was explored): `order` holds the ranked rows (indices
    into the eligible pool of `pool` rows, each at most once); round(share * len(order)) slots,
    chosen at random, get rows drawn uniformly from the whole pool; the ranked rows keep their
    relative order in the other slots (a drawn row is not shown twice)."""
    n = len(order)
    explored = np.zeros(n, dtype=bool)
    k = min(round(share * n), pool)
    if k <= 0:
        return order, explored
    slots = np.sort(rng.choice(n, size=k, replace=False))
    picks = rng.choice(pool, size=k, replace=False)
    rest = order[~np.isin(order, picks)]
    out = np.empty(n, dtype=np.int64)
    explored[slots] = True
    out[slots] = picks
    out[~explored] = rest[: n - k]
    return out, explored
