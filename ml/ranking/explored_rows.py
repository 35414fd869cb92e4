"""How the exploration slice enters ranker training (`RankerParams.explored_rows`).

Serving fills a share of feed slots at random from the eligible candidates (`serving.exploration`)
and flags them `explored`; the flag reaches the training set (`featurestore.training.EXPLORED`).
A ranker retrained on everything it served learns mostly from posts it already ranked high:
the ranked rows are a sample chosen by the previous ranker, the explored ones a uniform sample
of what it could have shown. The modes:

- `all` (the default, as before the flag existed): every impression weighs 1;
- `only`: only explored impressions train and validate the network (free of the previous
  ranker's selection, but fewer rows);
- `inverse_share`: every impression trains, explored ones weighted by 1 / (their share of the
  split), so the uniform slice weighs as much as the whole served sample together.

Only the network follows the mode; the baselines and the holdout (the promotion gate's
comparison) see every row. Kept free of TensorFlow so Dagster config can name the modes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from featurestore.training import EXPLORED, LABEL

ALL = "all"
ONLY = "only"
INVERSE_SHARE = "inverse_share"
MODES = (ALL, ONLY, INVERSE_SHARE)
DEFAULT = ALL


class NoExploredRows(ValueError):
    """A mode that needs explored impressions met a split without any."""


def explored_flags(frame: pd.DataFrame) -> np.ndarray:
    """Per row whether it was explored; a training set from before the flag has none."""
    if EXPLORED not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[EXPLORED].fillna(False).astype(bool).to_numpy()


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"explored_rows must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def select_rows(
    frame: pd.DataFrame, mode: str, split: str
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The rows of one split the network learns from under `mode`, and their sample weights
    (None: all 1, keras's default, so `all` trains exactly as before)."""
    check_mode(mode)
    if mode == ALL:
        return frame, None
    flags = explored_flags(frame)
    if not flags.any():
        raise NoExploredRows(
            f"explored_rows={mode!r} needs explored impressions, and the {split} split "
            f"({len(frame):,} rows) has none: was SERVING_FEED_EXPLORE_SHARE 0?"
        )
    if mode == ONLY:
        chosen = frame[flags].reset_index(drop=True)
        if chosen[LABEL].nunique() < 2:
            raise NoExploredRows(
                f"the {split} split's {len(chosen):,} explored impressions do not have both "
                "labels: too few to train on alone"
            )
        return chosen, None
    weights = np.where(flags, len(frame) / flags.sum(), 1.0)
    return frame, weights.astype(np.float32)
