"""Holdout evaluation of a ranker or baseline, and the oracle that bounds them.

- AUC and log loss over all holdout impressions;
- the calibration curve (mean predicted vs observed rate in predicted-probability bins);
- NDCG@20 per user: each user's holdout impressions ranked by score, relevance = engaged, the
  mean over users with at least one engagement (others have no ideal ranking);
- AUC by user-activity bucket (impressions the user had in the 28 days before), because a model
  that only works for heavy users fails most people;
- ORACLE AUC: the generator's hidden `true_probability` of the very same holdout impressions.
  Engagement is a coin flip with that probability, so no model can expect to beat it; the gap
  says how much signal is left.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import log_loss, ndcg_score, roc_auc_score

ACTIVITY = "user_activity__impressions_28d"
# upper bounds of the activity buckets (impressions in the previous 28 days)
ACTIVITY_BUCKETS = ((0.0, "new (0)"), (20.0, "light (1-20)"), (100.0, "regular (21-100)"))
HEAVY = "heavy (>100)"
NDCG_K = 20
EPSILON = 1e-7


@dataclass
class Evaluation:
    name: str
    auc: float
    log_loss: float
    ndcg_at_20: float
    rows: int
    positives: int
    users_for_ndcg: int
    calibration: dict[str, list[float]] = field(default_factory=dict)  # predicted, observed
    by_activity: list[dict[str, float | str]] = field(default_factory=list)

    def headline(self) -> dict[str, float]:
        return {"auc": self.auc, "log_loss": self.log_loss, "ndcg_at_20": self.ndcg_at_20}

    def as_dict(self) -> dict:
        return asdict(self)


def safe_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")


def ndcg_per_user(
    users: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int = NDCG_K
) -> tuple[float, int]:
    """Mean NDCG@k over users with at least one positive, and how many such users."""
    frame = pd.DataFrame({"user": users, "label": labels, "score": scores})
    values = []
    for _, group in frame.groupby("user", sort=False):
        if group["label"].sum() == 0:
            continue
        if len(group) == 1:
            values.append(1.0)  # one engaged impression: any order is ideal
            continue
        values.append(
            float(ndcg_score([group["label"].to_numpy()], [group["score"].to_numpy()], k=k))
        )
    return (float(np.mean(values)) if values else float("nan")), len(values)


def activity_bucket(impressions_28d: np.ndarray) -> np.ndarray:
    values = np.nan_to_num(impressions_28d.astype("float64"), nan=0.0)
    names = np.full(len(values), HEAVY, dtype=object)
    for bound, name in reversed(ACTIVITY_BUCKETS):
        names[values <= bound] = name
    return names


def by_activity(
    frame: pd.DataFrame, labels: np.ndarray, scores: np.ndarray
) -> list[dict[str, float | str]]:
    activity = (
        pd.to_numeric(frame[ACTIVITY], errors="coerce").to_numpy()
        if ACTIVITY in frame.columns
        else np.zeros(len(frame))
    )
    buckets = activity_bucket(activity)
    out: list[dict[str, float | str]] = []
    for name in [n for _, n in ACTIVITY_BUCKETS] + [HEAVY]:
        mask = buckets == name
        if not mask.any():
            continue
        out.append(
            {
                "bucket": name,
                "rows": float(mask.sum()),
                "positives": float(labels[mask].sum()),
                "auc": safe_auc(labels[mask], scores[mask]),
            }
        )
    return out


def evaluate_scores(
    name: str, frame: pd.DataFrame, labels: np.ndarray, scores: np.ndarray
) -> Evaluation:
    """Every holdout metric of one model's scores (probabilities) on `frame`'s rows."""
    if len(scores) != len(frame):
        raise ValueError(f"{name}: {len(scores)} scores for {len(frame)} rows")
    probabilities = np.clip(np.asarray(scores, dtype=np.float64), EPSILON, 1 - EPSILON)
    ndcg, users = ndcg_per_user(frame["user_id"].to_numpy(), labels, probabilities)
    predicted, observed = [], []
    if len(np.unique(labels)) == 2:
        observed_arr, predicted_arr = calibration_curve(
            labels, probabilities, n_bins=10, strategy="quantile"
        )
        predicted, observed = predicted_arr.tolist(), observed_arr.tolist()
    return Evaluation(
        name=name,
        auc=safe_auc(labels, probabilities),
        log_loss=float(log_loss(labels, probabilities, labels=[0, 1])),
        ndcg_at_20=ndcg,
        rows=len(frame),
        positives=int(labels.sum()),
        users_for_ndcg=users,
        calibration={"predicted": predicted, "observed": observed},
        by_activity=by_activity(frame, labels, probabilities),
    )


def true_probabilities(frame: pd.DataFrame, truth_impressions: pd.DataFrame) -> np.ndarray:
    """The generator's true P(engage) of each row (impression_id == the impression's event_id);
    NaN where the ground truth has no such impression."""
    truth = truth_impressions[["event_id", "true_probability"]].drop_duplicates("event_id")
    joined = frame[["impression_id"]].merge(
        truth, how="left", left_on="impression_id", right_on="event_id"
    )
    return joined["true_probability"].to_numpy(dtype=np.float64)


def oracle_evaluation(
    frame: pd.DataFrame, labels: np.ndarray, truth_impressions: pd.DataFrame
) -> Evaluation:
    """The ground truth's own scores on the holdout rows (it must cover every row)."""
    truth = true_probabilities(frame, truth_impressions)
    unmatched = int(np.isnan(truth).sum())
    if unmatched:
        raise ValueError(
            f"{unmatched} of {len(frame)} holdout impressions have no ground-truth impression "
            "(impression_id must equal the generated impression's event_id)"
        )
    return evaluate_scores("oracle", frame, labels, truth)
