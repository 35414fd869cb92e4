"""A synthetic population for validating the analysis against known truth, in process and fast
enough for hundreds of seeded runs (the closed loop over HTTP, `workload.loop`, is the real
thing; this is for the statistics).

Engagement follows the form of the workload's `TruthModel`: logit = b0 + user bias + post
quality + viewer-post affinity - position * log1p(slot), with b0 and the position coefficient
taken from it. Each session draws `candidates` posts; a ranker orders them and the first
`shown` are seen. The oracle ranks by the true logit; a noisy ranker by the true logit plus
Gaussian noise of `noise` sd (so it is worse than the oracle by a known amount).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.assignment import bucket
from experiments.interleaving import Credit, credit, team_draft

B0 = -3.1  # TruthModel.b0
POSITION = 0.15  # TruthModel.position


@dataclass(frozen=True)
class World:
    users: int = 2000
    posts: int = 3000
    candidates: int = 40
    shown: int = 10
    user_sd: float = 0.5
    quality_sd: float = 0.6
    affinity_sd: float = 0.8
    sessions_per_user: float = 2.0


@dataclass
class Sessions:
    user: np.ndarray  # (S,)
    logits: np.ndarray  # (S, candidates): the true logit of each candidate, before position


def draw_sessions(world: World, sessions: int, rng: np.random.Generator) -> Sessions:
    """`sessions` sessions of users drawn with unequal activity (some users come back often)."""
    activity = rng.gamma(world.sessions_per_user, 1.0, world.users)
    user = rng.choice(world.users, size=sessions, p=activity / activity.sum())
    bias = rng.normal(0, world.user_sd, world.users)
    quality = rng.normal(0, world.quality_sd, world.posts)
    dims = 4
    u_vec = rng.normal(0, 1, (world.users, dims))
    p_vec = rng.normal(0, 1, (world.posts, dims))
    cand = rng.integers(0, world.posts, (sessions, world.candidates))
    affinity = np.einsum("sd,scd->sc", u_vec[user], p_vec[cand]) * world.affinity_sd / 2.0
    logits = B0 + bias[user][:, None] + quality[cand] + affinity
    return Sessions(user, logits)


def rank(logits: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Candidate indices, best first, per session (noise 0: the oracle)."""
    scores = logits + (rng.normal(0, noise, logits.shape) if noise > 0 else 0.0)
    return np.argsort(-scores, axis=1, kind="stable")


def engage(logits_shown: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Engaged (bool) per shown slot, the position term applied."""
    slots = np.arange(logits_shown.shape[1])
    p = 1.0 / (1.0 + np.exp(-(logits_shown - POSITION * np.log1p(slots))))
    return rng.random(p.shape) < p


def ab_impressions(
    world: World,
    sessions: Sessions,
    noise: dict[str, float],
    salt: str,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """One row per impression of an A/B test: each user sees the arm their hash picks (arms
    split evenly, in `noise` order), ranked with that arm's noise."""
    arms = list(noise)
    point = np.array([bucket(salt, int(u)) for u in range(world.users)])
    arm_of_user = np.minimum((point * len(arms)).astype(int), len(arms) - 1)
    arm = arm_of_user[sessions.user]
    shown = np.empty((len(sessions.user), world.shown))
    for i, name in enumerate(arms):
        rows = np.flatnonzero(arm == i)
        order = rank(sessions.logits[rows], noise[name], rng)[:, : world.shown]
        shown[rows] = np.take_along_axis(sessions.logits[rows], order, axis=1)
    engaged = engage(shown, rng)
    s, k = engaged.shape
    return pd.DataFrame(
        {
            "arm": np.repeat(np.array(arms, dtype=object)[arm], k),
            "user_id": np.repeat(sessions.user, k),
            "session_id": np.repeat(np.arange(s), k),
            "position": np.tile(np.arange(k), s),
            "engaged": engaged.ravel(),
        }
    )


def interleaved_credits(
    world: World, sessions: Sessions, noise_a: float, noise_b: float, rng: np.random.Generator
) -> list[Credit]:
    """Per session: team-draft of ranker a and ranker b, engagement, credit."""
    rank_a = rank(sessions.logits, noise_a, rng)
    rank_b = rank(sessions.logits, noise_b, rng)
    seeds = rng.integers(0, 2**62, len(sessions.user))
    out = []
    for s in range(len(sessions.user)):
        mixed = team_draft(rank_a[s].tolist(), rank_b[s].tolist(), world.shown, int(seeds[s]))
        engaged = engage(sessions.logits[s, list(mixed.items)][None, :], rng)[0]
        out.append(credit(mixed, np.flatnonzero(engaged).tolist()))
    return out
