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

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ml.ranking.columns import Table, take_rows
from ml.ranking.preprocessing import Preprocessing
from ml.ranking.sandwich import blocked_hessian

AGE = "post_request_features__post_age_hours"
ENGAGEMENTS_SO_FAR = "post_engagement__engagements_total"
MAX_ITER = 100
# the smallest slope of a single-signal baseline: its order survives, its probabilities stay at
# the base rate to ~1e-6 (the signal is a log1p, a few units wide)
FLOOR_SLOPE = 1e-6
# rows preprocessed at a time into the logistic regression's design matrix
DESIGN_ROWS = 65_536


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
        signal = self.signal(frame)
        self._model.fit(signal.reshape(-1, 1), labels)
        if self._model.coef_[0, 0] < FLOOR_SLOPE:
            # train disagrees with the stated order (on data a ranker shaped, older posts can
            # engage more: it shows an old post only when relevant). Keep the order anyway, at
            # the train base rate: a slope of 0 would score every row alike (AUC 0.5, issue 22)
            rate = float(np.clip(np.mean(labels), 1e-6, 1 - 1e-6))
            self._model.coef_[0, 0] = FLOOR_SLOPE
            self._model.intercept_[0] = np.log(rate / (1 - rate)) - FLOOR_SLOPE * signal.mean()
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

    def design(self, frame: Table) -> np.ndarray:
        """The regression's float64 inputs: the ranker's preprocessed numeric inputs (float32
        values, widened) then one-hot categoricals. Built straight into the one float64 matrix
        sklearn fits on, DESIGN_ROWS rows of the frame at a time: a float32 copy of the whole
        design and whole-frame transform temporaries beside it cost as much memory again as the
        design itself at 1M training rows (issue 17); the values are the same."""
        spec = self.spec
        width = spec.numeric_width
        design = np.zeros((len(frame), width + max(spec.category_count, 1)), dtype=np.float64)
        for start in range(0, len(frame), DESIGN_ROWS):
            stop = min(start + DESIGN_ROWS, len(frame))
            part = frame if stop - start == len(frame) else _rows(frame, start, stop)
            inputs = spec.transform(part)
            design[start:stop, :width] = inputs["numeric"]
            if spec.categorical:
                rows = np.repeat(np.arange(start, stop), len(spec.categorical))
                design[rows, width + inputs["categorical"].ravel()] = 1.0
        return design

    def fit(self, frame: pd.DataFrame, labels: np.ndarray) -> LogisticBaseline:
        design = self.design(frame)
        with blocked_hessian():  # no second design-sized array for the Hessian (issue 17)
            self._model.fit(design, labels)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._model.predict_proba(self.design(frame))[:, 1])


def _rows(frame: Table, start: int, stop: int) -> Table:
    """Rows [start, stop) of a DataFrame or a `ColumnTable`."""
    if isinstance(frame, pd.DataFrame):
        return frame.iloc[start:stop]
    return take_rows(frame, np.arange(start, stop))


LOGISTIC_VERSION = "baseline/logistic-regression"
LOGISTIC_FILE = "logistic.json"


class LogisticScorer:
    """The fitted logistic regression as a serving scorer (serving's `Scorer` protocol): what the
    API ranks with when no ranker beats it on the holdout (the promotion gate). Saved as JSON
    (coefficients, intercept, the preprocessing), so loading needs neither Keras nor pickle."""

    def __init__(
        self, spec: Preprocessing, coef: np.ndarray, intercept: float, version: str = ""
    ) -> None:
        self.preprocessing = spec
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)
        self.version = version or LOGISTIC_VERSION
        self.feature_names: list[str] = spec.feature_names

    @classmethod
    def of(cls, baseline: LogisticBaseline) -> LogisticScorer:
        return cls(baseline.spec, baseline._model.coef_[0], float(baseline._model.intercept_[0]))

    def _design(self, frame: pd.DataFrame) -> np.ndarray:
        return LogisticBaseline(self.preprocessing).design(frame)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        logits = self._design(frame) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-logits)))

    def explain(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions to the logit: the linear terms minus those of the training
        baseline row, grouped like the ranker's (`Preprocessing.feature_slots`)."""
        spec = self.preprocessing
        terms = self._design(frame) * self.coef
        base = spec.baseline()
        width = spec.numeric_width
        base_terms = np.zeros_like(self.coef)
        base_terms[:width] = base["numeric"][0] * self.coef[:width]
        for slot in base["categorical"][0]:
            base_terms[width + int(slot)] = self.coef[width + int(slot)]
        contributions = {}
        for name, (numeric, categorical) in zip(
            self.feature_names, spec.feature_slots(), strict=True
        ):
            columns = list(numeric)
            for j in categorical:  # the one-hot block of categorical column j
                start = width + spec.category_offsets()[j]
                columns.extend(range(start, start + spec.categorical[j].size))
            contributions[name] = terms[:, columns].sum(axis=1) - base_terms[columns].sum()
        return pd.DataFrame(contributions, index=frame.index, columns=self.feature_names)

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / LOGISTIC_FILE).write_text(
            json.dumps(
                {
                    "coef": self.coef.tolist(),
                    "intercept": self.intercept,
                    "preprocessing": self.preprocessing.to_json(),
                }
            )
        )
        return directory

    @classmethod
    def load(cls, directory: Path, version: str = "") -> LogisticScorer:
        meta = json.loads((directory / LOGISTIC_FILE).read_text())
        spec = Preprocessing.from_json(meta["preprocessing"])
        return cls(spec, np.asarray(meta["coef"]), meta["intercept"], version)
