"""The streaming domain: Kafka topics into the same raw tables, through the same loader."""

from __future__ import annotations

import dagster as dg

from orchestration.streaming.kafka_ingest import (
    consumer_lag_check,
    kafka_events,
    kafka_ingest_job,
    kafka_lag_sensor,
)


def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[kafka_events],
        asset_checks=[consumer_lag_check],
        jobs=[kafka_ingest_job],
        sensors=[kafka_lag_sensor],
    )
