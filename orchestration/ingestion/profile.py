"""A small profile of the partitions just loaded, aggregated in ClickHouse for GE to validate.

Great Expectations used to read every loaded row into pandas (~14 us of CPU per row, memory
linear in the backfill). What its expectations look at fits in a few rows computed by SQL: the
table's columns, per distinct event_type its row count and the nulls of each required column,
and the dead letters' rows per number of reasons. The profile's size does not grow with the
rows; a few example rows are fetched only when a count says something failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from clickhouse_connect.driver.client import Client

# DESCRIBE lists these, `SELECT *` (what GE used to see) does not
_NOT_SELECTED = ("ALIAS", "MATERIALIZED", "EPHEMERAL")
EXAMPLES = 5


@dataclass(frozen=True)
class TableProfile:
    """`frame` has the table's columns (as `SELECT * EXCEPT (payload)` returns them) and one row
    per distinct event_type: `event_type` holds the value, each required column present holds
    the number of its nulls among that type's rows, other columns are empty. `rows` is the number
    of rows per event_type, in the frame's order."""

    frame: pd.DataFrame
    rows: list[int]
    types: dict[str, str]  # every selected column's ClickHouse type

    @property
    def total_rows(self) -> int:
        return sum(self.rows)


def selected_columns(client: Client, database: str, table: str) -> list[tuple[str, str]]:
    """(name, type) of the columns `SELECT * EXCEPT (payload)` returns, in table order."""
    described = client.query(f"DESCRIBE TABLE {database}.{table}").result_rows
    return [
        (str(row[0]), str(row[1]))
        for row in described
        if row[0] != "payload" and row[2] not in _NOT_SELECTED
    ]


def null_condition(name: str, column_type: str) -> str:
    """True where pandas would call the value null: SQL NULL, and NaN in a float column."""
    condition = f"isNull(`{name}`)"
    scalar = column_type.removeprefix("LowCardinality(").removeprefix("Nullable(")
    if scalar.startswith(("Float", "BFloat")):
        condition += f" OR isNaN(`{name}`)"
    return condition


def profile_table(
    client: Client,
    database: str,
    table: str,
    partition_keys: Sequence[str],
    required: Sequence[str],
) -> TableProfile:
    """One aggregation over the loaded partitions, grouped by event_type."""
    columns = selected_columns(client, database, table)
    names = [name for name, _ in columns]
    types = dict(columns)
    # event_type is the group: its nulls show as a null value in the frame
    counted = [name for name in required if name in types and name != "event_type"]
    group = "event_type" if "event_type" in types else "CAST(NULL AS Nullable(String))"
    nulls = "".join(
        f", countIf({null_condition(name, types[name])}) AS null_{i}"
        for i, name in enumerate(counted)
    )
    result = client.query(
        f"SELECT {group} AS group_key, count() AS rows{nulls} FROM {database}.{table} "
        "WHERE _partition_key IN %(keys)s GROUP BY group_key ORDER BY group_key",
        parameters={"keys": list(partition_keys)},
    ).result_rows
    data: dict[str, list[object]] = {name: [None] * len(result) for name in names}
    for i, name in enumerate(counted):
        data[name] = [int(row[2 + i]) for row in result]
    if "event_type" in data:
        data["event_type"] = [row[0] for row in result]
    frame = pd.DataFrame(data, columns=names)
    for name in counted:
        frame[name] = frame[name].astype("int64")
    return TableProfile(frame, [int(row[1]) for row in result], types)


def null_examples(
    client: Client,
    database: str,
    table: str,
    partition_keys: Sequence[str],
    name: str,
    column_type: str,
) -> list[str]:
    """A few event ids of loaded rows whose `name` is null."""
    rows = client.query(
        f"SELECT toString(event_id) FROM {database}.{table} "
        f"WHERE _partition_key IN %(keys)s AND ({null_condition(name, column_type)}) "
        f"ORDER BY _partition_key, _position LIMIT {EXAMPLES}",
        parameters={"keys": list(partition_keys)},
    ).result_rows
    return [str(row[0]) for row in rows]


def reason_counts(
    client: Client, database: str, table: str, partition_keys: Sequence[str]
) -> pd.DataFrame:
    """Dead letters of the loaded partitions: one row per number of reasons, with its rows."""
    rows = client.query(
        f"SELECT length(reasons) AS reason_count, count() FROM {database}.{table} "
        "WHERE _partition_key IN %(keys)s GROUP BY reason_count ORDER BY reason_count",
        parameters={"keys": list(partition_keys)},
    ).result_rows
    return pd.DataFrame(
        {
            "reason_count": pd.Series([int(r[0]) for r in rows], dtype="int64"),
            "rows": pd.Series([int(r[1]) for r in rows], dtype="int64"),
        }
    )


def without_reason_examples(
    client: Client, database: str, table: str, partition_keys: Sequence[str]
) -> list[str]:
    """A few dead letters without a reason, as `source:position`."""
    rows = client.query(
        f"SELECT _source, _position FROM {database}.{table} "
        "WHERE _partition_key IN %(keys)s AND empty(reasons) "
        f"ORDER BY _partition_key, _source, _position LIMIT {EXAMPLES}",
        parameters={"keys": list(partition_keys)},
    ).result_rows
    return [f"{source}:{position}" for source, position in rows]
