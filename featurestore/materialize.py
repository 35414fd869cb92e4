"""Incremental materialization: the offline store's latest values into the online store.

"Now" is the data's watermark (the newest event the features read), not the wall clock: a
replayed or generated week materializes as of its own end. Each view's window starts where its
previous materialization ended minus a lookback (late events, re-built marts), and never before
`end - ttl`: a value older than its ttl is expired at `end` anyway (and the readers in
`featurestore.online` apply the ttl at request time as well).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from feast import FeatureStore, FeatureView
from feast.infra.offline_stores.contrib.clickhouse_offline_store.clickhouse_source import (
    ClickhouseSource,
)
from feast.infra.utils.clickhouse.connection_utils import get_client

from appconfig import Settings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_LOOKBACK = timedelta(days=2)


@dataclass
class Materialization:
    end: datetime
    windows: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)  # entity rows written, per view
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.seconds if self.seconds else 0.0


def data_watermark(store: FeatureStore, settings: Settings) -> datetime | None:
    """The newest event time in the marts the feature views read (None when they are empty)."""
    marts = settings.marts_database
    query = f"""
        select greatest(
            (select max(impressed_at) from {marts}.fct_training_impressions),
            (select max(engaged_at) from {marts}.fct_engagements),
            (select max(created_at) from {marts}.dim_posts)
        )
    """
    value = get_client(store.config.offline_store).query(query).result_rows[0][0]
    if value is None or value.timestamp() <= 0:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def window_start(view: FeatureView, end: datetime, lookback: timedelta) -> datetime:
    earliest = end - view.ttl if view.ttl and view.ttl > timedelta(0) else EPOCH
    ends = [_aware(e) for _, e in view.materialization_intervals]
    if ends:
        return max(earliest, min(max(ends), end) - lookback)
    return earliest


def _rows_in_window(store: FeatureStore, view: FeatureView, start: datetime, end: datetime) -> int:
    source = view.batch_source
    assert isinstance(source, ClickhouseSource)
    keys = ", ".join(view.join_keys)
    query = (
        f"select count() from (select distinct {keys} from {source.get_table_query_string()} "
        f"where event_timestamp between {ch_time(start)} and {ch_time(end)})"
    )
    return int(get_client(store.config.offline_store).query(query).result_rows[0][0])


def ch_time(moment: datetime) -> str:
    """A ClickHouse DateTime64 literal (UTC, microseconds)."""
    utc = _aware(moment).astimezone(UTC)
    return f"toDateTime64('{utc:%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')"


def materialize_online(
    store: FeatureStore,
    end: datetime,
    *,
    views: list[str] | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
    count_rows: bool = True,
) -> Materialization:
    """Materialize every view (or `views`) up to `end`, each from its own window start.

    `end` is rounded up to a whole second: Feast's ClickHouse store parses the bound without its
    fraction, so rows in the last partial second would otherwise wait for the next run.
    """
    end = _aware(end)
    if end.microsecond:
        end = end.replace(microsecond=0) + timedelta(seconds=1)
    selected = [v for v in store.list_feature_views() if views is None or v.name in views]
    result = Materialization(end=end)
    by_start: dict[datetime, list[str]] = {}
    for view in selected:
        start = window_start(view, end, lookback)
        result.windows[view.name] = (start, end)
        by_start.setdefault(start, []).append(view.name)
    started = time.perf_counter()
    for start, names in sorted(by_start.items()):
        store.materialize(start_date=start, end_date=end, feature_views=names)
    result.seconds = time.perf_counter() - started
    if count_rows:
        for view in selected:
            start, _ = result.windows[view.name]
            result.rows[view.name] = _rows_in_window(store, view, start, end)
    return result
