"""The verdict of an A/B test from its sessions: per-arm metrics with confidence intervals, a
sample-ratio-mismatch check and a decision rule.

Users are the unit of randomization, so every interval treats a user's sessions as one draw:
ratio metrics (engagements / impressions) get the delta method over per-user sums, or a Poisson
bootstrap that resamples users. Metrics, per arm:

- engagement rate per impression (the primary metric of the decision);
- engagements per session; sessions per user;
- position-weighted engagement: sum of engaged * w(pos) / sum of w(pos), w = 1 / log2(pos + 2),
  the NDCG discount: an engagement at the top counts more than one far down.

Decision rule: a sample-ratio mismatch (chi-square p < 0.001 against the configured shares)
voids the test; otherwise the treatment ships when the CI of its lift in the primary metric
lies above 0, control stays when it lies below, and anything else is "no difference detected".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from experiments.config import Arm, Experiment
from experiments.interleaving import Credit, Verdict, verdict

METRICS = (
    "engagement_rate",
    "engagements_per_session",
    "sessions_per_user",
    "weighted_engagement_rate",
)
SRM_ALPHA = 0.001
Z95 = 1.959963984540054


def discount(position: np.ndarray | pd.Series) -> np.ndarray:
    return 1.0 / np.log2(np.asarray(position, dtype=np.float64) + 2.0)


def per_user(impressions: pd.DataFrame) -> pd.DataFrame:
    """Per (arm, user) sums from one row per impression: arm, user_id, session_id, position,
    engaged (bool)."""
    frame = impressions.assign(
        w=discount(impressions["position"]),
        engaged=impressions["engaged"].astype("float64"),
    )
    frame["w_engaged"] = frame["w"] * frame["engaged"]
    return (
        frame.groupby(["arm", "user_id"])
        .agg(
            impressions=("engaged", "size"),
            engagements=("engaged", "sum"),
            sessions=("session_id", "nunique"),
            weight=("w", "sum"),
            weighted_engagements=("w_engaged", "sum"),
        )
        .reset_index()
    )


_RATIOS = {
    "engagement_rate": ("engagements", "impressions"),
    "engagements_per_session": ("engagements", "sessions"),
    "weighted_engagement_rate": ("weighted_engagements", "weight"),
}


def _estimate(users: pd.DataFrame, metric: str) -> tuple[float, float]:
    """(value, delta-method standard error) of a metric over one arm's users."""
    n = len(users)
    if metric == "sessions_per_user":
        x = users["sessions"].to_numpy(np.float64)
        return float(x.mean()), float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    num, den = _RATIOS[metric]
    y, x = users[num].to_numpy(np.float64), users[den].to_numpy(np.float64)
    if n < 2 or x.sum() == 0:
        return math.nan, math.inf
    ratio = y.sum() / x.sum()
    cov = np.cov(y, x, ddof=1)
    var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (n * x.mean() ** 2)
    return float(ratio), float(math.sqrt(max(var, 0.0)))


def _bootstrap(
    users: pd.DataFrame, metric: str, draws: int, rng: np.random.Generator
) -> np.ndarray:
    weights = rng.poisson(1.0, size=(draws, len(users))).astype(np.float64)
    if metric == "sessions_per_user":
        total = weights.sum(axis=1)
        return (weights @ users["sessions"].to_numpy(np.float64)) / np.where(total, total, np.nan)
    num, den = _RATIOS[metric]
    bottom = weights @ users[den].to_numpy(np.float64)
    return (weights @ users[num].to_numpy(np.float64)) / np.where(bottom, bottom, np.nan)


@dataclass(frozen=True)
class Comparison:
    metric: str
    control: float
    treatment: float
    difference: float
    low: float  # 95% CI of the difference (treatment - control)
    high: float

    @property
    def lift(self) -> float:
        return self.difference / self.control if self.control else math.nan

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class Result:
    users: dict[str, int]
    srm_p_value: float
    comparisons: dict[str, Comparison]
    decision: str


def compare(
    users: pd.DataFrame,
    control: str,
    treatment: str,
    metric: str,
    method: str = "delta",
    draws: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Treatment minus control in `metric`, with a 95% CI (delta method or bootstrap)."""
    a, b = users[users["arm"] == control], users[users["arm"] == treatment]
    (va, sa), (vb, sb) = _estimate(a, metric), _estimate(b, metric)
    diff = vb - va
    if method == "delta":
        half = Z95 * math.sqrt(sa**2 + sb**2)
        return Comparison(metric, va, vb, diff, diff - half, diff + half)
    rng = np.random.default_rng(seed)
    spread = _bootstrap(b, metric, draws, rng) - _bootstrap(a, metric, draws, rng)
    low, high = np.nanpercentile(spread, [2.5, 97.5])
    return Comparison(metric, va, vb, diff, float(low), float(high))


def chi_square_p(observed: list[int], shares: list[float]) -> float:
    """P(chi-square >= statistic) for observed counts against expected shares (df = k - 1)."""
    total = sum(observed)
    if total == 0:
        return 1.0
    stat = sum((o - total * s) ** 2 / (total * s) for o, s in zip(observed, shares, strict=True))
    df = len(observed) - 1
    return _chi2_sf(stat, df)


def _chi2_sf(x: float, df: int) -> float:
    """Upper tail of chi-square: the regularized upper incomplete gamma Q(df/2, x/2)."""
    if x <= 0:
        return 1.0
    if df == 1:
        return math.erfc(math.sqrt(x / 2.0))
    s, z = df / 2.0, x / 2.0
    term = total = 1.0 / s  # series of the lower gamma: sum z^n / (s (s+1) ... (s+n))
    n = 0
    while term > total * 1e-15 and n < 10_000:
        n += 1
        term *= z / (s + n)
        total += term
    lower = math.exp(s * math.log(z) - z - math.lgamma(s)) * total
    return max(0.0, 1.0 - lower)


def analyse(
    impressions: pd.DataFrame,
    shares: Mapping[str, float],
    control: str = "control",
    treatment: str = "treatment",
    method: str = "delta",
    seed: int = 0,
) -> Result:
    """The report of one two-arm experiment from its impressions (see `per_user`)."""
    users = per_user(impressions)
    counts = users.groupby("arm")["user_id"].nunique().to_dict()
    arms = list(shares)
    srm = chi_square_p([int(counts.get(a, 0)) for a in arms], [shares[a] for a in arms])
    comparisons = {m: compare(users, control, treatment, m, method, seed=seed) for m in METRICS}
    primary = comparisons["engagement_rate"]
    if srm < SRM_ALPHA:
        decision = f"invalid: sample ratio mismatch (p = {srm:.2g})"
    elif primary.low > 0:
        decision = f"ship {treatment}"
    elif primary.high < 0:
        decision = f"keep {control}"
    else:
        decision = "no difference detected"
    return Result({a: int(counts.get(a, 0)) for a in arms}, srm, comparisons, decision)


def session_credits(impressions: pd.DataFrame, first: str, second: str) -> list[Credit]:
    """Per session of an interleaving experiment (rows as in `per_user`, `arm` being the arm
    that placed the item): the engagements each arm's items earned. Every served session counts,
    a session without engagements as a tie."""
    engaged = impressions.assign(engaged=impressions["engaged"].astype("int64"))
    table = engaged.pivot_table(
        index="session_id", columns="arm", values="engaged", aggfunc="sum", fill_value=0
    )
    a = table[first] if first in table else pd.Series(0, index=table.index)
    b = table[second] if second in table else pd.Series(0, index=table.index)
    return [Credit(int(x), int(y)) for x, y in zip(a.tolist(), b.tolist(), strict=True)]


def analyse_interleaving(impressions: pd.DataFrame, first: str, second: str) -> Verdict:
    """The sign test over sessions: which arm's items won more sessions' engagements."""
    return verdict(session_credits(impressions, first, second))


def interleaving_decision(result: Verdict, first: str, second: str) -> str:
    """Same wording as the A/B rule: the second arm is the challenger."""
    winner = result.winner()
    if winner is None:
        return "no difference detected"
    return f"ship {second}" if winner == "b" else f"keep {first}"


@dataclass(frozen=True)
class Outcome:
    """A finished experiment's significant verdict: the arm that won, the one that lost, why."""

    experiment: str
    winner: Arm
    loser: Arm
    reason: str


def online_outcome(
    experiment: Experiment,
    at: datetime,
    result: Result | None = None,
    interleaved: Verdict | None = None,
) -> Outcome | None:
    """Which arm won this experiment, or None: only a finished experiment (stopped, or past its
    end) decides, and only when the evidence excludes no difference: the CI of the primary
    metric lies entirely on one side of 0 (a void A/B, sample-ratio mismatch, decides nothing),
    or the interleaving sign test names a winner at 5%. The same rule as the decision text
    ("ship <second>" / "keep <first>"), in both directions: a champion in the first arm can lose
    too. The reason is what the registry records beside whatever it does about the verdict."""
    if not (experiment.stopped or at >= experiment.end):
        return None
    first, second = experiment.arms[0], experiment.arms[1]
    if interleaved is not None:
        side = interleaved.winner()
        if side is None:
            return None
        winner, loser = (first, second) if side == "a" else (second, first)
        won, lost = (
            (interleaved.wins_a, interleaved.wins_b)
            if side == "a"
            else (interleaved.wins_b, interleaved.wins_a)
        )
        return Outcome(
            experiment.name,
            winner,
            loser,
            f"experiment {experiment.name!r} (interleaving): {loser.name} ({loser.model}) won "
            f"{lost} sessions to {winner.name}'s ({winner.model}) {won} "
            f"(sign test p = {interleaved.p_value:.2g})",
        )
    if result is None or result.srm_p_value < SRM_ALPHA:
        return None
    c = result.comparisons["engagement_rate"]
    if c.high < 0:
        winner, loser, mine, theirs = first, second, c.control, c.treatment
    elif c.low > 0:
        winner, loser, mine, theirs = second, first, c.treatment, c.control
    else:
        return None
    return Outcome(
        experiment.name,
        winner,
        loser,
        f"experiment {experiment.name!r}: {loser.name} ({loser.model}) engagement_rate "
        f"{theirs:.4f} vs {winner.name} ({winner.model}) {mine:.4f}, difference "
        f"{c.difference:+.4f} (95% CI [{c.low:+.4f}, {c.high:+.4f}], treatment - control)",
    )


def lost_online(
    experiment: Experiment,
    at: datetime,
    result: Result | None = None,
    interleaved: Verdict | None = None,
) -> str | None:
    """Why the challenger (the second arm) lost this finished experiment, or None (see
    `online_outcome`)."""
    found = online_outcome(experiment, at, result, interleaved)
    if found is None or found.loser != experiment.arms[1]:
        return None
    return found.reason
