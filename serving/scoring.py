"""Scoring a feature frame with the current ranker, its preprocessing and its network timed as
separate stages (`serving.stages`); the same numbers as `scorer.predict(frame)`.

No lock: the ranker's numpy forward pass (`ml.ranking.compiled`) and TensorFlow are safe to call
from several threads, and the online feature reader serializes only its own SQLite read.
"""

from typing import Any

import numpy as np

from ml.ranking.columns import ColumnTable, Table
from serving.model_loading import Scorer
from serving.stages import stage


def score(scorer: Scorer, frame: Table, endpoint: str) -> np.ndarray:
    """P(engage) per row of `frame` (a DataFrame, or the arrays of `ColumnTable`)."""
    preprocessing: Any = getattr(scorer, "preprocessing", None)
    logits: Any = getattr(scorer, "logits", None)
    if preprocessing is None or logits is None:  # the recency fallback: one cheap step
        with stage(endpoint, "scoring"):
            return scorer.predict(frame.to_frame() if isinstance(frame, ColumnTable) else frame)
    with stage(endpoint, "preprocessing"):
        inputs = preprocessing.transform(frame)
    with stage(endpoint, "scoring"):
        return np.asarray(1.0 / (1.0 + np.exp(-logits(inputs))))
