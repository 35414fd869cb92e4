"""Log, register and promote the recommenders in MLflow, and load the champion back for serving.

A recommender's artifact is its saved directory (numpy factors, ids, params; Explore also its
candidate pool), logged as a pyfunc that scores (user, item) pairs, so the registry holds
something `mlflow models serve` can run. Serving does not go through the pyfunc: it downloads
the champion's directory and loads `WhoToFollow` / `Explore` with its live `VisibilityGraph`,
because filtering needs the current graph, which no frozen artifact has.

A copy of each registered version is kept under `<data_dir>/models/<name>/v<version>/` and
`<data_dir>/models/<name>/champion.json` names the champion's, so the API server can start
without reaching the registry.

The promotion gate: a candidate becomes champion only if its holdout NDCG@10 beats the
champion's AND popularity's on the same holdout, each by `registry.PROMOTION_MARGIN`. When no
champion is left, `champion.json` is removed and serving uses its popularity baseline, named
`<name>/baseline-popularity` in `model_version`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from ml import registry
from ml.recommenders import plots
from ml.recommenders.explore import Explore
from ml.recommenders.who_to_follow import WhoToFollow
from visibility import VisibilityGraph

WHO_TO_FOLLOW = "who-to-follow"
EXPLORE = "explore"
ARTIFACT = "recommender"
PROMOTION_METRIC = "holdout_ndcg_at_10"
BASELINE_NAME = "popularity"
PIP_REQUIREMENTS = [f"mlflow=={mlflow.__version__}", "pandas", "numpy", "pyarrow"]

Recommender = WhoToFollow | Explore


class RecommenderPyfunc(PythonModel):
    """Scores (user_id, item_id) rows: candidate accounts for who-to-follow, authors for
    Explore. Unfiltered: callers apply the visibility rules."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._model: Recommender | None = None

    def load_context(self, context: Any) -> None:
        directory = Path(context.artifacts[ARTIFACT])
        self._model = (
            WhoToFollow.load(directory) if self.kind == WHO_TO_FOLLOW else Explore.load(directory)
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        if self._model is None:
            raise RuntimeError("the recommender pyfunc was not loaded (load_context not called)")
        frame = pd.DataFrame(model_input)
        return self._model.score_pairs(
            frame["user_id"].to_numpy(np.int64), frame["item_id"].to_numpy(np.int64)
        )

    def __getstate__(self) -> dict[str, Any]:
        return {"kind": self.kind, "_model": None}


@dataclass
class PublishedRecommender:
    name: str
    run: registry.LoggedRun
    version: str
    decision: registry.PromotionDecision
    local_dir: Path
    plot_png: bytes


def load_recommender(name: str, directory: Path, visibility: VisibilityGraph | None) -> Recommender:
    if name == WHO_TO_FOLLOW:
        return WhoToFollow.load(directory, visibility)
    if name == EXPLORE:
        return Explore.load(directory, visibility)
    raise ValueError(f"unknown recommender {name!r} (expected {WHO_TO_FOLLOW!r} or {EXPLORE!r})")


def publish_recommender(
    model: Recommender,
    *,
    name: str,
    tracking_uri: str,
    models_dir: Path,
    metrics: dict[str, float],
    params: dict[str, Any],
    evaluate: Callable[[Recommender], float],
    lineage: registry.TrainingLineage,
    baseline: float | None,
    metric_name: str = PROMOTION_METRIC,
    artifact_location: str | None = None,
    run_name: str | None = None,
    json_artifacts: dict[str, Any] | None = None,
) -> PublishedRecommender:
    """Log the run (params, metrics, Recall/NDCG-vs-popularity plot, the model), register a
    version and move `champion` only if `evaluate` (the same holdout for both) says it is
    better and it beats `baseline` (popularity's NDCG@10 on that holdout). `evaluate(recommender)
    -> NDCG@10` is applied to the candidate and the champion."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as scratch:
        work = Path(scratch)
        saved = model.save(work / ARTIFACT)
        png = plots.metrics_plot(metrics, work / "plots" / "recall_ndcg_vs_popularity.png", name)
        example = pd.DataFrame(
            {
                "user_id": model.factors.user_ids[:3].astype(np.int64),
                "item_id": model.factors.item_ids[:3].astype(np.int64),
            }
        )
        logged = registry.log_training_run(
            tracking_uri,
            name,
            run_name or name,
            model=registry.PyfuncModel(
                python_model=RecommenderPyfunc(name),
                artifacts={ARTIFACT: str(saved)},
                input_example=example,
                signature=_signature(example),
                pip_requirements=PIP_REQUIREMENTS,
            ),
            params=params,
            metrics=metrics,
            training=lineage,
            plots=[png],
            json_artifacts=json_artifacts,
            artifact_location=artifact_location,
        )
        version = registry.register(tracking_uri, name, logged)
        local = models_dir / name / f"v{version}"
        if local.exists():
            shutil.rmtree(local)
        shutil.copytree(saved, local)
        plot_png = png.read_bytes()

    def figure(model_uri: str) -> float:
        candidate_version = model_uri.rsplit("/", 1)[-1]
        if candidate_version == version:
            return float(evaluate(model))
        directory = registry.download_version_artifacts(
            tracking_uri, name, candidate_version, ARTIFACT
        )
        return float(evaluate(load_recommender(name, directory, None)))

    decision = registry.promote_if_better(
        tracking_uri,
        name,
        version,
        metric_name=metric_name,
        evaluate=figure,
        baseline=baseline,
        baseline_name=BASELINE_NAME,
    )
    pointer = models_dir / name / "champion.json"
    if decision.promoted:
        pointer.write_text(
            json.dumps({"version": version, "path": str(local), "run_id": logged.run_id})
        )
    elif decision.serving == "baseline":
        pointer.unlink(missing_ok=True)
    return PublishedRecommender(name, logged, version, decision, local, plot_png)


def load_champion(
    name: str,
    visibility: VisibilityGraph | None,
    *,
    models_dir: Path | None = None,
    tracking_uri: str | None = None,
) -> tuple[Recommender, str]:
    """The champion recommender and its version: from `<models_dir>/<name>/champion.json` when
    present, else downloaded from the registry (`models:/<name>@champion`)."""
    if models_dir is not None:
        pointer = models_dir / name / "champion.json"
        if pointer.exists():
            meta = json.loads(pointer.read_text())
            model = load_recommender(name, Path(meta["path"]), visibility)
            model.version = str(meta["version"])
            return model, model.version
    if tracking_uri is None:
        raise LookupError(f"no local champion of {name!r} and no tracking URI to ask")
    directory, version = registry.load_alias_artifacts(
        tracking_uri, name, registry.CHAMPION, ARTIFACT
    )
    model = load_recommender(name, directory, visibility)
    model.version = version
    return model, version


def _signature(example: pd.DataFrame) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    del example
    return ModelSignature(
        inputs=Schema([ColSpec("long", "user_id"), ColSpec("long", "item_id")]),
        outputs=Schema([TensorSpec(np.dtype("float64"), (-1,))]),
    )
