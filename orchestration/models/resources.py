"""MLflow as a Dagster resource: the tracking/registry URI from MLFLOW_TRACKING_URI or the
settings' embedded default (SQLite under the data dir)."""

from __future__ import annotations

import dagster as dg

from appconfig import get_settings
from ml.tracking import artifact_location, sqlalchemy_uri, tracking_uri


class MlflowResource(dg.ConfigurableResource):
    """Empty `tracking_uri` = the settings' default (`ml.tracking.tracking_uri`)."""

    tracking_uri: str = ""

    def uri(self) -> str:
        return (
            sqlalchemy_uri(self.tracking_uri) if self.tracking_uri else tracking_uri(get_settings())
        )

    def artifact_location(self, experiment: str) -> str | None:
        """Where a new experiment keeps artifacts (under the data dir unless a server decides)."""
        if self.tracking_uri.startswith(("http://", "https://")):
            return None
        return artifact_location(get_settings(), experiment)
