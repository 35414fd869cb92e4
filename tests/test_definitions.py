"""The Dagster code location loads, and names what data engineers expect to find."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg

from appconfig import Settings
from orchestration.ingestion.sensors import changed_partitions, consecutive_ranges


def test_definitions_load_with_expected_assets_checks_and_sensor(settings: Settings) -> None:
    from orchestration.definitions import defs

    definitions = defs() if callable(defs) else defs
    repo = definitions.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert {
        "landing/events",
        "raw/users",
        "raw/posts",
        "raw/stories",
        "raw/engagements",
        "raw/views",
        "raw/relationships",
        "raw/dead_letters",
    } <= keys
    checks = {(k.asset_key.to_user_string(), k.name) for k in repo.asset_graph.asset_check_keys}
    assert ("raw/engagements", "matches_contract") in checks
    assert ("raw/dead_letters", "every_row_has_a_reason") in checks
    assert ("marts/fct_flagged_comments", "every_flagged_comment_listed") in checks
    staged = repo.asset_graph.get(dg.AssetKey(["staging", "stg_moderation__comment_checks"]))
    assert dg.AssetKey(["moderation", "comment_checks"]) in staged.parent_keys
    assert repo.has_sensor_def("landing_files_sensor")
    assert repo.has_job("ingest_landing")
    results = repo.asset_graph.get(dg.AssetKey(["experiments", "results"]))
    assert dg.AssetKey(["marts", "fct_experiment_arms"]) in results.parent_keys
    raw_users = repo.asset_graph.get(dg.AssetKey(["raw", "users"]))
    assert raw_users.partitions_def is not None
    assert dg.AssetKey(["landing", "events"]) in raw_users.parent_keys


def test_sensor_requests_only_changed_partitions() -> None:
    base = "landing/events/dt=2026-11-20/hour={h}/event_type=like/part-{b}.jsonl"
    keys = [base.format(h="10", b="a"), base.format(h="11", b="a"), "landing/events/README"]
    first = changed_partitions(keys, {})
    assert set(first) == {"2026-11-20-10:00", "2026-11-20-11:00"}
    assert changed_partitions(keys, first) == {}
    more = changed_partitions([*keys, base.format(h="11", b="b")], first)
    assert set(more) == {"2026-11-20-11:00"}


def test_consecutive_hours_become_one_range() -> None:
    hours = ["2026-11-20-23:00", "2026-11-21-00:00", "2026-11-21-01:00", "2026-11-21-05:00"]
    assert consecutive_ranges(hours) == [
        ("2026-11-20-23:00", "2026-11-21-01:00"),
        ("2026-11-21-05:00", "2026-11-21-05:00"),
    ]


def test_feature_assets_sit_downstream_of_the_dbt_feature_tables(settings: Settings) -> None:
    """marts -> feature tables -> online features / training set -> ranker, without gaps; the
    feature tables' keys come from the dbt manifest, and every feature asset has an owner."""
    from orchestration.definitions import defs

    graph = (defs() if callable(defs) else defs).get_repository_def().asset_graph
    training = graph.get(dg.AssetKey(["features", "training_set"]))
    tables = {k for k in training.parent_keys if k.path[-1].startswith("feat_")}
    assert dg.AssetKey(["features", "feat_user__follow_counts"]) in tables
    feature_models = (Path(__file__).parents[1] / "transformations" / "models" / "features").glob(
        "feat_*.sql"
    )
    assert {t.path[-1] for t in tables} == {p.stem for p in feature_models}  # every one of them
    follow_counts = graph.get(dg.AssetKey(["features", "feat_user__follow_counts"]))
    assert dg.AssetKey(["intermediate", "int_follow_transitions"]) in follow_counts.parent_keys
    stats = graph.get(dg.AssetKey(["features", "feat_author__stats"]))
    assert dg.AssetKey(["marts", "fct_engagements"]) in stats.parent_keys
    assert tables <= graph.get(dg.AssetKey(["features", "online_features"])).parent_keys
    ranker = graph.get(dg.AssetKey(["models", "feed_ranker"]))
    assert dg.AssetKey(["features", "training_set"]) in ranker.parent_keys
    for key in ("feast_registry", "online_features", "training_set"):
        node = graph.get(dg.AssetKey(["features", key]))
        assert node.owners and node.description, key


def test_every_asset_has_an_owner_and_a_description(settings: Settings) -> None:
    from orchestration.definitions import defs

    graph = (defs() if callable(defs) else defs).get_repository_def().asset_graph
    keys = graph.get_all_asset_keys()
    assert len(keys) > 50  # the dbt models are among them
    for key in keys:
        node = graph.get(key)
        assert node.owners, f"{key.to_user_string()} has no owner"
        assert (node.description or "").strip(), f"{key.to_user_string()} has no description"


def test_assets_downstream_of_dbt_take_the_model_keys_from_the_manifest(settings: Settings) -> None:
    """Feeds, search and the recommenders sit below the dbt models they read (keys looked up in
    the manifest by model name), and no module types a dbt model's asset key by hand."""
    from orchestration.analytics.lineage import model_keys
    from orchestration.definitions import defs
    from orchestration.experiments.assets import SOURCE_MODELS as EXPERIMENT_MODELS
    from orchestration.feeds.assets import SOURCE_MODELS as FEED_MODELS
    from orchestration.models.recommenders import SOURCE_MODELS as RECOMMENDER_MODELS
    from orchestration.search.assets import SOURCE_MODELS as SEARCH_MODELS

    graph = (defs() if callable(defs) else defs).get_repository_def().asset_graph
    for asset, names in (
        ("feeds/home_feeds", FEED_MODELS),
        ("search/indexes", SEARCH_MODELS),
        ("experiments/results", EXPERIMENT_MODELS),
        ("models/who_to_follow", RECOMMENDER_MODELS),
        ("models/explore", RECOMMENDER_MODELS),
    ):
        parents = graph.get(dg.AssetKey.from_user_string(asset)).parent_keys
        assert set(model_keys(*names)) <= parents, asset
    typed = re.compile(r"AssetKey\(\[\s*[\"']\w+[\"'],\s*[\"'](stg|int|fct|dim|feat)_")
    root = Path(__file__).parents[1] / "orchestration"
    offenders = [str(p) for p in root.rglob("*.py") if typed.search(p.read_text())]
    assert not offenders, f"dbt asset keys typed by hand in {offenders}"
