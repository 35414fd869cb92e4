"""Point-in-time feature retrieval with ClickHouse `ASOF LEFT JOIN`s, in place of Feast's join.

Feast's ClickHouse offline store (`MULTIPLE_FEATURE_VIEW_POINT_IN_TIME_JOIN`) joins, per
feature view, every feature row of an entity to every entity row of that entity (an inner join
on the keys, then `ROW_NUMBER()` per entity row to keep the latest), and reads that product
twice. Its size is the sum over entities of (impressions x feature rows): a popular post's
thousands of impressions times its hourly engagement rows. It grows faster than the input, with
both the users and the days, and took the whole machine (21.7 GB, killed) at 10,000 users x 7
days. An `ASOF LEFT JOIN` keeps only each feature table (within the entity rows' time range)
in memory and finds the latest row at or before each entity row directly, so the cost is linear
in the entity rows plus the feature rows.

The result is Feast's: the same feature views, features and column names (Feast plans them,
`offline_utils.get_feature_view_query_context`), the same ttl rule (the latest row at or before
the entity time, null when it is older than the ttl), null for missing features
(`join_use_nulls`), and the on-demand views applied by Feast's `RetrievalJob` on the result.
`tests/test_features_point_in_time.py` checks it equals Feast's own join. One difference on
purpose: an entity row is identified by its position, not by its join keys and timestamp
concatenated as text, so (user 1, author 23) and (user 12, author 3) can no longer swap features.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime

from feast import FeatureService, FeatureStore, FeatureView, OnDemandFeatureView, utils
from feast.infra.offline_stores import offline_utils
from feast.infra.offline_stores.contrib.clickhouse_offline_store.clickhouse import (
    ClickhouseRetrievalJob,
)
from feast.infra.offline_stores.offline_store import RetrievalMetadata
from feast.infra.utils.clickhouse.connection_utils import get_client

from featurestore.materialize import ch_time

TIMESTAMP = "event_timestamp"  # the entity rows' time column, as Feast names it


@dataclass(frozen=True)
class ViewJoin:
    """One feature view's part of the join: its table, keys, features and ttl."""

    name: str  # the projection's name, the prefix of its columns
    table: str
    keys: list[str]
    timestamp_field: str
    features: list[str]  # source columns
    outputs: list[str]  # their names in the result (`<view>__<feature>`)
    ttl_seconds: int  # 0: no ttl


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def plan(
    store: FeatureStore, service: FeatureService, start: datetime, end: datetime
) -> tuple[list[str], list[ViewJoin], list[OnDemandFeatureView]]:
    """Feast's plan for `service` (as `FeatureStore.get_historical_features` makes it): the
    feature refs, the views to join and the on-demand views to run on the result."""
    refs = utils._get_features(store.registry, store.project, service, allow_cache=True)
    views, on_demand = utils._get_feature_views_to_use(store.registry, store.project, service)
    on_demand = copy.deepcopy(on_demand)
    for odfv in on_demand:
        odfv.write_to_online_store = False
    grouped, grouped_on_demand = utils._group_feature_refs(refs, views, on_demand)
    provider_refs = list(refs)
    batch_views: list[FeatureView] = []
    for view, features in grouped:  # the inputs of the on-demand views, as Feast adds them
        assert isinstance(view, FeatureView)
        batch_views.append(view)
        for feature in features:
            ref = f"{view.projection.name_to_use()}:{feature}"
            if ref not in provider_refs:
                provider_refs.append(ref)
    contexts = offline_utils.get_feature_view_query_context(
        provider_refs,
        batch_views,
        store.registry,
        store.project,
        (start, end),
    )
    joins = [
        ViewJoin(
            name=c.name,
            table=c.table_subquery,
            keys=list(c.entities),
            timestamp_field=c.timestamp_field,
            features=list(c.features),
            outputs=[f"{c.name}__{c.field_mapping.get(f, f)}" for f in c.features],
            ttl_seconds=c.ttl,
        )
        for c in contexts
    ]
    for c in contexts:
        if c.created_timestamp_column:  # Feast would break ties by it; none of ours has one
            raise NotImplementedError(f"{c.name}: created timestamp columns are not supported")
    return refs, joins, [view for view, _ in grouped_on_demand]


def asof_query(
    entity_sql: str,
    entity_columns: list[str],
    joins: list[ViewJoin],
    start: datetime,
    end: datetime,
) -> str:
    """One SELECT: the entity rows, each view joined by `ASOF LEFT JOIN` on its keys and time.

    Each view's table is read only in [start - ttl, end] (`start`, `end`: the entity rows' time
    range), as Feast's query does, and only for the keys the entity rows name (`entity_sql` is
    read once per view for them: make it cheap, e.g. a range of a table ordered by time)."""
    entity_time = f"entity.{TIMESTAMP}"
    columns = [f"entity.{_quote(c)} AS {_quote(c)}" for c in entity_columns]
    clauses = []
    for i, view in enumerate(joins):
        alias = f"fv{i}"
        row_time = f"{alias}.__feature_at"
        where = f"{_quote(view.timestamp_field)} <= {ch_time(end)}"
        if view.ttl_seconds:
            where += (
                f" AND {_quote(view.timestamp_field)}"
                f" >= {ch_time(start)} - INTERVAL {view.ttl_seconds} SECOND"
            )
        # only the entities these rows name: a chunk of entity rows holds a chunk of the table
        keys = ", ".join(_quote(k) for k in view.keys)
        where += f" AND ({keys}) IN (SELECT {keys} FROM ({entity_sql}))"
        selected = ", ".join(
            [
                *(_quote(k) for k in view.keys),
                f"{_quote(view.timestamp_field)} AS __feature_at",
                *(f"{_quote(f)} AS {_quote(f'__f{j}')}" for j, f in enumerate(view.features)),
            ]
        )
        on = " AND ".join(
            [
                *(f"entity.{_quote(k)} = {alias}.{_quote(k)}" for k in view.keys),
                f"{entity_time} >= {row_time}",
            ]
        )
        clauses.append(
            f"ASOF LEFT JOIN (SELECT {selected} FROM {view.table} WHERE {where}) AS {alias} ON {on}"
        )
        for j, output in enumerate(view.outputs):
            value = f"{alias}.{_quote(f'__f{j}')}"
            if view.ttl_seconds:  # the latest row is older than the ttl: no value
                fresh = f"{row_time} >= {entity_time} - INTERVAL {view.ttl_seconds} SECOND"
                value = f"if({fresh}, {value}, NULL)"
            columns.append(f"{value} AS {_quote(output)}")
    return (
        f"SELECT {', '.join(columns)}\nFROM ({entity_sql}) AS entity\n"
        + "\n".join(clauses)
        + "\nSETTINGS join_use_nulls = 1"
    )


def historical_features(
    store: FeatureStore, service: FeatureService, entity_sql: str
) -> ClickhouseRetrievalJob:
    """Feast's `get_historical_features(entity_sql, service, full_feature_names=True)`, joined
    with ASOF joins. `entity_sql` must name its time column `event_timestamp`."""
    client = get_client(store.config.offline_store)
    described = client.query(f"DESCRIBE TABLE ({entity_sql})").result_rows
    entity_columns = [str(row[0]) for row in described]
    if TIMESTAMP not in entity_columns:
        raise ValueError(f"the entity rows have no {TIMESTAMP} column: {entity_columns}")
    start, end = client.query(
        f"SELECT min({TIMESTAMP}), max({TIMESTAMP}) FROM ({entity_sql})"
    ).result_rows[0]
    refs, joins, on_demand = plan(store, service, start, end)
    return ClickhouseRetrievalJob(
        query=asof_query(entity_sql, entity_columns, joins, start, end),
        config=store.config,
        full_feature_names=True,
        on_demand_feature_views=on_demand,
        metadata=RetrievalMetadata(
            features=refs,
            keys=[c for c in entity_columns if c != TIMESTAMP],
            min_event_timestamp=start,
            max_event_timestamp=end,
        ),
    )
