"""Declarative automation, freshness and owners, applied centrally to every domain's assets.

Kept in one place (applied in `definitions.py` with `map_asset_specs`) rather than on each
decorator, so the schedule of the whole platform reads top to bottom here:

- the dbt layers (staging, intermediate, marts) rebuild after new raw partitions land;
- the features (online store, training set) after the marts they read;
- the models nightly, once their inputs changed since the last tick (promotion stays gated by
  the holdout comparison in `ml.registry`: a worse model is registered, never made champion);
- the home feeds after the models (and after the marts they fan out).

Nothing here runs by itself until the `platform_automation` sensor is on (it is by default; the
Dagster daemon of `make ui` evaluates it every 30 s). Marts and features carry a
`FreshnessPolicy`: the UI flags them late when no materialization landed within the window.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

import dagster as dg

AUTOMATION_SENSOR = "platform_automation"
NIGHTLY_CRON = "0 2 * * *"  # models: 02:00 UTC, after the day's raw partitions are in
FEEDS_CRON = "0 3 * * *"  # feeds: an hour after the models

# Raw tables are hourly partitioned and the dbt models unpartitioned: every raw partition is a
# dependency, so eager's "no dependency missing" would wait forever for partitions that never
# had data, and eager's "on missing" would build marts over empty raw tables on a fresh
# instance. The dbt layer runs on new raw data only, once no upstream run is in progress.
AFTER_NEW_RAW = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after new raw partitions")
AFTER_MARTS = dg.AutomationCondition.eager().with_label("after the marts")
NIGHTLY = dg.AutomationCondition.on_cron(NIGHTLY_CRON).with_label("nightly (02:00 UTC)")
AFTER_MODELS = (
    (
        dg.AutomationCondition.any_deps_updated()
        | dg.AutomationCondition.cron_tick_passed(FEEDS_CRON)
    ).since_last_handled()  # type: ignore[misc]
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~(dg.AutomationCondition.in_progress())
)
AFTER_MODELS = AFTER_MODELS.with_label("after the models and marts (and nightly at 03:00 UTC)")

MARTS_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=6), warn_window=timedelta(hours=2)
)
FEATURES_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=8), warn_window=timedelta(hours=3)
)
MODELS_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 4 * * *", lower_bound_delta=timedelta(hours=4)
)

OWNERS: dict[str, list[str]] = {
    "landing": ["team:data-platform"],
    "kafka": ["team:data-platform"],
    "raw": ["team:data-platform"],
    "media": ["team:media"],
    "staging": ["team:analytics-engineering"],
    "intermediate": ["team:analytics-engineering"],
    "marts": ["team:analytics-engineering"],
    "features": ["team:ml-platform"],
    "models": ["team:ml"],
    "feeds": ["team:feeds"],
    "search": ["team:discovery"],
    "notifications": ["team:notifications"],
    "moderation": ["team:trust-and-safety"],
}

# Feeds are rebuilt after the models too: the champion ranker and the recommenders they are
# served with must be in place before a new candidate feed is written.
FEEDS_AFTER = [dg.AssetKey(["models", "feed_ranker"])]


def layer_of(key: dg.AssetKey) -> str:
    """The first path component names the layer (`marts/dim_users` -> `marts`)."""
    return key.path[0] if len(key.path) > 1 else ""


def apply_automation(spec: dg.AssetSpec) -> dg.AssetSpec:
    """The automation condition, freshness policy and owners of one asset, by its layer."""
    layer = layer_of(spec.key)
    changes: dict = {}
    if layer in ("staging", "intermediate", "marts"):
        changes["automation_condition"] = AFTER_NEW_RAW
    elif layer == "features" and spec.key.path[-1] != "feast_registry":
        changes["automation_condition"] = AFTER_MARTS
    elif layer == "models":
        changes["automation_condition"] = NIGHTLY
        changes["freshness_policy"] = MODELS_FRESHNESS
    elif layer == "feeds":
        changes["automation_condition"] = AFTER_MODELS
    if layer == "marts":
        changes["freshness_policy"] = MARTS_FRESHNESS
    elif layer == "features":
        changes["freshness_policy"] = FEATURES_FRESHNESS
    spec = spec.replace_attributes(**changes)
    owners = OWNERS.get(layer)
    if owners and not spec.owners:
        spec = spec.replace_attributes(owners=owners)
    if layer == "feeds":
        known = {dep.asset_key for dep in spec.deps}
        spec = spec.merge_attributes(deps=[k for k in FEEDS_AFTER if k not in known])
    return spec


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description=(
            "Evaluates every asset's automation condition: marts after new raw partitions, "
            "features after marts, models nightly, feeds after models."
        ),
    )


def with_automation(defs: dg.Definitions) -> dg.Definitions:
    """`defs` with every asset's automation applied, plus the sensor that evaluates them."""
    with warnings.catch_warnings():  # "preview" API, stable in use since 1.10
        warnings.simplefilter("ignore", dg.PreviewWarning)
        mapped = defs.map_asset_specs(func=apply_automation)
    return dg.Definitions.merge(mapped, dg.Definitions(sensors=[automation_sensor()]))
