"""The promotion gate for all three models: a candidate becomes `champion` only if it beats the
champion AND its own baseline (logistic regression for the ranker, popularity for who-to-follow
and Explore) on the same holdout by `registry.PROMOTION_MARGIN`; otherwise it is registered with
the reason and serving uses the baseline, named in `model_version`.

Cheap: a temporary SQLite MLflow store, a ranker trained for a few epochs on 3,000 synthetic
rows whose label depends on an interaction (x1 * x2) a logistic regression cannot express, and
recommenders built from random factors with their holdout figures given by the test (the gate
is what is under test here; the recommenders' own quality is tested in test_recommend*.py).
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from impression_frames import impression_keys

from appconfig import Settings
from ml import registry
from ml.ranking import baseline_version
from ml.ranking.model import RankerParams, build_model
from ml.ranking.publish import publish_ranker
from ml.ranking.scorer import RankerScorer
from ml.ranking.train import RankerReport, train_ranker
from ml.recommenders.evaluate import Popularity
from ml.recommenders.explore import Explore, ExploreParams
from ml.recommenders.factors import Factors
from ml.recommenders.publish import EXPLORE, WHO_TO_FOLLOW, publish_recommender
from ml.recommenders.who_to_follow import WhoToFollow, WhoToFollowParams
from serving.model_loading import mlflow_holder
from serving.recommenders import EXPLORE_BASELINE, WHO_TO_FOLLOW_BASELINE, Recommenders

LINEAGE = registry.TrainingLineage("test", "v1", "file:///nowhere.parquet")


# --- the rule itself -----------------------------------------------------------------------------


def test_beats_needs_the_margin() -> None:
    assert registry.beats(0.102, 0.100, 0.01)
    assert not registry.beats(0.1009, 0.100, 0.01)  # better, but within the margin
    assert registry.beats(0.24, 0.25, 0.01, higher_is_better=False)
    assert not registry.beats(float("nan"), 0.1, 0.01)


# --- the ranker: logistic regression is the baseline ---------------------------------------------


def interaction_frame(rows: int = 3000, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(-1, 1, rows), rng.uniform(-1, 1, rows)
    engaged = rng.random(rows) < 1 / (1 + np.exp(-6 * x1 * x2))
    return pd.DataFrame(
        {
            **impression_keys(rng, rows),
            "is_engaged": engaged,
            "x1": x1,
            "x2": x2,
            "surface": rng.choice(["home_feed", "explore"], rows),
        }
    )


@pytest.fixture(scope="module")
def ranker_report() -> RankerReport:
    params = RankerParams(hidden=(16,), dropout=0.0, l2=1e-5, learning_rate=1e-2, epochs=40)
    return train_ranker(interaction_frame(), params, progress=False)


def test_ranker_worse_than_logistic_regression_is_not_served(
    ranker_report: RankerReport, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = f"ranker-{uuid.uuid4().hex[:6]}"
    logistic = ranker_report.evaluations["logistic_regression"].auc
    assert ranker_report.ranker.auc > logistic + 0.05, "the data should favour the network"

    # an untrained network: the first version, but no better than the logistic regression
    spec = ranker_report.scorer.preprocessing
    untrained = dataclasses.replace(
        ranker_report, scorer=RankerScorer(spec, build_model(spec, RankerParams(seed=3)))
    )
    weak = publish_ranker(untrained, uri, LINEAGE, name=name)
    assert not weak.decision.promoted, weak.decision.reason
    assert "logistic_regression baseline" in weak.decision.reason
    assert weak.decision.serving == "baseline" and weak.decision.baseline == logistic
    assert registry.champion_version(uri, name) is None
    tags = registry.client(uri).get_model_version(name, weak.version).tags
    assert tags["promotion.promoted"] == "false" and "baseline" in tags["promotion.reason"]

    holder = mlflow_holder(uri, name, registry.CHAMPION)
    assert holder.refresh(), holder.status.error
    assert holder.version == baseline_version(name, weak.version)
    rows = ranker_report.splits.holdout
    assert ranker_report.logistic is not None
    np.testing.assert_allclose(
        holder.scorer.predict(rows), ranker_report.logistic.predict(rows), rtol=1e-6
    )
    explained = holder.scorer.explain(rows.head(5))
    assert list(explained.columns) == holder.scorer.feature_names

    # the trained network beats the logistic regression: it becomes champion and serves
    good = publish_ranker(ranker_report, uri, LINEAGE, name=name)
    assert good.decision.promoted, good.decision.reason
    assert registry.champion_version(uri, name) == good.version
    assert holder.refresh() and holder.version == f"{name}/{good.version}"


# --- the recommenders: popularity is the baseline ------------------------------------------------


def who_to_follow(seed: int) -> WhoToFollow:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, 21, dtype=np.int64)
    factors = Factors(ids, rng.normal(size=(20, 4)), ids, rng.normal(size=(20, 4)))
    return WhoToFollow(factors, Popularity(rng.choice(ids, 100)), WhoToFollowParams())


def explore(seed: int) -> Explore:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, 21, dtype=np.int64)
    factors = Factors(ids, rng.normal(size=(20, 4)), ids, rng.normal(size=(20, 4)))
    pool = pd.DataFrame(
        {
            "post_id": np.arange(100, 130, dtype=np.int64),
            "author_id": rng.choice(ids, 30),
            "created_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "popularity": rng.integers(0, 9, 30).astype(float),
        }
    )
    engaged = pd.DataFrame({"post_id": [100, 101], "user_id": [1, 2]})
    return Explore(factors, pool, engaged, ExploreParams())


@pytest.mark.parametrize(
    ("name", "build", "served_baseline"),
    [(WHO_TO_FOLLOW, who_to_follow, WHO_TO_FOLLOW_BASELINE), (EXPLORE, explore, EXPLORE_BASELINE)],
)
def test_recommender_gate_against_popularity(
    name: str, build: Any, served_baseline: str, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    models_dir = tmp_path / "models"
    settings = Settings(PLATFORM_DATA_DIR=tmp_path, MLFLOW_TRACKING_URI=uri)
    # each model's holdout NDCG@10, by its seed (the factors differ, so the seed is recoverable)
    ndcg = {1: 0.10, 2: 0.30, 3: 0.35, 4: 0.28}
    models = {seed: build(seed) for seed in ndcg}

    def evaluate(model: Any) -> float:
        seed = next(
            s
            for s, m in models.items()
            if np.array_equal(m.factors.user_factors, model.factors.user_factors)
        )
        return ndcg[seed]

    def publish(seed: int, baseline: float) -> registry.PromotionDecision:
        return publish_recommender(
            models[seed],
            name=name,
            tracking_uri=uri,
            models_dir=models_dir,
            metrics={"holdout_ndcg_at_10": ndcg[seed]},
            params={"seed": seed},
            evaluate=evaluate,
            lineage=LINEAGE,
            baseline=baseline,
        ).decision

    # worse than popularity (0.20): registered, not champion; serving keeps the baseline
    first = publish(1, baseline=0.20)
    assert not first.promoted and first.serving == "baseline"
    assert "does not beat the popularity baseline" in first.reason
    assert registry.champion_version(uri, name) is None
    assert not (models_dir / name / "champion.json").exists()
    assert getattr(Recommenders.load(settings), f"{name.replace('-', '_')}_version") == (
        served_baseline
    )

    # better than popularity: champion, and serving names its version
    second = publish(2, baseline=0.20)
    assert second.promoted, second.reason
    # Explore's model_version names its kind too (this hand-built one has no learned weights)
    served = f"{name}/collaborative/2" if name == EXPLORE else f"{name}/2"
    assert getattr(Recommenders.load(settings), f"{name.replace('-', '_')}_version") == served

    # beats the champion (0.30 -> 0.35) but not popularity on the new holdout (0.40): refused,
    # and the champion (0.30, also below popularity) is demoted: the baseline serves
    third = publish(3, baseline=0.40)
    assert not third.promoted and third.demoted and third.serving == "baseline", third.reason
    assert registry.champion_version(uri, name) is None
    assert not (models_dir / name / "champion.json").exists()
    tags = registry.client(uri).get_model_version(name, "2").tags
    assert "popularity baseline" in tags["promotion.demoted"]
    assert getattr(Recommenders.load(settings), f"{name.replace('-', '_')}_version") == (
        served_baseline
    )

    # beats popularity, no champion left: champion again
    fourth = publish(4, baseline=0.20)
    assert fourth.promoted and registry.champion_version(uri, name) == "4"
