"""ClickHouse: clients by URL and the raw tables the ingestion writes."""

from warehouse.client import WarehouseUnavailable, clickhouse_client, open_client
from warehouse.raw_tables import DEAD_LETTER_TABLE, RAW_TABLES, ensure_raw_tables

__all__ = [
    "DEAD_LETTER_TABLE",
    "RAW_TABLES",
    "WarehouseUnavailable",
    "clickhouse_client",
    "ensure_raw_tables",
    "open_client",
]
