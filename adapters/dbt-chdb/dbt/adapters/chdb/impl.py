"""The adapter: dbt-clickhouse's, with the chDB connection manager.

The class name must be `ChdbAdapter`: dbt derives the module `dbt.adapters.chdb` from it when it
records a model run.
"""

from dbt.adapters.chdb.connections import ChdbConnectionManager
from dbt.adapters.clickhouse.impl import ClickHouseAdapter


class ChdbAdapter(ClickHouseAdapter):
    ConnectionManager = ChdbConnectionManager  # type: ignore[assignment]

    @classmethod
    def type(cls) -> str:
        return "chdb"
