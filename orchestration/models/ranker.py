"""The feed ranker in Dagster: one asset that trains, evaluates, registers and promotes it, and a
drift check on the training set against the champion's training data.

`models/feed_ranker` reads the newest `features/training_set` Parquet (its object key is in that
asset's materialization metadata), trains the Keras ranker and the baselines on one time split,
scores the oracle when the object store holds the generator's ground truth, logs everything to
MLflow, registers a `feed-ranker` version and moves `champion` only if it beats the current one
on the same holdout. Headline metrics and plots become asset metadata.
"""

import base64
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq

from ml.drift import THRESHOLD, drifting, population_stability
from ml.ranking import MODEL_NAME
from ml.ranking.explored_rows import DEFAULT as EXPLORED_ROWS_DEFAULT
from objectstore import ObjectStore
from orchestration.features.assets import TRAINING_SET
from orchestration.models.resources import MlflowResource
from orchestration.resources import ObjectStoreResource
from orchestration.skipping import skip_reason, skipped

FEED_RANKER = dg.AssetKey(["models", "feed_ranker"])
GROUND_TRUTH_PREFIX = "ground_truth/"
RECENT_TRAINING_SETS = 20


class FeedRankerConfig(dg.Config):
    epochs: int = 60  # an upper bound (RankerParams): early stopping on validation loss decides
    seed: int = 7
    model_name: str = MODEL_NAME
    feature_service: str = "feed_ranker_v1"
    # how serving's exploration slice enters training: all | only | inverse_share
    # (ml.ranking.explored_rows; RankerParams checks the value)
    explored_rows: str = EXPLORED_ROWS_DEFAULT


class DriftConfig(dg.Config):
    window_hours: float = 24.0  # the "new partition": the newest rows of the training set
    threshold: float = THRESHOLD


class NoTrainingSet(LookupError):
    """No training set to read: never built, or the newest one was skipped (the reason)."""


@dataclass
class TrainingSetFile:
    """The newest training set's object; `frame` reads it (each time: the caller decides how
    long the whole frame lives, the ranker asset drops it once split)."""

    store: ObjectStore
    object_key: str
    uri: str
    feature_service: str
    version: str

    @property
    def frame(self) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.store.get(self.object_key)))


def latest_training_set(
    instance: dg.DagsterInstance, store: ObjectStore, feature_service: str = "feed_ranker_v1"
) -> TrainingSetFile:
    """The Parquet of the newest `features/training_set` materialization built for
    `feature_service` (the asset can also be built for other services)."""
    records = instance.fetch_materializations(TRAINING_SET, limit=RECENT_TRAINING_SETS).records
    metadata: dict[str, object] | None = None
    for record in records:
        materialization = record.asset_materialization
        if materialization is None:
            continue
        values: dict[str, object] = {k: v.value for k, v in materialization.metadata.items()}
        if values.get("feature_service", feature_service) == feature_service:
            metadata = values
            break
    if metadata is None:
        raise NoTrainingSet(
            f"no features/training_set for {feature_service} among the last "
            f"{RECENT_TRAINING_SETS} materializations: run the build_features job first"
        )
    reason = skip_reason(metadata)
    if reason is not None:
        raise NoTrainingSet(f"the newest features/training_set was skipped: {reason}")
    key = str(metadata.get("object_key", ""))
    if not key or not store.exists(key):
        raise dg.Failure(f"the training set object {key!r} is not in the object store")
    return TrainingSetFile(
        store=store,
        object_key=key,
        uri=f"{store.url}/{key}",
        feature_service=feature_service,
        version=str(metadata.get("feature_service_version", "")),
    )


def ground_truth_impressions(
    store: ObjectStore, columns: tuple[str, ...] | None = None
) -> pd.DataFrame | None:
    """Every generated workload's true impression probabilities in the store (None: real data);
    only `columns` (those a file has) when given."""
    keys = [k for k in store.list(GROUND_TRUTH_PREFIX) if k.endswith("/impressions.parquet")]
    if not keys:
        return None
    frames = []
    for key in keys:
        source = pq.ParquetFile(io.BytesIO(store.get(key)))
        names = source.schema_arrow.names
        wanted = names if columns is None else [c for c in columns if c in names]
        frames.append(source.read(columns=wanted).to_pandas())
    return pd.concat(frames, ignore_index=True)


def _image(title: str, png: bytes) -> dg.MetadataValue:
    encoded = base64.b64encode(png).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def _table(rows: list[dict]) -> dg.MetadataValue:
    header = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


MIN_TRAINING_ROWS = 100


def _unlearnable(frame: pd.DataFrame) -> str | None:
    """Why a training set cannot train a ranker (too small, or one label only), else None."""
    if len(frame) < MIN_TRAINING_ROWS:
        return f"the training set has {len(frame)} impressions (< {MIN_TRAINING_ROWS})"
    positives = int(frame["is_engaged"].sum())
    if positives == 0 or positives == len(frame):
        return (
            f"every one of the {len(frame):,} impressions has the same label "
            f"({'engaged' if positives else 'not engaged'}): nothing to rank by"
        )
    return None


@dg.asset(
    key=FEED_RANKER,
    deps=[TRAINING_SET],
    group_name="models",
    kinds={"tensorflow", "mlflow"},
    description="The feed ranker (Keras) trained on the newest training set, evaluated against "
    "recency, popularity and logistic-regression baselines (and the generator's oracle), "
    "registered as `feed-ranker` in MLflow; `champion` moves only when it wins on the same "
    "holdout.",
)
def feed_ranker(
    context: dg.AssetExecutionContext,
    config: FeedRankerConfig,
    mlflow: MlflowResource,
    object_store: ObjectStoreResource,
) -> dg.MaterializeResult:
    # TensorFlow and MLflow load when a run needs them, not when the definitions load
    from ml.ranking.dataset import time_split
    from ml.ranking.ladder import TRUTH_COLUMNS
    from ml.ranking.model import RankerParams
    from ml.ranking.publish import publish_ranker
    from ml.ranking.train import train_on_splits
    from ml.registry import TrainingLineage

    store = object_store.store()
    try:
        training = latest_training_set(context.instance, store, config.feature_service)
    except NoTrainingSet as missing:
        return skipped(context, str(missing))
    frame = training.frame
    gap = _unlearnable(frame)
    if gap is not None:
        return skipped(context, gap, training_set=dg.MetadataValue.path(training.uri))
    rows = len(frame)
    # the whole frame goes once split: training holds the splits, not both (issue 17)
    splits = time_split(frame)
    del frame
    truth = ground_truth_impressions(store, TRUTH_COLUMNS)
    context.log.info(
        f"training on {rows} impressions from {training.object_key}"
        f" ({'with' if truth is not None else 'without'} ground truth)"
    )
    report = train_on_splits(
        splits,
        RankerParams(epochs=config.epochs, seed=config.seed, explored_rows=config.explored_rows),
        truth_impressions=truth,
        progress=False,
    )
    context.log.info(f"holdout quality: {report.table()}")
    for note in report.notes:
        context.log.warning(note)
    published = publish_ranker(
        report,
        mlflow.uri(),
        TrainingLineage(training.feature_service, training.version, training.uri),
        name=config.model_name,
        artifact_location=mlflow.artifact_location(config.model_name),
        run_name=f"feed-ranker {context.run.run_id[:8]}",
    )
    decision = published.decision
    context.log.info(f"promotion: {decision.reason}")
    metadata: dict[str, object] = {
        "model": f"{config.model_name}/{published.version}",
        "promoted": decision.promoted,
        "promotion_reason": decision.reason,
        "serving": decision.serving,
        "champion_version_before": decision.champion_version or "",
        "candidate_holdout_auc": round(decision.candidate, 4),
        "quality": _table(report.table()),
        "mlflow_run_id": published.run.run_id,
        "training_set": dg.MetadataValue.path(training.uri),
        "feature_service": f"{training.feature_service} {training.version}",
        "train_rows": len(report.splits.train),
        "holdout_rows": len(report.splits.holdout),
        "train_examples_per_second": round(report.examples_per_second(), 1),
        "notes": dg.MetadataValue.json(report.notes),
    }
    for name, evaluation in report.evaluations.items():
        metadata[f"auc_{name}"] = round(evaluation.auc, 4)
    if decision.champion is not None:
        metadata["champion_holdout_auc"] = round(decision.champion, 4)
    if decision.baseline is not None:
        metadata["baseline_holdout_auc"] = round(decision.baseline, 4)
    for name, png in published.plots.items():
        metadata[f"plot_{name.removesuffix('.png')}"] = _image(name, png)
    return dg.MaterializeResult(metadata=metadata)  # type: ignore[arg-type]


@dg.asset_check(
    asset=TRAINING_SET,
    name="feature_drift_vs_champion",
    description="Population stability index of each feature between the champion ranker's "
    "training split and the newest rows of the training set; warns past the threshold.",
)
def feature_drift_vs_champion(
    context: dg.AssetCheckExecutionContext,
    config: DriftConfig,
    mlflow: MlflowResource,
    object_store: ObjectStoreResource,
) -> dg.AssetCheckResult:
    from mlflow.exceptions import MlflowException

    from ml.ranking import plots
    from ml.ranking.publish import champion_drift_reference

    try:
        reference = champion_drift_reference(mlflow.uri())
    except MlflowException as unreadable:  # e.g. a champion registered without its reference
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"note": f"the champion's drift reference cannot be read: {unreadable}"},
        )
    if reference is None:
        return dg.AssetCheckResult(
            passed=True, metadata={"note": "no feed-ranker champion yet: nothing to compare"}
        )
    try:
        training = latest_training_set(context.instance, object_store.store())
    except NoTrainingSet as missing:
        return dg.AssetCheckResult(passed=True, metadata={"note": str(missing)})
    frame = training.frame
    times = pd.to_datetime(frame["event_timestamp"], utc=True)
    newest = frame[times > times.max() - pd.Timedelta(hours=config.window_hours)]
    stability = population_stability(reference, newest)
    drifted = drifting(stability, config.threshold)
    worst = dict(sorted(stability.items(), key=lambda kv: -kv[1])[:25])
    with tempfile.TemporaryDirectory(prefix="psi-") as scratch:
        png = plots.bar_plot(
            dict(reversed(list(worst.items()))),
            Path(scratch) / "psi.png",
            f"PSI, newest {config.window_hours:g} h vs champion training data",
            threshold=config.threshold,
        ).read_bytes()
    return dg.AssetCheckResult(
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "drifting_features": dg.MetadataValue.json(drifted),
            "drifting_count": len(drifted),
            "threshold": config.threshold,
            "rows_compared": len(newest),
            "reference_rows": reference.rows,
            "psi_top": _table([{"feature": k, "psi": round(v, 4)} for k, v in worst.items()]),
            "psi_plot": _image("PSI", png),
        },
    )


ASSETS = [feed_ranker]
CHECKS = [feature_drift_vs_champion]
