"""Baselines the ranker must beat, fitted on the same train split and scored on the same holdout.

- recency: newer posts first (score from the post's age only);
- popularity: posts with more engagement so far first;
- logistic regression: every feature, preprocessed exactly like the ranker's inputs (categoricals
  one-hot).

Recency and popularity pass their single signal through a one-feature logistic regression, which
keeps their order (so their AUC and NDCG are the signal's own) and makes their log loss a fair
comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ml.ranking.preprocessing import Preprocessing

AGE = "post_request_features__post_age_hours"
ENGAGEMENTS_SO_FAR = "post_engagement__engagements_total"
MAX_ITER = 100


class Baseline(Protocol):
    name: str

    def fit(self, frame: pd.DataFrame, labels: np.ndarray) -> Baseline: ...

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...


def _column(frame: pd.DataFrame, name: str, fill: float) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), fill)
    values = pd.to_numeric(frame[name], errors="coerce").astype("float64").to_numpy()
    return np.where(np.isnan(values), fill, values)


@dataclass
class SingleSignalBaseline:
    """Ranks by one column (log1p, sign chosen by `higher_is_better`); calibrated on train."""

    name: str
    column: str
    higher_is_better: bool
    missing: float = 0.0
    _model: LogisticRegression = field(default_factory=lambda: LogisticRegression())

    def signal(self, frame: pd.DataFrame) -> np.ndarray:
        values = np.log1p(np.maximum(_column(frame, self.column, self.missing), 0.0))
        return values if self.higher_is_better else -values

    def fit(self, frame: pd.DataFrame, labels: np.ndarray) -> SingleSignalBaseline:
        self._model.fit(self.signal(frame).reshape(-1, 1), labels)
        if self._model.coef_[0, 0] < 0:  # keep the stated order even if train disagrees
            self._model.coef_[0, 0] = 0.0
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        # the signal itself orders; the calibrated probability breaks no ties differently
        probability = self._model.predict_proba(self.signal(frame).reshape(-1, 1))[:, 1]
        return np.asarray(probability)


def recency_baseline() -> SingleSignalBaseline:
    # an unknown age counts as old (a week)
    return SingleSignalBaseline("recency", AGE, higher_is_better=False, missing=24.0 * 7)


def popularity_baseline() -> SingleSignalBaseline:
    return SingleSignalBaseline("popularity", ENGAGEMENTS_SO_FAR, higher_is_better=True)


@dataclass
class LogisticBaseline:
    """Logistic regression on the ranker's own preprocessed inputs (one-hot categoricals)."""

    spec: Preprocessing
    name: str = "logistic_regression"
    c: float = 1.0
    _model: LogisticRegression = field(init=False)

    def __post_init__(self) -> None:
        # Newton-Cholesky: exact for many rows and a few hundred columns, and 4x faster here
        # than lbfgs, whose result also depends on when it stops
        self._model = LogisticRegression(C=self.c, solver="newton-cholesky", max_iter=MAX_ITER)

    def design(self, frame: pd.DataFrame) -> np.ndarray:
        inputs = self.spec.transform(frame)
        one_hot = np.zeros((len(frame), max(self.spec.category_count, 1)), dtype=np.float32)
        if self.spec.categorical:
            rows = np.repeat(np.arange(len(frame)), len(self.spec.categorical))
            one_hot[rows, inputs["categorical"].ravel()] = 1.0
        return np.concatenate([inputs["numeric"], one_hot], axis=1)

    def fit(self, frame: pd.DataFrame, labels: np.ndarray) -> LogisticBaseline:
        self._model.fit(self.design(frame).astype(np.float64), labels)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._model.predict_proba(self.design(frame))[:, 1])
