"""Declarative automation on the real code location: what runs by itself, and when.

The conditions are evaluated tick by tick as the Dagster daemon does (`evaluate_automation_
conditions` on an ephemeral instance); materializations are reported as runs would report them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time

from appconfig import Settings
from orchestration.automation import AUTOMATION_SENSOR

RAW = dg.AssetKey(["raw", "engagements"])
STAGING = dg.AssetKey(["staging", "stg_raw__engagements"])
MART = dg.AssetKey(["marts", "fct_engagements"])
FEATURES = dg.AssetKey(["features", "training_set"])
RANKER = dg.AssetKey(["models", "feed_ranker"])
FEEDS = dg.AssetKey(["feeds", "home_feeds"])


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    from orchestration.definitions import defs

    return defs() if callable(defs) else defs


def test_every_layer_has_its_condition_freshness_and_owner(
    definitions: dg.Definitions, settings: Settings
) -> None:
    graph = definitions.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners, f"{key.to_user_string()} has no owner"
        layer = key.path[0]
        if layer in ("marts", "features"):
            assert node.freshness_policy is not None, key
        if layer in ("staging", "intermediate", "marts", "models", "feeds"):
            assert node.automation_condition is not None, key
    mart_condition = graph.get(MART).automation_condition
    ranker_condition = graph.get(RANKER).automation_condition
    assert mart_condition is not None and ranker_condition is not None
    assert mart_condition.get_label() == "after new raw partitions"
    assert (ranker_condition.get_label() or "").startswith("nightly")
    assert RANKER in graph.get(FEEDS).parent_keys
    repo = definitions.get_repository_def()
    assert repo.has_sensor_def(AUTOMATION_SENSOR)
    sensor = repo.get_sensor_def(AUTOMATION_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def _report(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None = None) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))


def _requested(result: Any) -> set[dg.AssetKey]:
    return {r.key for r in result.results if r.true_subset.size}


class _Daemon:
    """Ticks of the automation sensor at chosen times, with the materializations in between."""

    def __init__(self, definitions: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.definitions, self.instance = definitions, instance
        self.cursor: dg.AssetDaemonCursor | None = None

    def tick(self, at: datetime) -> set[dg.AssetKey]:
        with freeze_time(at):
            result = dg.evaluate_automation_conditions(
                self.definitions, self.instance, cursor=self.cursor
            )
        self.cursor = result.cursor
        return _requested(result)

    def materialize(self, at: datetime, keys: Iterable[dg.AssetKey], partition: str | None = None):
        with freeze_time(at):
            for key in keys:
                _report(self.instance, key, partition)


def test_new_raw_partition_rebuilds_marts_and_features_models_wait_for_the_night(
    definitions: dg.Definitions, settings: Settings
) -> None:
    """A tick requests the dbt layer and what reads it (one run, in graph order); the models
    run only after 02:00 UTC, with the feeds behind them; one change is handled once."""
    graph = definitions.resolve_asset_graph()
    unpartitioned = [
        k
        for k in graph.get_all_asset_keys()
        if graph.get(k).is_materializable and not graph.get(k).partitions_def
    ]
    day = datetime(2026, 11, 20, tzinfo=UTC)
    with dg.DagsterInstance.ephemeral() as instance:
        daemon = _Daemon(definitions, instance)
        daemon.materialize(day + timedelta(hours=11), unpartitioned)  # as `make demo` leaves it
        assert daemon.tick(day + timedelta(hours=12)) == set(), "nothing runs without new data"

        daemon.materialize(day + timedelta(hours=12, minutes=1), [RAW], "2026-11-20-11:00")
        requested = daemon.tick(day + timedelta(hours=12, minutes=2))
        assert {STAGING, MART, FEATURES} <= requested, requested
        assert dg.AssetKey(["staging", "stg_raw__users"]) not in requested, "only what changed"
        assert RANKER not in requested, "models wait for the nightly tick"
        daemon.materialize(day + timedelta(hours=12, minutes=3), requested)  # the launched run
        assert daemon.tick(day + timedelta(hours=12, minutes=4)) == set(), "handled once"

        assert daemon.tick(day + timedelta(hours=25, minutes=59)) == set()
        daemon.materialize(day + timedelta(hours=26, minutes=1), [RAW], "2026-11-21-01:00")
        requested = daemon.tick(day + timedelta(hours=26, minutes=2))
        assert {MART, FEATURES, RANKER, FEEDS} <= requested, requested
