"""Hourly partitions of the landing zone (the hour a record was received)."""

from __future__ import annotations

import dagster as dg

from appconfig import get_settings


def hourly_partitions() -> dg.HourlyPartitionsDefinition:
    return dg.HourlyPartitionsDefinition(
        start_date=get_settings().ingest_partitions_start, timezone="UTC", end_offset=1
    )
