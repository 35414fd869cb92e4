"""Time-based splits of a training set: train on the past, validate and hold out on the future.

Splitting by `event_timestamp` quantiles (not at random) keeps every validation and holdout
impression strictly later than every training impression, as it is in production; impressions
sharing a timestamp stay on one side of a boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from featurestore.training import LABEL

SPLITS = ("train", "validation", "holdout")


@dataclass
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame
    validation_starts_at: pd.Timestamp
    holdout_starts_at: pd.Timestamp

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        return [("train", self.train), ("validation", self.validation), ("holdout", self.holdout)]

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "rows": float(len(part)),
                "label_rate": labels(part).mean() if len(part) else 0.0,
            }
            for name, part in self.items()
        }


def labels(frame: pd.DataFrame) -> np.ndarray:
    return frame[LABEL].astype(bool).to_numpy().astype(np.int64)


def time_split(frame: pd.DataFrame, validation: float = 0.15, holdout: float = 0.15) -> Splits:
    """Train / validation / holdout by time: the last `holdout` share of the time-ordered rows is
    the holdout, the `validation` share before it validation, the rest train."""
    if not 0 < validation < 1 or not 0 < holdout < 1 or validation + holdout >= 1:
        raise ValueError(
            f"validation ({validation}) and holdout ({holdout}) must be shares in (0, 1) "
            "that leave rows to train on"
        )
    if "event_timestamp" not in frame.columns:
        raise ValueError("a training set needs an event_timestamp column to split by time")
    times = pd.to_datetime(frame["event_timestamp"], utc=True)
    holdout_starts = times.quantile(1 - holdout)
    validation_starts = times.quantile(1 - holdout - validation)
    train = _rows(frame, times < validation_starts)
    valid = _rows(frame, (times >= validation_starts) & (times < holdout_starts))
    held = _rows(frame, times >= holdout_starts)
    for name, part in (("train", train), ("validation", valid), ("holdout", held)):
        if part.empty or part[LABEL].nunique() < 2:
            raise ValueError(
                f"the {name} split has {len(part)} rows and not both labels: the training set "
                f"({len(frame)} rows) is too small or too short to split by time"
            )
    return Splits(train, valid, held, validation_starts, holdout_starts)


def _rows(frame: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    """The rows of `mask`, indexed 0..n-1: one copy (`reset_index` would make a second one of
    every split beside the whole frame, the models stage's peak at 10,000 users, issue 17)."""
    part = frame[mask]
    part.index = pd.RangeIndex(len(part))
    return part
