"""Feature store assets: the Feast registry, the online store, and point-in-time training sets.

`online_features` and `training_set` read the dbt feature tables (`feat_*`) through Feast's
ClickHouse offline store; `orchestration.features.defs` puts them downstream of those models,
keys taken from the dbt manifest.
"""

from datetime import datetime, timedelta

import dagster as dg

from appconfig import get_settings
from featurestore.config import registry_url
from featurestore.materialize import data_watermark, materialize_online
from featurestore.registry import apply_definitions
from featurestore.training import NoTrainingData, write_training_set
from objectstore import store_from_settings
from orchestration.features.resources import FeatureStoreResource
from orchestration.skipping import skipped

OWNER = "team:ml-platform"

FEAST_REGISTRY = dg.AssetKey(["features", "feast_registry"])
ONLINE_FEATURES = dg.AssetKey(["features", "online_features"])
TRAINING_SET = dg.AssetKey(["features", "training_set"])
TRAINING_PREFIX = "training_sets"


class OnlineFeaturesConfig(dg.Config):
    end_at: str | None = None  # ISO time; default: the newest event in the marts
    lookback_hours: float = 48.0  # re-materialize this much before the previous end


class TrainingSetConfig(dg.Config):
    feature_service: str = "feed_ranker_v1"
    as_of: str | None = None  # ISO time; default: the newest event in the marts
    mature_labels_only: bool = True


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dg.asset(
    key=FEAST_REGISTRY,
    group_name="features",
    owners=[OWNER],
    kinds={"feast"},
    description="Feast registry: entities, feature views over the marts, on-demand views and "
    "versioned feature services (`feature_repo/`), applied like `feast apply`.",
)
def feast_registry(context: dg.AssetExecutionContext, feature_store: FeatureStoreResource):
    settings = get_settings()
    with feature_store.store() as store:
        applied = apply_definitions(store, settings)
        services = {s.name: s.tags.get("version", "") for s in store.list_feature_services()}
    return dg.MaterializeResult(
        metadata={
            "project": applied.project,
            "registry": "sql (PostgreSQL)" if registry_url(settings) else "file",
            "feature_views": dg.MetadataValue.json(applied.feature_views),
            "on_demand_feature_views": dg.MetadataValue.json(applied.on_demand_feature_views),
            "feature_services": dg.MetadataValue.json(services),
        }
    )


@dg.asset(
    key=ONLINE_FEATURES,
    deps=[FEAST_REGISTRY],  # + the dbt feature tables: see orchestration.features.defs
    group_name="features",
    owners=[OWNER],
    kinds={"feast", "redis", "sqlite"},
    pool="clickhouse",
    description="Latest feature values in the online store (SQLite or Redis), materialized "
    "incrementally as of the newest event in the marts.",
)
def online_features(
    context: dg.AssetExecutionContext,
    config: OnlineFeaturesConfig,
    feature_store: FeatureStoreResource,
):
    settings = get_settings()
    with feature_store.store() as store:
        end = _parse(config.end_at) or data_watermark(store, settings)
        if end is None:
            return skipped(
                context,
                "no posts, engagements or impressions in the marts: no feature has a value "
                "to materialize (who to follow reads the follow graph directly)",
                rows=0,
            )
        result = materialize_online(store, end, lookback=timedelta(hours=config.lookback_hours))
        online_type = store.config.online_store.type
    windows = {
        name: f"{start.isoformat()} .. {stop.isoformat()}"
        for name, (start, stop) in result.windows.items()
    }
    return dg.MaterializeResult(
        metadata={
            "as_of": end.isoformat(),
            "online_store": online_type,
            "rows": result.total_rows,
            "rows_by_view": dg.MetadataValue.json(result.rows),
            "windows": dg.MetadataValue.json(windows),
            "seconds": round(result.seconds, 3),
            "rows_per_second": round(result.rows_per_second, 1),
        }
    )


@dg.asset(
    key=TRAINING_SET,
    deps=[FEAST_REGISTRY],  # + the dbt feature tables: see orchestration.features.defs
    group_name="features",
    owners=[OWNER],
    kinds={"feast", "parquet"},
    pool="clickhouse",
    description="Point-in-time training set: every impression of fct_training_impressions with "
    "its label and the features of a feature service as of its time, as Parquet.",
)
def training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetConfig,
    feature_store: FeatureStoreResource,
):
    settings = get_settings()
    with feature_store.store() as store:
        as_of = _parse(config.as_of) or data_watermark(store, settings)
        try:
            built = write_training_set(
                store,
                settings,
                config.feature_service,
                as_of=as_of,
                mature_labels_only=config.mature_labels_only,
            )
        except NoTrainingData as nothing:
            return skipped(context, str(nothing), feature_service=config.feature_service, rows=0)
    stamp = as_of.strftime("%Y%m%dT%H%M%SZ") if as_of else "all"
    key = f"{TRAINING_PREFIX}/{built.service}/as_of={stamp}/training_set.parquet"
    objects = store_from_settings(settings)
    objects.put(key, built.data)
    return dg.MaterializeResult(
        metadata={
            "feature_service": built.service,
            "feature_service_version": built.version,
            "rows": built.rows,
            "label_rate": round(built.label_rate, 6),
            "features": len(built.features),
            "as_of": as_of.isoformat() if as_of else "",
            "path": dg.MetadataValue.path(f"{objects.url}/{key}"),
            "object_key": key,
            "columns": dg.MetadataValue.json(built.columns),
        }
    )
