"""The media domain: uploaded originals into renditions and `media.objects` metadata rows."""

from __future__ import annotations

import dagster as dg

from orchestration.media.assets import media_objects
from orchestration.media.moderation import moderation_queue_backlog, moderation_queue_sensor
from orchestration.media.sensors import build_media_sensor


def defs() -> dg.Definitions:
    media_job = dg.define_asset_job(
        "process_media",
        selection=dg.AssetSelection.assets(media_objects),
        description="Renditions, metadata and quality features of posts' media not yet processed.",
    )
    return dg.Definitions(
        assets=[media_objects],
        asset_checks=[moderation_queue_backlog],
        jobs=[media_job],
        sensors=[build_media_sensor(media_job), moderation_queue_sensor],
    )
