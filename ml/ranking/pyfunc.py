"""The ranker as an MLflow pyfunc model, so `mlflow models serve` can serve the same artifact
(the serving benchmark compares it with our own endpoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from ml.ranking.preprocessing import Preprocessing
from ml.ranking.scorer import RankerScorer

SCORER_ARTIFACT = "scorer"
# explicit requirements: MLflow's inference of them costs ~5 s per log_model (STACK.md)
PIP_REQUIREMENTS = [
    f"mlflow=={mlflow.__version__}",
    "tensorflow-cpu==2.21.0",
    "keras==3.15.1",
    "pandas",
    "numpy",
]


class RankerPyfunc(PythonModel):
    """Loads the saved scorer from the model's artifacts; predicts P(engage) per row."""

    def __init__(self, scorer: RankerScorer | None = None) -> None:
        self._scorer = scorer

    def load_context(self, context: Any) -> None:
        self._scorer = RankerScorer.load(Path(context.artifacts[SCORER_ARTIFACT]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        if self._scorer is None:
            raise RuntimeError("the ranker pyfunc was not loaded (load_context not called)")
        return self._scorer.predict(pd.DataFrame(model_input))

    def __getstate__(self) -> dict[str, Any]:
        # the Keras model travels as the scorer artifact, not inside the pickle
        return {"_scorer": None}


def input_example(frame: pd.DataFrame, spec: Preprocessing, rows: int = 5) -> pd.DataFrame:
    """A few rows of only the features, typed as the signature should say: numeric columns as
    float64 (NaN = missing), categoricals as strings."""
    example = frame.reindex(columns=spec.feature_names).head(rows).reset_index(drop=True)
    for column in (c for c in spec.numeric if not c.derived_from):
        example[column.name] = pd.to_numeric(example[column.name], errors="coerce").astype(
            "float64"
        )
    for category in spec.categorical:
        example[category.name] = [
            v if isinstance(v, str) else "" for v in example[category.name].astype(object)
        ]
    return example
