"""The MLflow side of every model: log a training run, register a version, promote it.

Generic over models (the feed ranker, who-to-follow, explore):

    logged = log_training_run(uri, "feed-ranker", run_name, model=PyfuncModel(...), params=...,
                              metrics=..., plots=[roc_png], training=TrainingLineage(...))
    version = register(uri, "feed-ranker", logged)
    decision = promote_if_better(uri, "feed-ranker", version, evaluate=auc_on_holdout,
                                 metric_name="holdout_auc")

The gate: the alias `champion` moves only when the candidate beats BOTH the current champion
(evaluated by the SAME `evaluate`, the same holdout rows) and its own baseline measured on that
holdout (popularity for the recommenders, logistic regression for the ranker), each by
`PROMOTION_MARGIN` (relative). A champion that no longer beats the baseline on the new holdout
loses the alias, so serving falls back to the baseline (and names it in `model_version`) rather
than a model worse than it. Each decision is recorded on the candidate's run (tags, the figures
as metrics, `promotion/decision.json`) and on the model version (tags), so it can be audited.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel

from ml.gate import PROMOTION_MARGIN, beats
from ml.gate import finite as _finite

CHAMPION = "champion"
# set on a model version whose arm lost a finished online experiment (experiments/results):
# its value says which experiment, the metric and its interval; promotion refuses the version
ONLINE_LOSS_TAG = "online.lost"


@dataclass
class TrainingLineage:
    """What the model was trained on; logged as run tags."""

    feature_service: str
    feature_service_version: str
    training_set_uri: str

    def tags(self) -> dict[str, str]:
        return {
            "feature_service": self.feature_service,
            "feature_service_version": self.feature_service_version,
            "training_set_uri": self.training_set_uri,
        }


@dataclass
class PyfuncModel:
    """A model to log as an MLflow pyfunc: the wrapper, its artifact directories, its schema."""

    python_model: PythonModel
    artifacts: dict[str, str]  # name -> local path, available to the wrapper's load_context
    input_example: Any
    signature: Any = None  # mlflow.models.ModelSignature; inferred from the example when None
    pip_requirements: list[str] = field(default_factory=list)  # explicit: inference costs ~5 s
    code_paths: list[str] | None = None


@dataclass
class LoggedRun:
    run_id: str
    model_uri: str
    experiment_id: str


@dataclass
class PromotionDecision:
    promoted: bool
    candidate: float
    champion: float | None
    reason: str
    metric_name: str = ""
    candidate_version: str = ""
    champion_version: str | None = None
    baseline: float | None = None
    baseline_name: str = ""
    margin: float = 0.0
    serving: str = ""  # what serves after the decision: "candidate", "champion" or "baseline"
    demoted: bool = False  # the previous champion lost the alias (worse than the baseline)


def client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def experiment_id(tracking_uri: str, name: str, artifact_location: str | None = None) -> str:
    mlflow_client = client(tracking_uri)
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = artifact_location or default_artifact_location(tracking_uri, name)
    return str(mlflow_client.create_experiment(name, artifact_location=location))


def default_artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Beside a SQLite store's file; MLflow's own default is `./mlruns` in whatever directory
    the process runs in."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))  # sqlite:////abs or sqlite:///rel
    return (database.resolve().parent / "artifacts" / experiment).as_uri()


def _use(tracking_uri: str) -> None:
    """The fluent API (`mlflow.start_run`, `log_model`) reads global URIs."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


def log_training_run(
    tracking_uri: str,
    experiment: str,
    run_name: str,
    *,
    model: PyfuncModel,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    training: TrainingLineage,
    plots: Iterable[Path] | None = None,
    json_artifacts: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    artifact_location: str | None = None,
) -> LoggedRun:
    """One run: params, metrics (non-finite ones skipped), plots under `plots/`, JSON documents,
    lineage tags, and the model with its signature and explicit requirements."""
    from mlflow.models import infer_signature

    _use(tracking_uri)
    exp_id = experiment_id(tracking_uri, experiment, artifact_location)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run:
        mlflow.set_tags({**training.tags(), **(tags or {})})
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if _finite(v)})
        for path in plots or ():
            mlflow.log_artifact(str(path), artifact_path="plots")
        for name, document in (json_artifacts or {}).items():
            mlflow.log_dict(document, name)
        signature = model.signature
        if signature is None:
            signature = infer_signature(
                model.input_example, model.python_model.predict(None, model.input_example)
            )
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model.python_model,
            artifacts=model.artifacts,
            signature=signature,
            input_example=model.input_example,
            pip_requirements=model.pip_requirements or None,
            code_paths=model.code_paths,
        )
    return LoggedRun(run.info.run_id, info.model_uri, exp_id)


def register(
    tracking_uri: str, name: str, logged: LoggedRun, tags: Mapping[str, str] | None = None
) -> str:
    """A new version of registered model `name` from a logged run's model; returns the version."""
    mlflow_client = client(tracking_uri)
    try:
        mlflow_client.get_registered_model(name)
    except MlflowException:
        mlflow_client.create_registered_model(name)
    version = mlflow_client.create_model_version(
        name, logged.model_uri, run_id=logged.run_id, tags=dict(tags or {})
    )
    return str(version.version)


def champion_version(tracking_uri: str, name: str) -> str | None:
    return alias_version(tracking_uri, name, CHAMPION)


def alias_version(tracking_uri: str, name: str, alias: str) -> str | None:
    try:
        return str(client(tracking_uri).get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(tracking_uri: str, name: str, alias: str, version: str) -> None:
    client(tracking_uri).set_registered_model_alias(name, alias, version)


def version_uri(name: str, version: str) -> str:
    return f"models:/{name}/{version}"


def online_loss(mlflow_client: MlflowClient, name: str, version: str) -> str | None:
    """Why this version lost a finished online experiment, or None (never lost, or no such
    version: the offline checks speak for it)."""
    try:
        tags = mlflow_client.get_model_version(name, version).tags
    except MlflowException:
        return None
    return tags.get(ONLINE_LOSS_TAG) or None


def record_online_loss(tracking_uri: str, model: str, reason: str) -> str | None:
    """Tag the version an arm served (`<name>/<version>`, or `<name>@<alias>` resolved now) as
    a loser online, so `promote_if_better` refuses it with `reason`; returns `name/version`, or
    None when the registry does not know the reference."""
    mlflow_client = client(tracking_uri)
    try:
        if "@" in model:
            name, alias = model.split("@", 1)
            version = str(mlflow_client.get_model_version_by_alias(name, alias).version)
        else:
            name, _, version = model.rpartition("/")
            mlflow_client.get_model_version(name, version)
    except MlflowException:
        return None
    mlflow_client.set_model_version_tag(name, version, ONLINE_LOSS_TAG, reason)
    return f"{name}/{version}"


def promote_if_better(
    tracking_uri: str,
    name: str,
    candidate_version: str,
    *,
    metric_name: str,
    evaluate: Callable[[str], float] | None = None,
    scores: Mapping[str, float] | None = None,
    baseline: float | None = None,
    baseline_name: str = "baseline",
    margin: float = PROMOTION_MARGIN,
    higher_is_better: bool = True,
) -> PromotionDecision:
    """Move `champion` to the candidate only if it beats the champion AND `baseline` (the
    baseline's figure on the same holdout) by `margin`.

    Give either `evaluate(model_uri) -> figure` (called for both versions, so both are measured
    the same way) or `scores` precomputed by version. A tie keeps the champion. When the
    candidate fails and the champion does not beat the baseline on this holdout either, the
    champion alias is removed: the baseline serves. A version tagged as the loser of a finished
    online experiment (`ONLINE_LOSS_TAG`) is never promoted: winning offline does not outweigh
    losing to real users."""
    if (evaluate is None) == (scores is None):
        raise ValueError("give exactly one of evaluate= or scores=")

    def figure(version: str) -> float:
        if scores is not None:
            if version not in scores:
                raise ValueError(f"no {metric_name} for version {version} of {name} in scores")
            return float(scores[version])
        assert evaluate is not None
        return float(evaluate(version_uri(name, version)))

    def better(value: float, other: float) -> bool:
        return beats(value, other, margin, higher_is_better)

    mlflow_client = client(tracking_uri)
    current = champion_version(tracking_uri, name)
    candidate = figure(candidate_version)
    direction = "higher" if higher_is_better else "lower"
    margin_text = f"by {margin:.0%} ({direction} is better)"
    incumbent: float | None = None
    reasons: list[str] = []
    if not _finite(candidate):
        reasons.append(f"candidate {metric_name} is not a number")
    if baseline is not None and _finite(candidate) and not better(candidate, baseline):
        reasons.append(
            f"candidate {metric_name} {candidate:.5f} does not beat the {baseline_name} "
            f"baseline {baseline:.5f} {margin_text}"
        )
    lost_online = online_loss(mlflow_client, name, candidate_version)
    if lost_online is not None:
        reasons.append(f"lost online: {lost_online}")
    if current == candidate_version:
        reasons.append("already the champion")
        incumbent = candidate
    elif current is not None:
        incumbent = figure(current)
        if _finite(candidate) and not better(candidate, incumbent):
            reasons.append(
                f"candidate {metric_name} {candidate:.5f} does not beat champion v{current} "
                f"{incumbent:.5f} {margin_text}"
            )
    promoted = not reasons
    if promoted:
        against = [f"champion v{current} {incumbent:.5f}" if current else "no champion yet"]
        if baseline is not None:
            against.append(f"the {baseline_name} baseline {baseline:.5f}")
        reason = f"candidate {metric_name} {candidate:.5f} beats " + " and ".join(against)
        if current is None:
            reason = "first version: no champion yet; " + reason
        if baseline is not None:
            reason += f" {margin_text}"
    else:
        reason = "; ".join(reasons)
    decision = PromotionDecision(
        promoted,
        candidate,
        incumbent,
        reason,
        metric_name,
        candidate_version,
        current,
        baseline,
        baseline_name if baseline is not None else "",
        margin,
    )
    if promoted:
        mlflow_client.set_registered_model_alias(name, CHAMPION, candidate_version)
        decision.serving = "candidate"
    elif current is None:
        decision.serving = "baseline"
    elif (
        baseline is not None
        and incumbent is not None
        and current != candidate_version
        and not better(incumbent, baseline)
    ):
        # the champion is no better than the baseline on today's holdout: stop serving it
        mlflow_client.delete_registered_model_alias(name, CHAMPION)
        mlflow_client.set_model_version_tag(
            name,
            current,
            "promotion.demoted",
            f"{metric_name} {incumbent:.5f} does not beat the {baseline_name} baseline "
            f"{baseline:.5f} {margin_text} on the holdout of v{candidate_version}",
        )
        decision.demoted = True
        decision.serving = "baseline"
        decision.reason += f"; champion v{current} demoted, the {baseline_name} baseline serves"
    else:
        decision.serving = "champion"
    _record(mlflow_client, name, decision)
    return decision


def _record(mlflow_client: MlflowClient, name: str, decision: PromotionDecision) -> None:
    """The decision and both figures, on the candidate's run and model version."""
    version = mlflow_client.get_model_version(name, decision.candidate_version)
    tags = {
        "promotion.promoted": str(decision.promoted).lower(),
        "promotion.reason": decision.reason,
        "promotion.metric": decision.metric_name,
        "promotion.champion_version": decision.champion_version or "",
        "promotion.baseline": decision.baseline_name,
        "promotion.margin": str(decision.margin),
        "promotion.serving": decision.serving,
    }
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(name, decision.candidate_version, key, value)
    if not version.run_id:
        return
    for key, value in tags.items():
        mlflow_client.set_tag(version.run_id, key, value)
    mlflow_client.log_metric(
        version.run_id, f"promotion_candidate_{decision.metric_name}", decision.candidate
    )
    if decision.champion is not None:
        mlflow_client.log_metric(
            version.run_id, f"promotion_champion_{decision.metric_name}", decision.champion
        )
    if decision.baseline is not None and _finite(decision.baseline):
        mlflow_client.log_metric(
            version.run_id, f"promotion_baseline_{decision.metric_name}", decision.baseline
        )
    mlflow_client.log_dict(
        version.run_id, {"model": name, **asdict(decision)}, "promotion/decision.json"
    )


def load_alias_artifacts(
    tracking_uri: str, name: str, alias: str, artifact: str
) -> tuple[Path, str]:
    """Download the pyfunc artifact directory `artifact` of `models:/<name>@<alias>`; returns
    (local directory, version)."""
    mlflow_client = client(tracking_uri)
    try:
        version = mlflow_client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        raise LookupError(f"no version of {name!r} has the alias {alias!r}") from error
    return download_version_artifacts(tracking_uri, name, str(version.version), artifact), str(
        version.version
    )


def download_version_artifacts(tracking_uri: str, name: str, version: str, artifact: str) -> Path:
    """The pyfunc artifact directory `artifact` of one model version, downloaded locally."""
    # `models:/` URIs resolve through the global registry URI whatever is passed below; in a
    # fresh process (the API) that default is ./mlflow.db, where the model is not
    _use(tracking_uri)
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=version_uri(name, version),
            dst_path=tempfile.mkdtemp(prefix=f"{name}-{version}-"),
            tracking_uri=tracking_uri,
            registry_uri=tracking_uri,
        )
    )
    directory = local / "artifacts" / artifact
    if not directory.exists():
        raise FileNotFoundError(
            f"model {name} version {version} has no artifact {artifact!r} "
            f"(found: {sorted(p.name for p in (local / 'artifacts').glob('*'))})"
        )
    return directory


def _param(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list | tuple) else value
