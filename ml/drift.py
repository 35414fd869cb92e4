"""Feature drift: the population stability index (PSI) of each feature between the champion's
training data and a new batch.

At training time `reference_from(train_split, features)` records, per numeric feature, decile
bin edges and the share of rows in each bin (nulls in a bin of their own), per categorical
feature the share of each category; it is stored with the model (an MLflow artifact). A new
batch is binned with the same edges and

    PSI = sum over bins (actual - expected) * ln(actual / expected)

(empty bins count as a tiny share). Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 the
feature's distribution has moved enough to distrust the model on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

THRESHOLD = 0.2
BINS = 10
EPSILON = 1e-4
OTHER = "__other__"
MISSING = "__missing__"


@dataclass
class NumericReference:
    name: str
    edges: list[float]  # inner bin edges; bins are (-inf, e0], (e0, e1], ..., (e_k, inf), missing
    proportions: list[float]


@dataclass
class CategoricalReference:
    name: str
    categories: list[str]  # + OTHER + MISSING at the end of `proportions`
    proportions: list[float]


@dataclass
class DriftReference:
    rows: int
    numeric: list[NumericReference] = field(default_factory=list)
    categorical: list[CategoricalReference] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReference:
        return cls(
            rows=int(data["rows"]),
            numeric=[NumericReference(**n) for n in data.get("numeric", [])],
            categorical=[CategoricalReference(**c) for c in data.get("categorical", [])],
        )

    @property
    def features(self) -> list[str]:
        return [n.name for n in self.numeric] + [c.name for c in self.categorical]


def _numeric(series: pd.Series) -> np.ndarray:
    return np.asarray(pd.to_numeric(series, errors="coerce"), dtype=np.float64)


def _is_text(series: pd.Series) -> bool:
    sample = series.dropna()
    return bool(len(sample)) and isinstance(sample.iloc[0], str)


def _numeric_shares(values: np.ndarray, edges: list[float]) -> np.ndarray:
    missing = np.isnan(values)
    bins = np.searchsorted(np.asarray(edges), values[~missing], side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1).astype(np.float64)
    counts = np.append(counts, missing.sum())
    return counts / max(len(values), 1)


def _categorical_shares(series: pd.Series, categories: list[str]) -> np.ndarray:
    values = series.astype(object).where(series.notna(), None).to_numpy()
    index = {c: i for i, c in enumerate(categories)}
    counts = np.zeros(len(categories) + 2)
    for value in values:
        if value is None:
            counts[-1] += 1
        else:
            counts[index.get(str(value), len(categories))] += 1
    return counts / max(len(values), 1)


def reference_from(frame: pd.DataFrame, columns: list[str], bins: int = BINS) -> DriftReference:
    """Bin edges and shares of `columns` in `frame` (datetime columns are skipped)."""
    reference = DriftReference(rows=len(frame))
    for name in columns:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series):
            continue
        if _is_text(series):
            categories = sorted(series.dropna().astype(str).unique().tolist())[:100]
            shares = _categorical_shares(series, categories)
            reference.categorical.append(CategoricalReference(name, categories, shares.tolist()))
            continue
        values = _numeric(series)
        present = values[~np.isnan(values)]
        quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]) if len(present) else []
        edges = sorted({float(q) for q in quantiles})
        shares = _numeric_shares(values, edges)
        reference.numeric.append(NumericReference(name, edges, shares.tolist()))
    return reference


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    e = np.clip(np.asarray(expected, dtype=np.float64), EPSILON, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def population_stability(reference: DriftReference, frame: pd.DataFrame) -> dict[str, float]:
    """PSI per reference feature; a feature absent from `frame` counts as all missing."""
    rows = len(frame)
    out: dict[str, float] = {}
    for numeric in reference.numeric:
        values = _numeric(frame[numeric.name]) if numeric.name in frame else np.full(rows, np.nan)
        out[numeric.name] = psi(numeric.proportions, _numeric_shares(values, numeric.edges))
    for category in reference.categorical:
        series = frame[category.name] if category.name in frame else pd.Series([None] * rows)
        out[category.name] = psi(
            category.proportions, _categorical_shares(series, category.categories)
        )
    return out


def drifting(stability: dict[str, float], threshold: float = THRESHOLD) -> list[str]:
    """Features past the threshold, worst first."""
    return sorted((n for n, v in stability.items() if v > threshold), key=lambda n: -stability[n])
