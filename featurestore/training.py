"""Point-in-time training sets: `fct_training_impressions` joined to a feature service's features.

Each impression is an entity row at its `impressed_at`: Feast's ClickHouse offline store joins,
per feature view, the latest row at or before it (and within the view's ttl); on-demand views run
with `request_at = impressed_at`. Missing features stay null (`join_use_nulls`).

Only impressions whose label is final are used by default: `is_engaged` looks
`engagement_label_window_hours` ahead, so an impression whose window ends after the watermark
may still turn positive.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast import FeatureService, FeatureStore
from feast.infra.utils.clickhouse.connection_utils import get_client

from appconfig import Settings
from featurestore.materialize import ch_time

LABEL = "is_engaged"


class NoTrainingData(LookupError):
    """Nothing to learn from (no impressions, or none with a final label); says which."""


class EntityKeyCollision(ValueError):
    """Two entity rows that Feast's ClickHouse join would mistake for one another."""


@dataclass
class TrainingSet:
    frame: pd.DataFrame
    service: str
    version: str
    features: list[str]
    as_of: datetime | None

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def label_rate(self) -> float:
        return float(self.frame[LABEL].mean()) if len(self.frame) else 0.0

    def to_parquet(self) -> bytes:
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(self.frame, preserve_index=False), sink)
        return sink.getvalue()


def entity_query(settings: Settings, as_of: datetime | None, mature_labels_only: bool) -> str:
    where = []
    if as_of is not None:
        where.append(f"impressed_at <= {ch_time(as_of)}")
        if mature_labels_only:
            where.append(f"label_window_ends_at <= {ch_time(as_of)}")
    return f"""
        select
            toString(impression_id) as impression_id,
            viewer_id as user_id,
            post_id,
            author_id,
            impressed_at as event_timestamp,
            impressed_at as request_at,
            toString(surface) as surface,
            position,
            is_engaged
        from {settings.marts_database}.fct_training_impressions
        {"where " + " and ".join(where) if where else ""}
    """


def service_feature_columns(service: FeatureService) -> list[str]:
    """The columns a feature service contributes (full feature names), in its order."""
    return [
        f"{projection.name_to_use()}__{feature.name}"
        for projection in service.feature_view_projections
        for feature in projection.features
    ]


def check_entity_keys(store: FeatureStore, service: FeatureService, entity_sql: str) -> None:
    """Refuse entity rows whose keys Feast would confuse.

    Feast's ClickHouse point-in-time join identifies an entity row by concatenating its join
    keys and timestamp as text, without a separator: (user 1, author 23) and (user 12,
    author 3) at the same instant get the same id and would swap features. Raise instead.
    """
    views = {p.name for p in service.feature_view_projections}
    client = get_client(store.config.offline_store)
    for view in store.list_feature_views():
        if view.name not in views or len(view.join_keys) < 2:
            continue
        keys = view.join_keys
        text = " || ".join(f"CAST({k} AS VARCHAR)" for k in keys)
        query = f"""
            select count() from (
                select {text} || CAST(event_timestamp AS VARCHAR) as row_id
                from ({entity_sql})
                group by row_id
                having uniqExact({", ".join(keys)}) > 1
            )
        """
        clashes = int(client.query(query).result_rows[0][0])
        if clashes:
            raise EntityKeyCollision(
                f"{clashes} entity rows of {view.name} share Feast's row id "
                f"({' || '.join(keys)} || timestamp as text); their features would be mixed up"
            )


def training_data_gap(
    store: FeatureStore, settings: Settings, as_of: datetime | None, mature_labels_only: bool
) -> str | None:
    """Why no training set can be built from the marts (None when it can).

    Checked before Feast runs: with no entity rows Feast fails with an unrelated schema error."""
    client = get_client(store.config.offline_store)
    table = f"{settings.marts_database}.fct_training_impressions"
    total = int(client.query(f"select count() from {table}").result_rows[0][0])
    if total == 0:
        return (
            "no impressions in fct_training_impressions: the ranker learns from impressions "
            "and what followed them, and this data has none (e.g. a follow graph alone)"
        )
    entity_sql = entity_query(settings, as_of, mature_labels_only)
    rows = int(client.query(f"select count() from ({entity_sql})").result_rows[0][0])
    if rows == 0:
        return (
            f"none of the {total:,} impressions has a final label as of "
            f"{as_of.isoformat() if as_of else 'now'} (label_window_ends_at is later)"
        )
    return None


def build_training_set(
    store: FeatureStore,
    settings: Settings,
    service_name: str = "feed_ranker_v1",
    *,
    as_of: datetime | None = None,
    mature_labels_only: bool = True,
) -> TrainingSet:
    service = store.get_feature_service(service_name)
    gap = training_data_gap(store, settings, as_of, mature_labels_only)
    if gap is not None:
        raise NoTrainingData(gap)
    entity_sql = entity_query(settings, as_of, mature_labels_only)
    check_entity_keys(store, service, entity_sql)
    job = store.get_historical_features(
        entity_df=entity_sql, features=service, full_feature_names=True
    )
    frame = job.to_df()
    features = service_feature_columns(service)
    keys = ["impression_id", "user_id", "post_id", "author_id", "event_timestamp"]
    context = ["surface", "position", LABEL]
    frame = frame[[*keys, *context, *features]]  # ODFV inputs the service does not name go
    frame = frame.sort_values(["event_timestamp", "impression_id"], ignore_index=True)
    return TrainingSet(
        frame=frame,
        service=service_name,
        version=service.tags.get("version", ""),
        features=features,
        as_of=as_of,
    )
