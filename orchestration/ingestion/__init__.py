"""The ingestion domain: landing files into raw ClickHouse tables."""

from __future__ import annotations

import dagster as dg

from orchestration.ingestion.assets import landing_events, raw_events
from orchestration.ingestion.sensors import build_landing_sensor


def defs() -> dg.Definitions:
    ingest_job = dg.define_asset_job(
        "ingest_landing",
        selection=dg.AssetSelection.assets(raw_events),
        description="Load hourly landing partitions into the raw tables.",
    )
    return dg.Definitions(
        assets=[landing_events, raw_events],
        jobs=[ingest_job],
        sensors=[build_landing_sensor(ingest_job)],
    )
