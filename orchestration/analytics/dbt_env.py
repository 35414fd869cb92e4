"""The dbt project's environment, derived from the platform settings.

`transformations/profiles.yml` reads these variables, so one CLICKHOUSE_URL decides whether dbt
runs on embedded chDB (target `embedded`) or on a ClickHouse server (target `server`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from appconfig import Settings

PROJECT_DIR = Path(__file__).resolve().parents[2] / "transformations"


def dbt_env(settings: Settings) -> dict[str, str]:
    url = urlparse(settings.clickhouse_url)
    env = {
        "RAW_DATABASE": settings.clickhouse_raw_database,
        "DBT_SCHEMA": settings.analytics_schema,
    }
    if url.scheme == "chdb":
        env.update(DBT_TARGET="embedded", CHDB_PATH=unquote(url.path))
    elif url.scheme in ("http", "https"):
        env.update(
            DBT_TARGET="server",
            CLICKHOUSE_HOST=url.hostname or "127.0.0.1",
            CLICKHOUSE_PORT=str(url.port or (8443 if url.scheme == "https" else 8123)),
            CLICKHOUSE_USER=unquote(url.username or "default"),
            CLICKHOUSE_PASSWORD=unquote(url.password or ""),
            CLICKHOUSE_SECURE="true" if url.scheme == "https" else "false",
        )
    else:
        raise ValueError(f"dbt cannot run on CLICKHOUSE_URL scheme {url.scheme!r}")
    return env


def dbt_executable() -> str:
    return str(Path(sys.executable).with_name("dbt"))


def manifest_path() -> Path:
    return PROJECT_DIR / "target" / "manifest.json"


def ensure_manifest() -> Path:
    """`dbt parse` when the manifest is missing or older than a model (parsing needs no database)."""
    manifest = manifest_path()
    sources = [
        p
        for p in PROJECT_DIR.rglob("*")
        if p.suffix in (".sql", ".yml") and "target" not in p.parts
    ]
    if manifest.exists() and all(p.stat().st_mtime <= manifest.stat().st_mtime for p in sources):
        return manifest
    subprocess.run(
        [
            dbt_executable(),
            "parse",
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--quiet",
        ],
        check=True,
        cwd=PROJECT_DIR,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )
    return manifest
