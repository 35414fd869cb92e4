"""The search domain (owner: search and discovery): the search indexes built from the marts.

The streaming half is a long-running process, not a sensor: `python -m search.indexer`.
"""

from __future__ import annotations

import dagster as dg

from orchestration.analytics.lineage import reading_models
from orchestration.search.assets import SOURCE_MODELS, search_indexes


def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[reading_models(search_indexes, *SOURCE_MODELS)],
        jobs=[
            dg.define_asset_job(
                "build_search",
                selection=dg.AssetSelection.assets(search_indexes),
                description="Index every post, user, hashtag and location of the marts for "
                "search (and autocomplete on Redis in the services profile).",
            )
        ],
    )
