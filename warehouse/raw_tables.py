"""Raw tables in ClickHouse, one per event family, with columns derived from the contracts.

Every raw table has the envelope, the union of its family's payload fields, the original JSON
line, and where the line came from (`_source`, `_position`): file and line number, or Kafka
topic/partition and offset. ReplacingMergeTree keyed by the event is a safety net behind the
loader's event_id check: a copy that slips through concurrently collapses at merge time.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from contracts.catalog import ENVELOPE, FAMILIES, family_fields
from contracts.columns import clickhouse_type
from contracts.spec import FieldSpec

DEAD_LETTER_TABLE = "dead_letters"

LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("payload", "String CODEC(ZSTD(3))"),
    ("_source", "LowCardinality(String)"),
    ("_position", "UInt64"),
    ("_partition_key", "LowCardinality(String)"),
    ("_received_at", "DateTime64(3, 'UTC')"),
    ("_ingested_at", "DateTime64(3, 'UTC') DEFAULT now64(3)"),
)


@dataclass(frozen=True)
class RawTable:
    family: str
    fields: tuple[FieldSpec, ...]  # envelope + payload, in column order

    @property
    def name(self) -> str:
        return self.family

    def columns(self) -> list[tuple[str, str]]:
        typed = [(f.name, _column_type(f)) for f in self.fields]
        return typed + list(LINEAGE_COLUMNS)

    def ddl(self, database: str) -> str:
        cols = ",\n    ".join(f"`{n}` {t}" for n, t in self.columns())
        return (
            f"CREATE TABLE IF NOT EXISTS {database}.{self.name} (\n    {cols}\n)\n"
            "ENGINE = ReplacingMergeTree(_ingested_at)\n"
            "PARTITION BY toYYYYMM(occurred_at)\n"
            "ORDER BY (event_type, user_id, occurred_at, event_id)\n"
            f"COMMENT 'raw {self.family} events, one row per valid event_id'"
        )


def _column_type(spec: FieldSpec) -> str:
    if spec.name == "event_type":
        return "LowCardinality(String)"
    return clickhouse_type(spec)


def raw_table(family: str) -> RawTable:
    return RawTable(family, ENVELOPE + family_fields(family))


RAW_TABLES: dict[str, RawTable] = {family: raw_table(family) for family in FAMILIES}


def dead_letter_ddl(database: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {database}.{DEAD_LETTER_TABLE} (
    `_source` LowCardinality(String),
    `_position` UInt64,
    `source_kind` LowCardinality(String),
    `kafka_topic` LowCardinality(Nullable(String)),
    `kafka_partition` Nullable(Int32),
    `kafka_offset` Nullable(Int64),
    `event_id` Nullable(String),
    `event_type` LowCardinality(Nullable(String)),
    `reasons` Array(String),
    `payload` String CODEC(ZSTD(3)),
    `_partition_key` LowCardinality(String),
    `_received_at` DateTime64(3, 'UTC'),
    `_ingested_at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(_ingested_at)
PARTITION BY toYYYYMM(_received_at)
ORDER BY (_source, _position)
COMMENT 'events that failed validation or duplicated an ingested event_id, with every reason'"""


def ensure_raw_tables(client: Client, database: str) -> None:
    """Create the raw database, tables and dead-letter table if they do not exist."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    for table in RAW_TABLES.values():
        client.command(table.ddl(database))
    client.command(dead_letter_ddl(database))
    add_new_columns(client, database)


def add_new_columns(client: Client, database: str) -> None:
    """Optional fields a contract gained since a table was created (e.g. an impression's
    `experiment` and `arm`) become columns of the existing table: `CREATE TABLE IF NOT EXISTS`
    alone would leave an old table without them and every insert failing."""
    existing = {
        (table, name)
        for table, name in client.query(
            "SELECT table, name FROM system.columns WHERE database = %(db)s",
            parameters={"db": database},
        ).result_rows
    }
    for table in RAW_TABLES.values():
        previous = None
        for name, column_type in table.columns():
            if (table.name, name) not in existing and previous is not None:
                client.command(
                    f"ALTER TABLE {database}.{table.name} ADD COLUMN IF NOT EXISTS "
                    f"`{name}` {column_type} AFTER `{previous}`"
                )
            previous = name
