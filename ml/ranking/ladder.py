"""The ablation ladder: which signal carries what, on the ranker's own holdout.

Rungs, all on the same time split (AUC on the same holdout rows):

- oracle: the generator's true probability (the bound);
- truth_logistic_regression: a logistic regression on the true factors of `TruthModel` (each
  impression's affinity, content preference, quality, interest match, interest x visible
  quality, location, velocity, earlier engagements with the author, recency decay (per media
  type), position, as the ground truth records them). The truth is logistic in these (the
  interactions are recorded as their products), so this rung sits
  at the oracle up to estimation noise; if it does not, the recorded factors are incomplete;
- ranker and logistic_regression (on the ranker's inputs), recency, popularity: from the report;
- drop-one: the logistic regression on the ranker's inputs refitted without one feature group
  (the column prefix before `__`), and the truth regression without one true factor. The drop in
  AUC is what that group (factor) adds beyond the others. A logistic regression, not the network,
  is refitted: it is exact and takes a second, and the network tracks it on these data
  (docs/benchmarks.md), so the ladder stays cheap enough to run on every training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ml.ranking.baselines import LogisticBaseline
from ml.ranking.dataset import Splits, labels
from ml.ranking.evaluate import safe_auc
from ml.ranking.preprocessing import Preprocessing, feature_columns

# true factor -> how it enters the truth's logit (so a linear model can match it)
TRUE_FACTORS: dict[str, str] = {
    "affinity": "identity",
    "content_pref": "identity",
    "quality": "identity",
    "interest_match": "identity",
    "same_city": "identity",
    "same_country": "identity",
    "distance_km": "log1p_per_100_km",
    "engagements_before": "log1p",
    "pair_engagements_before": "log1p",
    "interest_quality": "identity",
    "recency_decay": "identity",
    "position": "log1p",
}

# what training reads from the ground truth's impressions: the oracle's probability and the true
# factors, by impression (event_id); a reader may skip every other column
TRUTH_COLUMNS = ("event_id", "true_probability", *TRUE_FACTORS)


@dataclass
class Ladder:
    """AUC per rung and per dropped group or factor (same holdout)."""

    rungs: dict[str, float] = field(default_factory=dict)
    drop_feature_group: dict[str, float] = field(default_factory=dict)  # group -> AUC without it
    drop_true_factor: dict[str, float] = field(default_factory=dict)  # factor -> AUC without it

    def metrics(self) -> dict[str, float]:
        out = {f"ladder_{k}_auc": v for k, v in self.rungs.items()}
        out.update({f"ladder_drop_group_{k}_auc": v for k, v in self.drop_feature_group.items()})
        out.update({f"ladder_drop_factor_{k}_auc": v for k, v in self.drop_true_factor.items()})
        return out

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {
            "rungs": self.rungs,
            "drop_feature_group": self.drop_feature_group,
            "drop_true_factor": self.drop_true_factor,
        }


def true_factor_matrix(frame: pd.DataFrame, truth: pd.DataFrame, factors: list[str]) -> np.ndarray:
    """The rows' true factors (joined on impression_id == event_id), transformed as the truth's
    logit uses them; NaN for rows the ground truth does not have."""
    joined = frame[["impression_id"]].merge(
        truth.drop_duplicates("event_id"), how="left", left_on="impression_id", right_on="event_id"
    )
    columns = []
    for name in factors:
        values = pd.to_numeric(joined[name], errors="coerce").to_numpy(dtype=np.float64)
        how = TRUE_FACTORS[name]
        if how == "log1p_per_100_km":
            values = np.log1p(np.nan_to_num(values, nan=0.0) / 100.0)
        elif how == "log1p":
            values = np.log1p(np.maximum(values, 0.0))
        columns.append(values)
    return np.column_stack(columns)


def _truth_auc(splits: Splits, truth: pd.DataFrame, factors: list[str]) -> float:
    train = true_factor_matrix(splits.train, truth, factors)
    hold = true_factor_matrix(splits.holdout, truth, factors)
    keep = ~np.isnan(train).any(axis=1)
    model = LogisticRegression(solver="newton-cholesky", max_iter=200)
    model.fit(train[keep], labels(splits.train)[keep])
    if np.isnan(hold).any():
        return float("nan")
    return safe_auc(labels(splits.holdout), model.predict_proba(hold)[:, 1])


def feature_groups(columns: list[str]) -> dict[str, list[str]]:
    """Feature columns by group: the prefix before `__` (a request column is its own group)."""
    groups: dict[str, list[str]] = {}
    for column in columns:
        groups.setdefault(column.split("__", 1)[0], []).append(column)
    return groups


def _inputs_auc(splits: Splits, columns: list[str]) -> float:
    spec = Preprocessing.fit(splits.train, columns)
    model = LogisticBaseline(spec).fit(splits.train, labels(splits.train))
    return safe_auc(labels(splits.holdout), model.predict(splits.holdout))


def build_ladder(
    splits: Splits, report_aucs: dict[str, float], truth: pd.DataFrame | None
) -> Ladder:
    """Every rung: the report's own AUCs, the truth regression and the drop-one refits."""
    ladder = Ladder()
    order = ("oracle", "ranker", "logistic_regression", "recency", "popularity")
    has_truth = truth is not None and set(TRUE_FACTORS) <= set(truth.columns)
    if has_truth and "oracle" in report_aucs:
        assert truth is not None
        factors = list(TRUE_FACTORS)
        ladder.rungs["truth_logistic_regression"] = _truth_auc(splits, truth, factors)
        for factor in factors:
            rest = [f for f in factors if f != factor]
            ladder.drop_true_factor[factor] = _truth_auc(splits, truth, rest)
    for name in order:
        if name in report_aucs:
            ladder.rungs[name] = report_aucs[name]
    columns = feature_columns(splits.train)
    for group, members in feature_groups(columns).items():
        ladder.drop_feature_group[group] = _inputs_auc(
            splits, [c for c in columns if c not in members]
        )
    return ladder
