"""Feedback loops: how a ranker drifts when it is retrained on the data its own rankings
produced, against one retrained only on a uniformly random exploration slice.

A synthetic world of the `TruthModel`'s form, in process (`experiments.simulation`'s sibling):
each session draws `candidates` posts; the first `shown` of its ranking are seen and engaged
with probability sigmoid(b0 + user bias + quality + affinity - position * log1p(slot)). The
ranker is a logistic regression over what a platform observes: a noisy view of the post's
quality, the viewer-post affinity, and log1p of the post's engagements so far, a count the loop
itself writes. Position is not a feature (as in the platform's ranker), so the position effect
of whatever was ranked first is credited to the features that put it there.

Two policies run in two copies of the same world, from the same seed and the same first model
(fitted on one round of uniformly random rankings):
- `served`: every round, refit on all impressions of the last round (what it showed, where);
- `explore`: a share `epsilon` of sessions is shown in random order; refit only on those rows.
Both serve the model to the other sessions. Per round: the true expected engagement per
impression of the model-ranked sessions (beside the oracle's and a random order's on the same
candidates), the model's weights, and how concentrated exposure is (Gini of impressions per post).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression

from experiments.simulation import B0, POSITION

FEATURES = ("quality_seen", "affinity", "log1p_engagements")


@dataclass(frozen=True)
class FeedbackWorld:
    users: int = 2000
    posts: int = 2000
    candidates: int = 40
    shown: int = 10
    sessions_per_round: int = 4000
    rounds: int = 8
    user_sd: float = 0.5
    quality_sd: float = 0.7
    quality_noise_sd: float = 0.7  # what the platform sees of quality: quality + this noise
    affinity_sd: float = 0.6
    epsilon: float = 0.1  # the exploration slice's share of sessions


@dataclass
class RoundResult:
    round: int
    policy_engagement: float  # true expected engagement per impression, model-ranked sessions
    overall_engagement: float  # the same over every session, the exploration slice included
    oracle_engagement: float  # every session's candidates ranked by the true logit
    random_engagement: float  # every session's candidates in random order
    weights: dict[str, float]
    exposure_gini: float  # of impressions per post, this round
    training_rows: int


@dataclass
class PolicyRun:
    policy: str
    rounds: list[RoundResult] = field(default_factory=list)

    @property
    def regret(self) -> float:
        """Share of the oracle's engagement the model-ranked sessions lost, over rounds >= 1."""
        later = self.rounds[1:] or self.rounds
        return float(np.mean([1 - r.policy_engagement / r.oracle_engagement for r in later]))

    @property
    def overall_regret(self) -> float:
        """The same over every session: what the exploration slice costs is included."""
        later = self.rounds[1:] or self.rounds
        return float(np.mean([1 - r.overall_engagement / r.oracle_engagement for r in later]))


def gini(counts: np.ndarray | list[int]) -> float:
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


class _World:
    """The hidden factors (fixed by the seed) and the loop-written engagement counts."""

    def __init__(self, world: FeedbackWorld, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.world = world
        self.bias = rng.normal(0, world.user_sd, world.users)
        self.quality = rng.normal(0, world.quality_sd, world.posts)
        self.quality_seen = self.quality + rng.normal(0, world.quality_noise_sd, world.posts)
        self.u_vec = rng.normal(0, 1, (world.users, 4))
        self.p_vec = rng.normal(0, 1, (world.posts, 4))
        self.engagements = np.zeros(world.posts)

    def sessions(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        w = self.world
        user = rng.integers(0, w.users, w.sessions_per_round)
        cand = rng.integers(0, w.posts, (w.sessions_per_round, w.candidates))
        return user, cand

    def affinity(self, user: np.ndarray, cand: np.ndarray) -> np.ndarray:
        dot = np.einsum("sd,scd->sc", self.u_vec[user], self.p_vec[cand])
        return np.asarray(dot * self.world.affinity_sd / 2.0)

    def features(self, user: np.ndarray, cand: np.ndarray) -> np.ndarray:
        return np.stack(
            [
                self.quality_seen[cand],
                self.affinity(user, cand),
                np.log1p(self.engagements[cand]),
            ],
            axis=-1,
        )

    def true_logit(self, user: np.ndarray, cand: np.ndarray) -> np.ndarray:
        return np.asarray(
            B0 + self.bias[user][:, None] + self.quality[cand] + self.affinity(user, cand)
        )


def _position_term(shown: int) -> np.ndarray:
    return np.asarray(POSITION * np.log1p(np.arange(shown)))


def _expected(logits_in_order: np.ndarray) -> float:
    """True expected engagement per impression of sessions shown in this order."""
    k = logits_in_order.shape[1]
    p = 1.0 / (1.0 + np.exp(-(logits_in_order - _position_term(k))))
    return float(p.mean())


def _fit(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    model = LogisticRegression(C=1.0, max_iter=500)
    model.fit(x, y)
    return model


def run_policy(world: FeedbackWorld, policy: str, seed: int) -> PolicyRun:
    """`policy` is "served" or "explore"; the same seed gives both the same world and first
    round (uniformly random rankings), so they differ only by what they retrain on."""
    if policy not in ("served", "explore"):
        raise ValueError(f"unknown policy {policy!r}")
    state = _World(world, seed)
    rng = np.random.default_rng(seed + 1)
    k = world.shown
    run = PolicyRun(policy)
    model: LogisticRegression | None = None
    for r in range(world.rounds + 1):
        user, cand = state.sessions(rng)
        x = state.features(user, cand)
        logits = state.true_logit(user, cand)
        random_order = np.argsort(rng.random(cand.shape), axis=1)
        if model is None:  # round 0: everything random, the shared first model
            order = random_order
            explored = np.ones(len(user), dtype=bool)
        else:
            scores = model.decision_function(x.reshape(-1, x.shape[-1])).reshape(cand.shape)
            order = np.argsort(-scores, axis=1, kind="stable")
            explored = rng.random(len(user)) < (world.epsilon if policy == "explore" else 0.0)
            order[explored] = random_order[explored]
        top = order[:, :k]
        shown_logits = np.take_along_axis(logits, top, axis=1)
        p = 1.0 / (1.0 + np.exp(-(shown_logits - _position_term(k))))
        engaged = rng.random(p.shape) < p
        shown_posts = np.take_along_axis(cand, top, axis=1)
        shown_x = np.take_along_axis(x, top[..., None], axis=1)
        ranked = ~explored if model is not None else explored
        oracle = np.sort(logits, axis=1)[:, ::-1][:, :k]
        result = RoundResult(
            round=r,
            policy_engagement=_expected(shown_logits[ranked]),
            overall_engagement=_expected(shown_logits),
            oracle_engagement=_expected(oracle),  # sessions are a random split: same mean
            random_engagement=_expected(np.take_along_axis(logits, random_order[:, :k], axis=1)),
            weights={},
            exposure_gini=gini(np.bincount(shown_posts.ravel(), minlength=world.posts)),
            training_rows=0,
        )
        # what the next model learns from: all rows (served) or the random slice (explore)
        rows = np.ones(len(user), dtype=bool) if policy == "served" or model is None else explored
        train_x = shown_x[rows].reshape(-1, x.shape[-1])
        train_y = engaged[rows].ravel()
        if train_y.any() and not train_y.all():
            model = _fit(train_x, train_y)
        result.training_rows = len(train_y)
        assert model is not None
        result.weights = dict(zip(FEATURES, model.coef_[0].round(4).tolist(), strict=True))
        run.rounds.append(result)
        np.add.at(state.engagements, shown_posts[engaged], 1)
    return run
