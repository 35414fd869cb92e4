"""Point-in-time training sets: `fct_training_impressions` joined to a feature service's features.

Each impression is an entity row at its `impressed_at`: per feature view, the latest row at or
before it (and within the view's ttl) is joined to it with a ClickHouse ASOF join
(`featurestore.point_in_time`: Feast's own join grows faster than its input); Feast's on-demand
views run with `request_at = impressed_at`. Missing features stay null (`join_use_nulls`).

Only impressions whose label is final are used by default: `is_engaged` looks
`engagement_label_window_hours` ahead, so an impression whose window ends after the watermark
may still turn positive.
"""

from __future__ import annotations

import io
import itertools
import math
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast import FeatureService, FeatureStore
from feast.infra.utils.clickhouse.connection_utils import get_client

from appconfig import Settings
from featurestore.materialize import ch_time
from featurestore.point_in_time import historical_features

LABEL = "is_engaged"
# the impression's slot was drawn at random by serving's exploration slice, not ranked: not a
# feature (serving cannot know it before ranking), a row attribute training may select or weight by
EXPLORED = "explored"
# impressions per chunk: ~200 columns, so ~0.3 GB of values, a few times that while Feast runs
# the on-demand views over it in pandas
ROWS_PER_CHUNK = 200_000


class NoTrainingData(LookupError):
    """Nothing to learn from (no impressions, or none with a final label); says which."""


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
            explored,
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


def _chunk_bounds(
    client: Any, table: str, rows_per_chunk: int
) -> list[tuple[datetime | None, datetime | None]]:
    """[from, to) ranges of `event_timestamp` that split the rows of `table` into chunks of about
    `rows_per_chunk` (rows at one instant stay together, so chunks in order are sorted by time)."""
    rows = int(client.query(f"select count() from {table}").result_rows[0][0])
    parts = math.ceil(rows / rows_per_chunk)
    if parts <= 1:
        return [(None, None)]
    levels = ", ".join(f"{i / parts:.6f}" for i in range(1, parts))
    cuts = client.query(
        f"select arraySort(arrayDistinct(quantilesExactLow({levels})(event_timestamp)))"
        f" from {table}"
    ).result_rows[0][0]
    edges: list[datetime | None] = [None, *cuts, None]
    return list(itertools.pairwise(edges))


@contextmanager
def _entity_table(store: FeatureStore, entity_sql: str) -> Iterator[str]:
    """The entity rows in a table ordered by time, dropped after: each chunk reads a range of
    it, and each view's join reads it again for the chunk's keys (as Feast's join, which puts
    its entity rows in a table too)."""
    client = get_client(store.config.offline_store)
    table = f"{store.config.offline_store.database}.training_entities_{uuid.uuid4().hex[:12]}"
    client.command(
        f"create table {table} engine = MergeTree order by event_timestamp as {entity_sql}"
    )
    try:
        yield table
    finally:
        client.command(f"drop table if exists {table}")


def training_frames(
    store: FeatureStore,
    settings: Settings,
    service_name: str = "feed_ranker_v1",
    *,
    as_of: datetime | None = None,
    mature_labels_only: bool = True,
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> Iterator[pd.DataFrame]:
    """The training set in chunks of about `rows_per_chunk` impressions, in time order.

    Memory follows the chunk, not the whole set: Feast runs the on-demand views over a whole
    result in pandas (several copies of it), and a chunk's join holds only the feature rows of
    the chunk's entities."""
    service = store.get_feature_service(service_name)
    gap = training_data_gap(store, settings, as_of, mature_labels_only)
    if gap is not None:
        raise NoTrainingData(gap)
    features = service_feature_columns(service)
    keys = ["impression_id", "user_id", "post_id", "author_id", "event_timestamp"]
    context = ["surface", "position", EXPLORED, LABEL]
    client = get_client(store.config.offline_store)
    with _entity_table(store, entity_query(settings, as_of, mature_labels_only)) as table:
        for start, end in _chunk_bounds(client, table, rows_per_chunk):
            where = []
            if start is not None:
                where.append(f"event_timestamp >= {ch_time(start)}")
            if end is not None:
                where.append(f"event_timestamp < {ch_time(end)}")
            chunk = f"select * from {table}" + (f" where {' and '.join(where)}" if where else "")
            if not int(client.query(f"select count() from ({chunk})").result_rows[0][0]):
                continue  # a cut at the first instant: nothing before it
            frame = historical_features(store, service, chunk).to_df()
            frame = frame[[*keys, *context, *features]]  # ODFV inputs the service does not name go
            yield frame.sort_values(["event_timestamp", "impression_id"], ignore_index=True)


def build_training_set(
    store: FeatureStore,
    settings: Settings,
    service_name: str = "feed_ranker_v1",
    *,
    as_of: datetime | None = None,
    mature_labels_only: bool = True,
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> TrainingSet:
    """The whole training set in one frame (tests, notebooks, small data); the asset streams
    it to Parquet with `write_training_set` instead."""
    service = store.get_feature_service(service_name)
    frames = list(
        training_frames(
            store,
            settings,
            service_name,
            as_of=as_of,
            mature_labels_only=mature_labels_only,
            rows_per_chunk=rows_per_chunk,
        )
    )
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return TrainingSet(
        frame=frame,
        service=service_name,
        version=service.tags.get("version", ""),
        features=service_feature_columns(service),
        as_of=as_of,
    )


@dataclass
class WrittenTrainingSet:
    """A training set written as Parquet, with what the asset reports of it."""

    data: bytes
    rows: int
    positives: int
    columns: list[str]
    service: str
    version: str
    features: list[str]

    @property
    def label_rate(self) -> float:
        return self.positives / self.rows if self.rows else 0.0


def write_training_set(
    store: FeatureStore,
    settings: Settings,
    service_name: str = "feed_ranker_v1",
    *,
    as_of: datetime | None = None,
    mature_labels_only: bool = True,
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> WrittenTrainingSet:
    """The training set as one Parquet file, built chunk by chunk.

    Each chunk is written to its own file first: pandas types a column by the chunk's values
    (an integer feature with a null in this chunk is float64, without one int64; a column all
    null is Arrow's null type), so the file's schema is known only at the end. The parts are
    then copied, one at a time, into one file under the unified schema: the types the whole
    set in one frame would have had."""
    service = store.get_feature_service(service_name)
    rows = positives = 0
    columns: list[str] = []
    with tempfile.TemporaryDirectory(prefix="training-set-") as tmp:
        parts = []
        for i, frame in enumerate(
            training_frames(
                store,
                settings,
                service_name,
                as_of=as_of,
                mature_labels_only=mature_labels_only,
                rows_per_chunk=rows_per_chunk,
            )
        ):
            part = Path(tmp) / f"part-{i:05d}.parquet"
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), part)
            rows += len(frame)
            positives += int(frame[LABEL].sum())
            columns = list(frame.columns)
            parts.append(part)
            del frame
        schemas = [pq.read_schema(part) for part in parts]
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        sink = io.BytesIO()
        with pq.ParquetWriter(sink, schema) as writer:
            for part in parts:
                writer.write_table(pq.read_table(part).cast(schema))
    return WrittenTrainingSet(
        data=sink.getvalue(),
        rows=rows,
        positives=positives,
        columns=columns,
        service=service_name,
        version=service.tags.get("version", ""),
        features=service_feature_columns(service),
    )
