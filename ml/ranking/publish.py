"""Log, register and promote a trained ranker in MLflow.

The run carries the params, every model's holdout metrics, the ROC / calibration / activity
plots, the quality table, the drift reference of its training split and the feature service
lineage; the model is a pyfunc around the saved scorer. Promotion compares the candidate and the
champion on THIS report's holdout (both loaded back from the registry and scored the same way),
and the candidate must also beat the logistic regression fitted on the same train split. That
logistic regression travels with every version (artifact `baseline`, alias `baseline` on the
newest), so serving can rank with it, named `baseline/logistic-regression@<name>/<version>`,
when no champion is left.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml import registry
from ml.drift import DriftReference, reference_from
from ml.ranking import BASELINE_ALIAS, MODEL_NAME, baseline_version, plots
from ml.ranking.baselines import LogisticScorer
from ml.ranking.dataset import labels
from ml.ranking.evaluate import safe_auc
from ml.ranking.pyfunc import PIP_REQUIREMENTS, SCORER_ARTIFACT, RankerPyfunc, input_example
from ml.ranking.scorer import RankerScorer
from ml.ranking.train import RankerReport

EXPERIMENT = "feed-ranker"
PROMOTION_METRIC = "holdout_auc"
DRIFT_REFERENCE = "drift/reference.json"
BASELINE_ARTIFACT = "baseline"
BASELINE_NAME = "logistic_regression"


@dataclass
class PublishedRanker:
    run: registry.LoggedRun
    version: str
    decision: registry.PromotionDecision
    plots: dict[str, bytes]  # PNG by file name, for asset metadata


def write_plots(report: RankerReport, directory: Path) -> list[Path]:
    y = labels(report.splits.holdout)
    return [
        plots.roc_plot(y, report.holdout_scores, report.evaluations, directory / "roc.png"),
        plots.calibration_plot(report.evaluations, directory / "calibration.png"),
        plots.activity_plot(report.evaluations, directory / "auc_by_activity.png"),
    ]


def holdout_auc_of(report: RankerReport, tracking_uri: str, name: str = MODEL_NAME):
    """`evaluate(model_uri)` for promotion: that version's scorer, AUC on this holdout."""
    holdout = report.splits.holdout
    y = labels(holdout)

    def evaluate(model_uri: str) -> float:
        version = model_uri.rsplit("/", 1)[-1]
        directory = registry.download_version_artifacts(
            tracking_uri, name, version, SCORER_ARTIFACT
        )
        return safe_auc(y, RankerScorer.load(directory).predict(holdout))

    return evaluate


def publish_ranker(
    report: RankerReport,
    tracking_uri: str,
    lineage: registry.TrainingLineage,
    *,
    name: str = MODEL_NAME,
    artifact_location: str | None = None,
    run_name: str = "feed-ranker",
) -> PublishedRanker:
    with tempfile.TemporaryDirectory(prefix="ranker-") as scratch:
        work = Path(scratch)
        scorer_dir = work / SCORER_ARTIFACT
        report.scorer.save(scorer_dir)
        artifacts = {SCORER_ARTIFACT: str(scorer_dir)}
        if report.logistic is not None:
            baseline_dir = LogisticScorer.of(report.logistic).save(work / BASELINE_ARTIFACT)
            artifacts[BASELINE_ARTIFACT] = str(baseline_dir)
        pngs = write_plots(report, work / "plots")
        reference = reference_from(report.splits.train, report.scorer.feature_names)
        example = input_example(report.splits.holdout, report.scorer.preprocessing)
        logged = registry.log_training_run(
            tracking_uri,
            EXPERIMENT,
            run_name,
            model=registry.PyfuncModel(
                python_model=RankerPyfunc(report.scorer),
                artifacts=artifacts,
                input_example=example,
                pip_requirements=PIP_REQUIREMENTS,
            ),
            params={
                **report.params.as_dict(),
                "train_rows": len(report.splits.train),
                "validation_rows": len(report.splits.validation),
                "holdout_rows": len(report.splits.holdout),
                "holdout_starts_at": str(report.splits.holdout_starts_at),
                "features": len(report.scorer.feature_names),
            },
            metrics={k: v for k, v in report.metrics().items() if np.isfinite(v)},
            training=lineage,
            plots=pngs,
            json_artifacts={
                DRIFT_REFERENCE: reference.to_dict(),
                "evaluation/quality_table.json": report.table(),
                "evaluation/details.json": {k: e.as_dict() for k, e in report.evaluations.items()},
                "evaluation/history.json": report.history,
                "evaluation/ladder.json": report.ladder.as_dict() if report.ladder else {},
            },
            artifact_location=artifact_location,
        )
        images = {png.name: png.read_bytes() for png in pngs}
    version = registry.register(
        tracking_uri, name, logged, tags={"feature_service": lineage.feature_service}
    )
    baseline = report.evaluations.get(BASELINE_NAME)
    if report.logistic is not None:
        registry.set_alias(tracking_uri, name, BASELINE_ALIAS, version)
    decision = registry.promote_if_better(
        tracking_uri,
        name,
        version,
        metric_name=PROMOTION_METRIC,
        evaluate=holdout_auc_of(report, tracking_uri, name),
        baseline=baseline.auc if baseline is not None else None,
        baseline_name=BASELINE_NAME,
    )
    return PublishedRanker(logged, version, decision, images)


def champion_drift_reference(tracking_uri: str, name: str = MODEL_NAME) -> DriftReference | None:
    """The drift reference stored with the current champion's training run, if any."""
    import mlflow

    client = registry.client(tracking_uri)
    version = registry.champion_version(tracking_uri, name)
    if version is None:
        return None
    run_id = client.get_model_version(name, version).run_id
    if not run_id:
        return None
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id,
        artifact_path=DRIFT_REFERENCE,
        dst_path=tempfile.mkdtemp(prefix="drift-"),
        tracking_uri=tracking_uri,
    )
    return DriftReference.from_dict(json.loads(Path(local).read_text()))


def load_baseline(tracking_uri: str, name: str = MODEL_NAME) -> LogisticScorer:
    """The logistic regression of the version aliased `baseline`, its version naming it."""
    version = registry.alias_version(tracking_uri, name, BASELINE_ALIAS)
    if version is None:
        raise LookupError(f"no version of {name!r} has the alias {BASELINE_ALIAS!r}")
    directory = registry.download_version_artifacts(tracking_uri, name, version, BASELINE_ARTIFACT)
    return LogisticScorer.load(directory, baseline_version(name, version))
