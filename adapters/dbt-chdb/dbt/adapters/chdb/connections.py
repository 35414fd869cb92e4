"""Credentials and connections: dbt-clickhouse's HTTP client wrapper over a chDB client."""

from __future__ import annotations

from dataclasses import dataclass

import clickhouse_connect
from dbt.adapters.clickhouse.connections import ClickHouseConnectionManager
from dbt.adapters.clickhouse.credentials import ClickHouseCredentials
from dbt.adapters.clickhouse.httpclient import ChHttpClient
from dbt.adapters.clickhouse.logger import logger
from dbt_common.exceptions import DbtRuntimeError

LOCK_HINT = (
    "chDB allows one process per data directory: another process (a Dagster run, the API "
    "server, a notebook) probably holds {path}. Stop it and run dbt again."
)


@dataclass
class ChdbCredentials(ClickHouseCredentials):
    """ClickHouse credentials plus the chDB data directory."""

    path: str = ""

    @property
    def type(self) -> str:
        return "chdb"

    @property
    def unique_field(self) -> str:
        return self.path

    def _connection_keys(self):
        return ("path", "schema", "retries", "custom_settings")


class ChdbClient(ChHttpClient):
    """dbt-clickhouse's client wrapper; only the underlying clickhouse-connect client differs."""

    def _create_client(self, credentials):  # type: ignore[override]
        if not credentials.path:
            raise DbtRuntimeError("profile type 'chdb' needs `path`: the chDB data directory")
        settings = {k: v for k, v in self._conn_settings.items() if k != "session_id"}
        try:
            return clickhouse_connect.get_client(
                interface="chdb", path=credentials.path, settings=settings
            )
        except Exception as error:
            raise DbtRuntimeError(f"{error}\n{LOCK_HINT.format(path=credentials.path)}") from error

    def close(self):
        self._client.close()


class ChdbConnectionManager(ClickHouseConnectionManager):
    TYPE = "chdb"

    @classmethod
    def open(cls, connection):
        if connection.state == "open":
            logger.debug("Connection is already open, skipping open.")
            return connection
        credentials = cls.get_credentials(connection.credentials)
        return cls.retry_connection(
            connection,
            connect=lambda: ChdbClient(credentials),
            logger=logger,
            retry_limit=credentials.retries,
            retryable_exceptions=[],
        )
