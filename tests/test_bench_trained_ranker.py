"""The benches' ranker (`bench.trained_ranker`) is trained, published like the Dagster asset's
and made champion only by the promotion gate.

The closed loop serves it as `@champion` and as an experiment arm; when it was an untrained
network (fitted preprocessing, initial weights), the loop measured random rankers shaping the
data. The check that would have caught it: the version read back from the registry ranks a
fresh sample of the same world far better than chance, where the untrained network of the same
preprocessing does not. Cheap: a temporary SQLite MLflow store and 3,000 synthetic rows whose
label depends on an interaction (x1 * x2) beside ten noise columns, so neither a logistic
regression nor a random network ranks them, and a few seconds of training.
"""

from __future__ import annotations

import uuid

import mlflow
import numpy as np
import pandas as pd
import pytest
from impression_frames import impression_keys

from bench.trained_ranker import RegisteredRanker, register_ranker
from ml import registry
from ml.ranking.evaluate import safe_auc
from ml.ranking.model import RankerParams, build_model
from ml.ranking.pyfunc import SCORER_ARTIFACT
from ml.ranking.scorer import RankerScorer

PARAMS = RankerParams(hidden=(16,), dropout=0.0, l2=1e-5, learning_rate=1e-2, epochs=40)


def world(rows: int, seed: int) -> pd.DataFrame:
    """Impressions of one world: P(engage) = sigmoid(8 x1 x2); `seed` draws a new sample."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(-1, 1, rows), rng.uniform(-1, 1, rows)
    frame = pd.DataFrame(
        {
            **impression_keys(rng, rows),
            "is_engaged": rng.random(rows) < 1 / (1 + np.exp(-8 * x1 * x2)),
            "x1": x1,
            "x2": x2,
            "surface": rng.choice(["home_feed", "explore"], rows),
        }
    )
    for i in range(10):
        frame[f"noise_{i}"] = rng.normal(size=rows)
    return frame


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, RegisteredRanker]:
    work = tmp_path_factory.mktemp("bench-ranker")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    name = f"ranker-{uuid.uuid4().hex[:6]}"
    return uri, name, register_ranker(uri, world(3000, seed=5), work, PARAMS, name=name)


def test_the_registered_version_ranks_a_fresh_sample_far_better_than_chance(
    published: tuple[str, str, RegisteredRanker],
) -> None:
    uri, name, ranker = published
    fresh = world(3000, seed=99)
    y = fresh["is_engaged"].to_numpy()
    scorer = RankerScorer.load(
        registry.download_version_artifacts(uri, name, ranker.version, SCORER_ARTIFACT)
    )
    assert safe_auc(y, scorer.predict(fresh)) > 0.75
    # what the benches registered before: same preprocessing, initial weights
    spec = scorer.preprocessing
    untrained = RankerScorer(spec, build_model(spec, RankerParams(hidden=PARAMS.hidden)))
    assert abs(safe_auc(y, untrained.predict(fresh)) - 0.5) < 0.1
    logistic = ranker.report.evaluations["logistic_regression"].auc
    assert abs(logistic - 0.5) < 0.1  # the interaction is beyond a linear model


def test_champion_comes_from_the_gate_and_the_run_is_the_assets(
    published: tuple[str, str, RegisteredRanker],
) -> None:
    uri, name, ranker = published
    assert ranker.promoted, ranker.published.decision.reason
    assert registry.champion_version(uri, name) == ranker.version
    found = registry.client(uri).get_model_version(name, ranker.version)
    assert found.tags["promotion.promoted"] == "true"
    assert "logistic_regression baseline" in found.tags["promotion.reason"]
    assert found.run_id
    run = registry.client(uri).get_run(found.run_id)
    assert run.data.params["epochs"] == str(PARAMS.epochs)
    assert run.data.params["train_rows"] == str(len(ranker.report.splits.train))
    assert run.data.metrics["holdout_auc"] == pytest.approx(ranker.report.ranker.auc)
    assert run.data.metrics["holdout_auc"] > 0.75
    assert "logistic_regression_auc" in run.data.metrics
    info = mlflow.models.get_model_info(f"models:/{name}/{ranker.version}")
    assert info.signature is not None
    assert {"x1", "x2", "surface"} <= set(info.signature.inputs.input_names())
    assert registry.alias_version(uri, name, "baseline") == ranker.version
