"""The Dagster instance (DAGSTER_HOME/dagster.yaml), derived from the settings.

Embedded: SQLite storage, one run at a time (chDB). Services: PostgreSQL storage.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import yaml

from appconfig import Settings
from orchestration.sqlite_storage import tune_sqlite_storage


def instance_config(settings: Settings) -> dict:
    config: dict = {
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
        "concurrency": {
            "runs": {"max_concurrent_runs": 1 if settings.is_embedded_clickhouse else 4}
        },
        "run_monitoring": {"enabled": True, "poll_interval_seconds": 30},
    }
    url = urlparse(settings.metadata_db_url)
    if url.scheme.startswith("postgresql"):
        config["storage"] = {
            "postgres": {
                "postgres_db": {
                    "hostname": url.hostname,
                    "port": url.port or 5432,
                    "username": url.username,
                    "password": {"env": "DAGSTER_PG_PASSWORD"},
                    "db_name": url.path.lstrip("/") or "dagster",
                }
            }
        }
        os.environ["DAGSTER_PG_PASSWORD"] = url.password or ""  # read by dagster.yaml's `env`
    else:
        # Dagster's SQLite storage, same files, with one engine per event-log file instead of
        # one per stored event (orchestration/sqlite_event_log.py)
        config["storage"] = {
            "custom": {
                "module": "orchestration.sqlite_event_log",
                "class": "CachedEngineSqliteStorage",
                "config": {"base_dir": str(settings.dagster_home / "storage")},
            }
        }
    return config


def ensure_dagster_home(settings: Settings) -> Path:
    """Write dagster.yaml for these settings and point DAGSTER_HOME at it."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = instance_config(settings)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if "custom" in config["storage"]:
        tune_sqlite_storage(Path(config["storage"]["custom"]["config"]["base_dir"]))
    os.environ["DAGSTER_HOME"] = str(home)
    return home
