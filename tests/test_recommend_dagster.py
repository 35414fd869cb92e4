"""The recommender assets on a built platform: real marts in chDB, real Spark, a temporary
MLflow store. A good first version becomes champion; a deliberately worse one does not; the
champion loads back for serving and its suggestions respect the marts' visibility graph."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from platform_support import BuiltPlatform

from appconfig import Settings, get_settings
from ml import registry
from ml.recommenders.publish import EXPLORE, WHO_TO_FOLLOW, load_champion
from orchestration.models.recommenders import (
    explore,
    suggestions_respect_visibility,
    who_to_follow,
)
from orchestration.models.resources import MlflowResource
from orchestration.resources import ClickHouseResource
from visibility import VisibilityGraph
from warehouse import clickhouse_client


@pytest.fixture
def platform_env(
    built_platform: BuiltPlatform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Settings]:
    """get_settings() pointing at the built platform, with a data dir of this test's own."""
    monkeypatch.setenv("PLATFORM_PROFILE", "embedded")
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLICKHOUSE_URL", built_platform.settings.clickhouse_url)
    monkeypatch.setenv("ANALYTICS_SCHEMA", built_platform.settings.analytics_schema)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def materialize(
    asset: dg.AssetsDefinition,
    settings: Settings,
    config: dict,
    check: dg.AssetChecksDefinition | None = None,
) -> dict:
    tracking = f"sqlite:///{settings.data_dir / 'mlflow.db'}"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    result = dg.materialize(
        [asset, *([check] if check is not None else [])],
        resources={
            "clickhouse": ClickHouseResource(url=settings.clickhouse_url),
            "mlflow": MlflowResource(tracking_uri=tracking),
        },
        run_config={"ops": {asset.op.name: {"config": config}}},
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    for evaluation in result.get_asset_check_evaluations():
        assert evaluation.passed, evaluation.metadata
        checked = evaluation.metadata["items_checked"].value
        metadata[f"check_{evaluation.check_name}_items"] = checked
    return metadata


def test_who_to_follow_asset_trains_registers_and_promotes_only_when_better(
    platform_env: Settings, built_platform: BuiltPlatform
) -> None:
    first = materialize(who_to_follow, platform_env, {}, suggestions_respect_visibility)
    assert first["check_suggestions_respect_visibility_items"] > 1000
    assert first["promoted"] is True and first["model"] == f"{WHO_TO_FOLLOW}/1"
    assert first["evaluated_users"] > 100
    assert first["recall_at_20"] > 0 and first["popularity_recall_at_20"] > 0
    # the gate: champion only above popularity on the same holdout
    assert first["recall_at_20"] > first["popularity_recall_at_20"]
    assert "data:image/png;base64," in first["plot_recall_ndcg_vs_popularity"]

    # a model that cannot rank: the blend of rank-1 factors, one iteration, no
    # friends-of-friends, no prior (no learned ranker)
    worse = materialize(
        who_to_follow,
        platform_env,
        {"rank": 1, "max_iter": 1, "fof_weight": 0.0, "popularity_weight": 0.0, "learned": False},
    )
    assert worse["promoted"] is False, worse["promotion_reason"]
    assert worse["candidate_holdout_ndcg"] < worse["champion_holdout_ndcg"]
    tracking = f"sqlite:///{platform_env.data_dir / 'mlflow.db'}"
    assert registry.champion_version(tracking, WHO_TO_FOLLOW) == "1"

    with clickhouse_client(built_platform.settings.clickhouse_url) as client:
        graph = VisibilityGraph.from_clickhouse(client, built_platform.settings)
    model, version = load_champion(
        WHO_TO_FOLLOW, graph, models_dir=platform_env.data_dir / "models"
    )
    assert version == "1"
    from_registry, version = load_champion(WHO_TO_FOLLOW, graph, tracking_uri=tracking)
    users = sorted(u for u in graph._following if graph.follows(u))[:40]
    for user in users:
        suggestions = model.recommend(user, 10)
        assert suggestions == from_registry.recommend(user, 10)
        assert all(graph.can_suggest(user, c) for c, _ in suggestions)


def test_explore_asset_follows_the_gate_and_what_it_promotes_respects_visibility(
    platform_env: Settings, built_platform: BuiltPlatform
) -> None:
    """Explore is promoted only if it beats popularity by the margin on this small platform it
    may not (then popularity serves and the check warns: nothing to check); what is promoted is
    checked against the marts for every sampled viewer."""
    from orchestration.models.recommenders import PrivacyCheckConfig, _privacy_check

    metadata = materialize(explore, platform_env, {})
    assert metadata["evaluated_users"] > 10
    promoted = registry.beats(
        metadata["ndcg_at_10"], metadata["popularity_ndcg_at_10"], registry.PROMOTION_MARGIN
    )
    assert metadata["promoted"] is promoted, metadata["promotion_reason"]
    assert metadata["serving"] == ("candidate" if promoted else "baseline")
    get_settings.cache_clear()
    check = _privacy_check(
        EXPLORE, ClickHouseResource(url=platform_env.clickhouse_url), PrivacyCheckConfig()
    )
    assert check.passed is promoted, check.metadata
    items_checked = check.metadata["items_checked"].value
    assert isinstance(items_checked, int) and (items_checked > 1000) is promoted


def test_visibility_check_without_a_champion_does_not_pass(platform_env: Settings) -> None:
    """Nothing checked proves nothing: no champion is a failed (warning) check, never a pass."""
    from orchestration.models.recommenders import PrivacyCheckConfig, _privacy_check

    result = _privacy_check(
        WHO_TO_FOLLOW,
        ClickHouseResource(url=platform_env.clickhouse_url),
        PrivacyCheckConfig(),
    )
    assert result.passed is False
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert "no champion" in str(result.metadata["note"].value)
