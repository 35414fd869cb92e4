"""The generic MLflow registry helpers on real tracking stores: SQLite in a temp dir, and the
services' PostgreSQL.

The models are tiny real pyfuncs (a weighted sum of two columns), so the promotion rules are
tested without training anything: the candidate is evaluated the same way as the champion, the
first version becomes champion, a tie or a worse figure keeps the champion, and every decision
is recorded on the run and the version.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import require_service, services_env
from mlflow.pyfunc import PythonModel

from appconfig import Settings
from ml import registry
from ml.tracking import sqlalchemy_uri, tracking_uri

HOLDOUT = pd.DataFrame(
    {
        "signal": np.linspace(0.0, 1.0, 200),
        "noise": np.random.default_rng(3).random(200),
    }
)
LABELS = (HOLDOUT["signal"] + 0.3 * HOLDOUT["noise"] > 0.7).astype(int).to_numpy()


class WeightedSum(PythonModel):
    def __init__(self, weight: float) -> None:
        self.weight = weight

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        return np.asarray(
            self.weight * model_input["signal"] + (1 - self.weight) * model_input["noise"]
        )


def auc_of(model_uri: str, uri: str) -> float:
    import mlflow
    from sklearn.metrics import roc_auc_score

    mlflow.set_tracking_uri(uri)  # the version's source (models:/m-...) resolves through it
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(model_uri)
    return float(roc_auc_score(LABELS, model.predict(HOLDOUT)))


def publish(uri: str, name: str, weight: float, artifacts: Path) -> str:
    logged = registry.log_training_run(
        uri,
        f"exp-{name}",
        f"weight {weight}",
        model=registry.PyfuncModel(
            python_model=WeightedSum(weight),
            artifacts={},
            input_example=HOLDOUT.head(3),
            pip_requirements=["mlflow", "pandas", "numpy"],
        ),
        params={"weight": weight, "layers": [1, 2]},
        metrics={"train_auc": 0.5 + weight / 2, "not_a_number": float("nan")},
        training=registry.TrainingLineage("recommender_v1", "v1", "s3://bucket/ts.parquet"),
        json_artifacts={"notes/summary.json": {"weight": weight}},
        artifact_location=artifacts.as_uri(),
    )
    return registry.register(uri, name, logged, tags={"kind": "test"})


def promotion_round(uri: str, tmp_path: Path) -> None:
    name = f"model-{uuid.uuid4().hex[:8]}"
    artifacts = tmp_path / "artifacts"

    def evaluate(model_uri: str) -> float:
        return auc_of(model_uri, uri)

    v1 = publish(uri, name, 0.5, artifacts)
    first = registry.promote_if_better(uri, name, v1, metric_name="auc", evaluate=evaluate)
    assert first.promoted and first.champion is None and "first version" in first.reason

    v2 = publish(uri, name, 0.1, artifacts)  # mostly noise: worse
    worse = registry.promote_if_better(uri, name, v2, metric_name="auc", evaluate=evaluate)
    assert not worse.promoted
    assert worse.champion_version == v1
    assert worse.champion is not None and worse.candidate < worse.champion
    assert registry.champion_version(uri, name) == v1

    v3 = publish(uri, name, 0.95, artifacts)  # mostly signal: better
    better = registry.promote_if_better(uri, name, v3, metric_name="auc", evaluate=evaluate)
    assert better.promoted, better.reason
    assert better.candidate > better.champion  # type: ignore[operator]
    assert registry.champion_version(uri, name) == v3

    client = registry.client(uri)
    version = client.get_model_version(name, v2)
    assert version.tags["promotion.promoted"] == "false"
    run_id = version.run_id
    assert run_id
    run = client.get_run(run_id)
    assert run.data.tags["promotion.champion_version"] == v1
    assert run.data.tags["feature_service"] == "recommender_v1"
    assert run.data.metrics["promotion_candidate_auc"] == pytest.approx(worse.candidate)
    assert run.data.metrics["promotion_champion_auc"] == pytest.approx(worse.champion)
    assert "not_a_number" not in run.data.metrics
    assert json.loads(run.data.params["layers"]) == [1, 2]
    local = client.download_artifacts(run_id, "promotion/decision.json", str(tmp_path))
    decision = json.loads(Path(local).read_text())
    assert decision["promoted"] is False and decision["candidate_version"] == v2


def test_promotion_on_a_sqlite_store(tmp_path: Path) -> None:
    promotion_round(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)


def test_precomputed_scores_ties_and_lower_is_better(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = "ranked"
    v1 = publish(uri, name, 0.5, tmp_path / "a")
    v2 = publish(uri, name, 0.6, tmp_path / "a")
    v3 = publish(uri, name, 0.7, tmp_path / "a")
    losses = {v1: 0.30, v2: 0.30, v3: 0.25}
    registry.promote_if_better(uri, name, v1, metric_name="loss", scores=losses)
    tie = registry.promote_if_better(
        uri, name, v2, metric_name="loss", scores=losses, higher_is_better=False
    )
    assert not tie.promoted  # a tie keeps the champion
    lower = registry.promote_if_better(
        uri, name, v3, metric_name="loss", scores=losses, higher_is_better=False
    )
    assert lower.promoted and registry.champion_version(uri, name) == v3
    again = registry.promote_if_better(uri, name, v3, metric_name="loss", scores=losses)
    assert not again.promoted and again.reason == "already the champion"
    with pytest.raises(ValueError, match="exactly one"):
        registry.promote_if_better(uri, name, v3, metric_name="loss")
    with pytest.raises(ValueError, match="no loss for version"):
        registry.promote_if_better(uri, name, v1, metric_name="loss", scores={v3: 0.1})
    with pytest.raises(LookupError, match="alias"):
        registry.load_alias_artifacts(uri, "never-registered", "champion", "scorer")


def test_tracking_uri_follows_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    embedded = Settings(PLATFORM_DATA_DIR=tmp_path, MLFLOW_TRACKING_URI="")
    assert tracking_uri(embedded) == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert (tmp_path / "mlflow").is_dir()
    services = Settings(
        PLATFORM_DATA_DIR=tmp_path, MLFLOW_TRACKING_URI="postgresql://u:p@db:5432/mlflow"
    )
    assert tracking_uri(services) == "postgresql+psycopg://u:p@db:5432/mlflow"
    assert sqlalchemy_uri("http://mlflow:5000") == "http://mlflow:5000"


@pytest.mark.services
def test_promotion_on_postgresql(tmp_path: Path) -> None:
    from urllib.parse import urlparse

    url = services_env().get(
        "MLFLOW_DB_URL", "postgresql://platform:platform@127.0.0.1:15432/mlflow"
    )
    parsed = urlparse(url)
    import socket

    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), 2):
            reachable = True
    except OSError:
        reachable = False
    require_service("PostgreSQL", reachable, url)
    promotion_round(sqlalchemy_uri(url), tmp_path)


def test_a_version_that_lost_online_is_not_promoted(tmp_path: Path) -> None:
    """Online beats offline: a challenger that wins on the holdout but lost a finished online
    experiment keeps the champion where it is, and the reason is recorded on the version."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = "online-gated"
    v1 = publish(uri, name, 0.5, tmp_path / "a")
    v2 = publish(uri, name, 0.9, tmp_path / "a")
    auc = {v1: 0.70, v2: 0.80}  # v2 wins offline
    registry.promote_if_better(uri, name, v1, metric_name="auc", scores=auc)
    reason = "experiment 'ranker-v2': treatment (online-gated/2) engagement_rate -0.0040"
    assert registry.record_online_loss(uri, f"{name}/{v2}", reason) == f"{name}/{v2}"
    assert registry.record_online_loss(uri, f"{name}/99", reason) is None
    assert registry.record_online_loss(uri, f"{name}@nobody", reason) is None
    decision = registry.promote_if_better(uri, name, v2, metric_name="auc", scores=auc)
    assert not decision.promoted and decision.serving == "champion"
    assert decision.reason == f"lost online: {reason}"
    assert registry.champion_version(uri, name) == v1
    tags = registry.client(uri).get_model_version(name, v2).tags
    assert tags["promotion.reason"] == f"lost online: {reason}"
    # an alias resolves to the version it points at now
    assert registry.record_online_loss(uri, f"{name}@champion", "lost too") == f"{name}/{v1}"


def test_a_challenger_that_beat_the_champion_online_replaces_it(tmp_path: Path) -> None:
    """A finished experiment the challenger won moves `champion` to it when it passed the
    offline gate against the baseline; the old champion is `previous`, every step is tagged, a
    second run of the asset changes nothing, and a winner below the baseline offline is not
    promoted."""
    from ml import online_promotion as online

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = "online-promoted"
    v1, v2, v3 = (publish(uri, name, w, tmp_path / "a") for w in (0.5, 0.6, 0.7))
    auc = {v1: 0.80, v2: 0.805, v3: 0.69}  # v2 ties v1 offline; v3 is below the baseline
    for version in (v1, v2, v3):
        registry.promote_if_better(
            uri, name, version, metric_name="auc", scores=auc, baseline=0.70, baseline_name="lr"
        )
    assert registry.champion_version(uri, name) == v1
    why = "experiment 'ab': control (m@champion) engagement_rate 0.0400 vs treatment 0.0450"
    won = online.apply_outcome(uri, "ab", f"{name}/{v2}", f"{name}@champion", why)
    assert won.action == "promoted" and won.champion == v2 and won.previous == v1, won
    assert registry.champion_version(uri, name) == v2
    assert registry.alias_version(uri, name, online.PREVIOUS) == v1
    client = registry.client(uri)
    old, new = client.get_model_version(name, v1), client.get_model_version(name, v2)
    assert why in old.tags[online.ONLINE_DEMOTED_TAG] and f"v{v2}" in old.tags["online.demoted"]
    assert old.tags[registry.ONLINE_LOSS_TAG] == why
    promoted = new.tags[online.ONLINE_PROMOTED_TAG]
    assert f"beat champion v{v1} online" in promoted and "beats the lr 0.70000" in promoted
    assert (
        new.run_id and client.get_run(new.run_id).data.tags[online.ONLINE_PROMOTED_TAG] == promoted
    )
    assert registry.ONLINE_LOSS_TAG not in new.tags
    # the asset runs again: `@champion` now names the winner, which must not be tagged a loser
    again = online.apply_outcome(uri, "ab", f"{name}/{v2}", f"{name}@champion", why)
    assert again.action == "already_applied" and again.reason.startswith("promoted: ")
    assert registry.champion_version(uri, name) == v2
    assert registry.ONLINE_LOSS_TAG not in client.get_model_version(name, v2).tags
    # a winner online that loses to the baseline offline: the champion serves on
    kept = online.apply_outcome(uri, "ab-2", f"{name}/{v3}", f"{name}@champion", "v3 won")
    assert kept.action == "kept" and "does not beat the lr" in kept.reason
    assert registry.champion_version(uri, name) == v2
    assert "not promoted" in client.get_model_version(name, v2).tags["online.beaten"]
    unknown = online.apply_outcome(uri, "ab-3", f"{name}/99", f"{name}@champion", "?")
    assert unknown.action == "unknown" and registry.champion_version(uri, name) == v2


def test_a_champion_that_lost_to_the_baseline_online_is_not_kept(tmp_path: Path) -> None:
    """The champion lost to the baseline arm: `champion` falls back to the newest version that
    was champion and lost nothing (not one that lost elsewhere), then, when that one loses to
    the baseline too, the alias goes and the baseline serves, flagged on the registered model."""
    from ml import online_promotion as online

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = "online-demoted"
    v1, v2, v3 = (publish(uri, name, w, tmp_path / "a") for w in (0.5, 0.6, 0.7))
    auc = {v1: 0.80, v2: 0.85, v3: 0.90}
    for version in (v1, v2, v3):
        assert registry.promote_if_better(
            uri, name, version, metric_name="auc", scores=auc, baseline=0.70
        ).promoted
    registry.record_online_loss(uri, f"{name}/{v2}", "lost experiment 'older'")
    baseline_arm = f"{name}@{online.BASELINE_ALIAS}"
    why = "experiment 'vs-baseline': treatment (m@champion) lost to control (m@baseline)"
    fell = online.apply_outcome(uri, "vs-baseline", baseline_arm, f"{name}@champion", why)
    assert fell.action == "fell_back" and fell.champion == v1, fell
    assert registry.champion_version(uri, name) == v1  # not v3 (lost), not v2 (lost elsewhere)
    client = registry.client(uri)
    demoted = client.get_model_version(name, v3).tags
    assert "lost to the baseline" in demoted[online.ONLINE_DEMOTED_TAG]
    assert demoted[registry.ONLINE_LOSS_TAG] == why
    flag = client.get_registered_model(name).tags[online.ONLINE_FALLBACK_TAG]
    assert flag.startswith(f"v{v1} ") and why in flag
    # the gate will not bring the loser back either
    again = registry.promote_if_better(uri, name, v3, metric_name="auc", scores=auc)
    assert not again.promoted and again.reason.startswith("lost online: ")
    # the fallback loses to the baseline as well: nothing known better remains
    last = online.apply_outcome(uri, "vs-baseline-2", baseline_arm, f"{name}@champion", "v1 lost")
    assert last.action == "baseline" and last.champion is None
    assert registry.champion_version(uri, name) is None
    assert (
        client.get_registered_model(name)
        .tags[online.ONLINE_FALLBACK_TAG]
        .startswith("baseline serves")
    )
    # a baseline arm that loses changes nothing that serves
    beaten = online.apply_outcome(uri, "vs-baseline-3", f"{name}/{v1}", baseline_arm, "lr lost")
    assert beaten.action == "recorded" and registry.champion_version(uri, name) is None

    # serving routes a `@baseline` arm to the baseline policy, named as such, not to the
    # neural ranker of the version carrying the alias
    from ml.ranking import baseline_version
    from serving.experiment_routing import mlflow_model_lookup

    registry.set_alias(uri, name, online.BASELINE_ALIAS, v2)
    holder_for, known = mlflow_model_lookup(uri)
    assert known(baseline_arm)
    assert holder_for(baseline_arm)._resolve_version() == baseline_version(name, v2)
    assert holder_for(f"{name}/{v1}")._resolve_version() == f"{name}/{v1}"
