"""The code location: every domain's definitions, plus resources and the executor.

The in-process executor keeps each run's steps in one process, which embedded chDB needs
(one process per data directory); the instance allows one run at a time (see `instance.py`).
"""

from __future__ import annotations

import dagster as dg

from orchestration import (
    analytics,
    experiments,
    features,
    feeds,
    ingestion,
    media,
    models,
    moderation,
    notifications,
    search,
    streaming,
)
from orchestration.automation import with_automation
from orchestration.resources import build_resources


@dg.definitions
def defs() -> dg.Definitions:
    platform = dg.Definitions.merge(
        ingestion.defs(),
        analytics.defs(),
        streaming.defs(),
        media.defs(),
        notifications.defs(),
        moderation.defs(),
        features.defs(),
        feeds.defs(),
        models.defs(),
        search.defs(),
        experiments.defs(),
        dg.Definitions(resources=build_resources(), executor=dg.in_process_executor),
    )
    return with_automation(platform)
