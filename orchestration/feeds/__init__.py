"""The feeds domain: precomputed home feeds (the push half of hybrid fan-out).

The streaming half is a long-running process, not a sensor: `python -m fanout.consumer`.
"""

from __future__ import annotations

import dagster as dg

from appconfig import get_settings
from orchestration.analytics.lineage import reading_models
from orchestration.automation import FEEDS_AFTER
from orchestration.feeds.assets import SOURCE_MODELS, home_feeds
from orchestration.feeds.resources import FeedStoreResource
from orchestration.resources import env_or


def defs() -> dg.Definitions:
    settings = get_settings()
    return dg.Definitions(
        assets=[reading_models(home_feeds, *SOURCE_MODELS, also=FEEDS_AFTER)],
        jobs=[
            dg.define_asset_job(
                "build_feeds",
                selection=dg.AssetSelection.assets(home_feeds),
                description="Rewrite every user's candidate feed from the marts (push half).",
            )
        ],
        resources={
            "feed_store": FeedStoreResource(
                url=env_or("FEED_STORE_URL", settings.feed_store_url),  # type: ignore[arg-type]
                max_length=settings.feed_max_length,
            )
        },
    )
