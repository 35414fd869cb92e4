"""The feed ranker on the built platform's real training set (Feast over dbt marts over a
generated workload whose hidden truth is known).

The ranker and its baselines are trained once for the module on the same time split; the
quality assertions compare their holdout figures with each other and with the ORACLE (the
generator's true probabilities of the same holdout impressions).

Margins, measured on this platform (300 users x 4 days, seed 11), with the issue-13 truth
(structural viewer-author affinity, interest, location, velocity, earlier engagements with the
author, interest x visible quality, recency per media type):
- recency AUC 0.637, popularity 0.535, logistic regression on the ranker's inputs 0.762, the
  ranker 0.773, the oracle 0.838 and a logistic regression on the oracle's own factors 0.837.
- The truth is logistic in its recorded factors (the two interactions as products), so a
  logistic regression on the same inputs is the model to match: on this seed the network is
  0.011 above it, at 1,000 users x 3 days it ties it (docs/benchmarks.md says why: the inputs
  show little of the interactions). LOGISTIC_TOLERANCE says the network is no worse than it
  beyond the noise of a few hundred positives.
- The affinity is now mostly structural (follows, followed back, shared signup topics, home city,
  friends of friends) with a latent residual (sd 0.35); the latent part, each content preference
  and the latent part of post quality stay hidden, so the ranker sits about 0.065 below the
  oracle. ORACLE_MARGIN is that gap plus room for seed noise.
- The truth regression must sit at the oracle (TRUTH_MARGIN): if it does not, a term of the
  formula is missing from the recorded factors.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from platform_support import BuiltPlatform

from appconfig import get_settings
from ml import registry
from ml.ranking import MODEL_NAME
from ml.ranking.dataset import labels, time_split
from ml.ranking.model import RankerParams, build_model
from ml.ranking.preprocessing import Preprocessing
from ml.ranking.publish import champion_drift_reference, publish_ranker
from ml.ranking.pyfunc import input_example
from ml.ranking.scorer import RankerScorer, load_champion
from ml.ranking.train import RankerReport, train_ranker

BASELINE_MARGIN = 0.03  # over recency and popularity
LOGISTIC_TOLERANCE = 0.01  # the ranker may trail the logistic regression by noise only
TRUTH_MARGIN = 0.01  # the regression on the recorded true factors vs the oracle
ORACLE_MARGIN = 0.10


@pytest.fixture(scope="module")
def report(built_platform: BuiltPlatform) -> RankerReport:
    return train_ranker(
        built_platform.training_set.frame,
        truth_impressions=built_platform.workload.ground_truth.impressions,
        progress=False,
    )


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


# --- quality ---------------------------------------------------------------------------------


def test_ranker_beats_baselines_and_is_near_the_oracle(report: RankerReport) -> None:
    ranker, oracle = report.ranker, report.oracle
    assert oracle is not None
    baselines = report.baselines
    assert set(baselines) == {"recency", "popularity", "logistic_regression"}
    print(report.table())
    print(report.ladder.as_dict() if report.ladder else None)
    assert ranker.auc > baselines["recency"].auc + BASELINE_MARGIN
    assert ranker.auc > baselines["popularity"].auc + BASELINE_MARGIN
    assert ranker.auc > baselines["logistic_regression"].auc - LOGISTIC_TOLERANCE
    assert ranker.log_loss < min(b.log_loss for b in baselines.values()) + 0.002
    assert oracle.auc > ranker.auc  # the truth bounds what a model can learn
    assert ranker.auc >= oracle.auc - ORACLE_MARGIN
    assert ranker.ndcg_at_20 > baselines["popularity"].ndcg_at_20
    ladder = report.ladder
    assert ladder is not None
    assert ladder.rungs["truth_logistic_regression"] >= oracle.auc - TRUTH_MARGIN
    assert ladder.drop_true_factor["affinity"] < ladder.rungs["truth_logistic_regression"] - 0.02
    assert set(ladder.drop_feature_group) >= {
        "post_attributes",
        "viewer_author_followed_back",
        "viewer_author_similarity",
        "viewer_post_location",
        "viewer_author_common_follows",
        "viewer_post_topics",
    }


def test_evaluation_covers_the_holdout_and_is_calibrated(report: RankerReport) -> None:
    holdout = report.splits.holdout
    y = labels(holdout)
    ranker = report.ranker
    assert ranker.rows == len(holdout) and ranker.positives == int(y.sum())
    assert sum(float(b["rows"]) for b in ranker.by_activity) == len(holdout)
    users_with_positive = holdout.loc[y == 1, "user_id"].nunique()
    assert ranker.users_for_ndcg == users_with_positive
    scores = report.holdout_scores["ranker"]
    assert ((scores >= 0) & (scores <= 1)).all()
    # calibrated on average: predicted and observed engagement rates agree within 2 points
    assert abs(scores.mean() - y.mean()) < 0.02
    predicted, observed = ranker.calibration["predicted"], ranker.calibration["observed"]
    assert len(predicted) == len(observed) >= 5
    assert predicted == sorted(predicted)


def test_time_split_never_trains_on_the_future(built_platform: BuiltPlatform) -> None:
    frame = built_platform.training_set.frame
    splits = time_split(frame)
    assert len(splits.train) + len(splits.validation) + len(splits.holdout) == len(frame)
    assert splits.train["event_timestamp"].max() < splits.validation["event_timestamp"].min()
    assert splits.validation["event_timestamp"].max() < splits.holdout["event_timestamp"].min()
    assert 0.6 < len(splits.train) / len(frame) < 0.8
    with pytest.raises(ValueError, match="must be shares"):
        time_split(frame, validation=0.5, holdout=0.5)
    with pytest.raises(ValueError, match="too small"):
        time_split(frame.head(5))


# --- preprocessing and the serving contract ----------------------------------------------------


def test_preprocessing_round_trips_as_json_and_treats_absent_like_null(
    report: RankerReport,
) -> None:
    spec = report.scorer.preprocessing
    rows = report.splits.holdout.head(50)
    again = Preprocessing.from_json(spec.to_json())
    for name, values in spec.transform(rows).items():
        np.testing.assert_array_equal(values, again.transform(rows)[name])
    # statistics come from the train split only
    numeric = next(c for c in spec.numeric if c.name == "position")
    train_positions = np.log1p(report.splits.train["position"].astype(float))
    assert numeric.mean == pytest.approx(train_positions.mean())
    # an absent column is missing for every row, exactly like a column of nulls
    column = "viewer_author_affinity__interactions"
    absent = spec.transform(rows.drop(columns=[column]))
    nulls = spec.transform(rows.assign(**{column: np.nan}))
    np.testing.assert_array_equal(absent["numeric"], nulls["numeric"])
    # an unseen category is "unknown" (index 0 of its range), not an error
    offsets = spec.category_offsets()
    j = [c.name for c in spec.categorical].index("surface")
    unseen = spec.transform(rows.assign(surface="never-seen"))
    assert (unseen["categorical"][:, j] == offsets[j]).all()


def test_values_the_training_split_never_held_cannot_move_the_inputs() -> None:
    """A column empty in training (a feature view that had not filled yet) and one constant in
    training must not scale a later value by the fallback std of 1: a loop's retrained holdout
    once scored the old champion at AUC 0.508 (dwell 178,000 ms -> z = 178,000, every score
    0.995). Values beyond the training range are clipped to it."""
    train = pd.DataFrame(
        {
            "empty": [np.nan] * 6,
            "constant": [0.0] * 6,
            "count": [0.0, 1.0, 2.0, 4.0, 8.0, 10.0],
        }
    )
    spec = Preprocessing.fit(train, list(train.columns), derive=False)
    by_name = {c.name: c for c in spec.numeric}
    assert not by_name["empty"].observed and by_name["count"].observed
    seen = pd.DataFrame({"empty": [np.nan], "constant": [0.0], "count": [10.0]})
    unseen = pd.DataFrame({"empty": [178_000.0], "constant": [500.0], "count": [1e6]})
    np.testing.assert_array_equal(
        spec.transform(unseen)["numeric"], spec.transform(seen)["numeric"]
    )
    inside = pd.DataFrame({"empty": [np.nan], "constant": [0.0], "count": [3.0]})
    assert spec.transform(inside)["numeric"][0, 2] != spec.transform(seen)["numeric"][0, 2]
    # a scorer saved before the bounds existed loads unbounded and reading every column, as
    # it was trained
    data = json.loads(spec.to_json())
    for column in data["numeric"]:
        del column["low"], column["high"], column["observed"]
    legacy = Preprocessing.from_json(json.dumps(data))
    assert legacy.transform(unseen)["numeric"][0, 2] > spec.transform(unseen)["numeric"][0, 2]
    assert legacy.transform(unseen)["numeric"][0, 0] == 178_000.0


def test_scorer_save_load_gives_identical_predictions(report: RankerReport, tmp_path: Path) -> None:
    scorer = report.scorer
    rows = report.splits.holdout.head(1000)
    scorer.save(tmp_path / "scorer")
    loaded = RankerScorer.load(tmp_path / "scorer")
    np.testing.assert_array_equal(loaded.predict(rows), scorer.predict(rows))
    assert loaded.feature_names == scorer.feature_names
    assert {"position", "surface", "post_request_features__post_age_hours"} <= set(
        scorer.feature_names
    )
    assert not any(n.startswith("derived__") for n in scorer.feature_names)
    assert loaded.version == "unregistered"
    # only the features are needed, in any column order
    features_only = rows[list(reversed(scorer.feature_names))]
    np.testing.assert_allclose(scorer.predict(features_only), scorer.predict(rows), rtol=1e-6)
    assert scorer.predict(rows.head(0)).shape == (0,)
    with pytest.raises(FileNotFoundError, match="not a saved ranker"):
        RankerScorer.load(tmp_path)


def test_explain_attributes_a_feature_change_exactly(report: RankerReport) -> None:
    scorer = report.scorer
    rows = report.splits.holdout.head(40).reset_index(drop=True)
    feature = "viewer_author_request_features__follows_author"
    pair = pd.concat([rows.head(1), rows.head(1)], ignore_index=True)
    pair[feature] = [0, 1]
    contributions = scorer.explain(pair)
    assert list(contributions.columns) == scorer.feature_names
    logits = np.log(scorer.predict(pair) / (1 - scorer.predict(pair)))
    # two rows differing in one feature: occluding it makes them equal, so the difference of
    # their contributions is the whole difference of their logits
    assert contributions[feature].diff().iloc[1] == pytest.approx(np.diff(logits)[0], abs=1e-4)
    whole = scorer.explain(rows)
    assert whole.shape == (len(rows), len(scorer.feature_names))
    top = whole.abs().mean().sort_values(ascending=False).index[:15]
    assert feature in top  # following the author is one of the strongest signals in the truth


# --- MLflow: register, promote, serve ----------------------------------------------------------


def untrained(report: RankerReport, seed: int) -> RankerReport:
    """A deliberately worse candidate: a network that never saw a label, on the same holdout."""
    spec = report.scorer.preprocessing
    scorer = RankerScorer(spec, build_model(spec, RankerParams(seed=seed)))
    return dataclasses.replace(report, scorer=scorer)


def with_baseline_below(report: RankerReport, gap: float) -> RankerReport:
    """The report with its logistic regression's holdout AUC set `gap` below the ranker's: on
    this small platform the two tie (test_ranker_beats_baselines_and_is_near_the_oracle), so the
    champion mechanics are tested against a baseline the ranker clearly beats (a ranker that does
    not: tests/test_promotion_gate.py)."""
    logistic = report.evaluations["logistic_regression"]
    weaker = dataclasses.replace(logistic, auc=report.ranker.auc - gap)
    return dataclasses.replace(
        report, evaluations={**report.evaluations, "logistic_regression": weaker}
    )


def test_champion_moves_only_for_a_better_ranker(
    report: RankerReport, tracking_uri: str, tmp_path: Path
) -> None:
    report = with_baseline_below(report, 0.05)
    name = f"feed-ranker-{uuid.uuid4().hex[:6]}"
    lineage = registry.TrainingLineage("feed_ranker_v1", "v1", "file:///training_set.parquet")
    where = (tmp_path / "artifacts").as_uri()

    weak = publish_ranker(
        untrained(report, 1), tracking_uri, lineage, name=name, artifact_location=where
    )
    # the first version, but worse than the logistic regression: the gate refuses it
    assert not weak.decision.promoted and weak.decision.serving == "baseline"
    assert registry.champion_version(tracking_uri, name) is None

    good = publish_ranker(report, tracking_uri, lineage, name=name, artifact_location=where)
    assert good.decision.promoted, good.decision.reason
    assert good.decision.champion_version is None
    assert good.decision.candidate == pytest.approx(report.ranker.auc)
    assert good.decision.baseline == pytest.approx(report.evaluations["logistic_regression"].auc)

    worse = publish_ranker(
        untrained(report, 2), tracking_uri, lineage, name=name, artifact_location=where
    )
    assert not worse.decision.promoted, worse.decision.reason
    assert worse.decision.champion == pytest.approx(report.ranker.auc)
    assert registry.champion_version(tracking_uri, name) == good.version

    champion = load_champion(tracking_uri, name)
    assert champion.version == f"{name}/{good.version}"
    rows = report.splits.holdout.head(500)
    np.testing.assert_array_equal(champion.predict(rows), report.scorer.predict(rows))

    client = registry.client(tracking_uri)
    run = client.get_run(worse.run.run_id)
    assert run.data.tags["promotion.promoted"] == "false"
    assert run.data.tags["feature_service"] == "feed_ranker_v1"
    assert run.data.tags["training_set_uri"] == lineage.training_set_uri
    assert run.data.metrics["promotion_champion_holdout_auc"] == pytest.approx(report.ranker.auc)
    artifacts = {a.path for a in client.list_artifacts(good.run.run_id, "plots")}
    assert {"plots/roc.png", "plots/calibration.png", "plots/auc_by_activity.png"} <= artifacts
    assert {a.path for a in client.list_artifacts(worse.run.run_id, "promotion")} == {
        "promotion/decision.json"
    }
    reference = champion_drift_reference(tracking_uri, name)
    assert reference is not None and reference.rows == len(report.splits.train)
    assert (tmp_path / "artifacts").is_dir()


def test_registered_pyfunc_predicts_like_the_scorer(report: RankerReport, tmp_path: Path) -> None:
    """What `mlflow models serve` loads: the same predictions, a signature naming the features."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = f"feed-ranker-{uuid.uuid4().hex[:6]}"
    lineage = registry.TrainingLineage("feed_ranker_v1", "v1", "file:///training_set.parquet")
    published = publish_ranker(report, uri, lineage, name=name)  # default artifact location
    assert published.version == "1"
    assert (tmp_path / "artifacts").is_dir()  # beside the SQLite store, not in the cwd
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{name}/{published.version}")
    assert model.metadata.get_input_schema().input_names() == report.scorer.feature_names
    rows = report.splits.holdout.head(20)
    example = input_example(rows, report.scorer.preprocessing, rows=len(rows))
    np.testing.assert_allclose(
        np.asarray(model.predict(example)), report.scorer.predict(rows), rtol=1e-5
    )


# --- Dagster -----------------------------------------------------------------------------------


def test_train_models_job_materializes_on_the_built_platform(
    built_platform: BuiltPlatform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from orchestration.features.assets import training_set
    from orchestration.features.resources import FeatureStoreResource
    from orchestration.models import ranker
    from orchestration.models.resources import MlflowResource
    from orchestration.resources import ObjectStoreResource

    settings = built_platform.settings
    for name, value in {
        "PLATFORM_DATA_DIR": str(settings.data_dir),
        "CLICKHOUSE_URL": settings.clickhouse_url,
        "OBJECT_STORE_URL": settings.object_store_url,
        "PLATFORM_PROFILE": "embedded",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("REDIS_URL", "METADATA_DB_URL", "FEAST_REGISTRY_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    resources: dict[str, Any] = {
        "feature_store": FeatureStoreResource(),
        "mlflow": MlflowResource(tracking_uri=tracking),
        "object_store": ObjectStoreResource(url=settings.object_store_url),
    }
    instance = dg.DagsterInstance.ephemeral()
    try:
        first = dg.materialize(
            [training_set, *ranker.ASSETS, *ranker.CHECKS],
            resources=resources,
            instance=instance,
            run_config={"ops": {"models__feed_ranker": {"config": {"epochs": 6}}}},
        )
        second = dg.materialize(
            [training_set, *ranker.ASSETS, *ranker.CHECKS],
            resources=resources,
            instance=instance,
            run_config={"ops": {"models__feed_ranker": {"config": {"epochs": 1, "seed": 3}}}},
        )
    finally:
        get_settings.cache_clear()
    assert first.success and second.success

    def ranker_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
        events = [
            e
            for e in result.get_asset_materialization_events()
            if e.materialization.asset_key == ranker.FEED_RANKER
        ]
        return {k: v.value for k, v in events[0].materialization.metadata.items()}

    trained, retrained = ranker_metadata(first), ranker_metadata(second)
    # the first version has no champion to beat, only the logistic regression (by the margin):
    # on this workload the network and the regression are close, so either outcome is possible,
    # and the one taken must agree with the figures and with what serving uses
    first_wins = registry.beats(
        trained["candidate_holdout_auc"], trained["baseline_holdout_auc"], registry.PROMOTION_MARGIN
    )
    assert trained["promoted"] is first_wins, trained["promotion_reason"]
    assert trained["serving"] == ("candidate" if first_wins else "baseline")
    assert trained["model"] == f"{MODEL_NAME}/1"
    assert trained["auc_ranker"] > trained["auc_popularity"]
    assert trained["auc_oracle"] > trained["auc_ranker"]  # ground truth found in the store
    assert "data:image/png;base64" in str(trained["plot_roc"])
    assert retrained["model"] == f"{MODEL_NAME}/2"
    assert retrained["champion_version_before"] == ("1" if first_wins else "")
    # the gate: above the champion AND the logistic regression, each by the margin (the figures
    # are rounded to 4 digits in the metadata: a tie within 1e-4 of a threshold could disagree)
    candidate = retrained["candidate_holdout_auc"]
    champion_auc = retrained.get("champion_holdout_auc", float("-inf"))  # none if v1 lost
    expected = registry.beats(candidate, champion_auc, registry.PROMOTION_MARGIN) and (
        registry.beats(candidate, retrained["baseline_holdout_auc"], registry.PROMOTION_MARGIN)
    )
    assert retrained["promoted"] is expected, retrained["promotion_reason"]
    assert trained["baseline_holdout_auc"] > 0.5
    checks = second.get_asset_check_evaluations()
    [drift] = [c for c in checks if c.check_name == "feature_drift_vs_champion"]
    psi_metadata: dict[str, Any] = {k: v.value for k, v in drift.metadata.items()}
    assert drift.passed or drift.severity == dg.AssetCheckSeverity.WARN  # drift only warns
    # compared with the champion's training data when there is a champion (v1 won), else a note
    assert (psi_metadata.get("rows_compared", 0) > 0) is first_wins, psi_metadata
    assert drift.passed == (psi_metadata.get("drifting_count", 0) == 0)


def test_no_oracle_when_the_ground_truth_misses_holdout_rows(built_platform: BuiltPlatform) -> None:
    frame = built_platform.training_set.frame
    truth = built_platform.workload.ground_truth.impressions
    holdout_start = time_split(frame).holdout_starts_at
    missing = frame.loc[frame["event_timestamp"] >= holdout_start, "impression_id"].iloc[0]
    partial = truth[truth["event_id"] != missing]
    small = train_ranker(frame, RankerParams(epochs=1), truth_impressions=partial, progress=False)
    assert small.oracle is None
    assert "1 of" in small.notes[0]
    assert set(small.evaluations) == {"ranker", "recency", "popularity", "logistic_regression"}
