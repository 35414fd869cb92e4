"""Where MLflow keeps runs, models and artifacts, from the settings.

Embedded profile: a SQLite tracking store and an artifact directory under the data dir, no
server. Services profile: `MLFLOW_TRACKING_URI` (an MLflow server, or PostgreSQL directly). A
`postgresql://` URL is given SQLAlchemy's psycopg (3) driver, the one installed here; the default
`postgresql://` dialect would look for psycopg2.
"""

from __future__ import annotations

from pathlib import Path

from appconfig import Settings


def mlflow_dir(settings: Settings) -> Path:
    return settings.data_dir / "mlflow"


def tracking_uri(settings: Settings) -> str:
    """The tracking (and registry) URI MLflow should use."""
    configured = settings.mlflow_tracking_uri.strip()
    if configured:
        return sqlalchemy_uri(configured)
    directory = mlflow_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'mlflow.db'}"


def artifact_location(settings: Settings, experiment: str) -> str | None:
    """Where a new experiment stores artifacts: under the data dir for a database store (an MLflow
    server decides for itself, so None)."""
    uri = tracking_uri(settings)
    if uri.startswith(("http://", "https://")):
        return None
    root = mlflow_dir(settings) / "artifacts" / experiment
    root.mkdir(parents=True, exist_ok=True)
    return root.as_uri()


def sqlalchemy_uri(uri: str) -> str:
    if uri.startswith("postgresql://"):
        return "postgresql+psycopg://" + uri.removeprefix("postgresql://")
    if uri.startswith("postgres://"):
        return "postgresql+psycopg://" + uri.removeprefix("postgres://")
    return uri
