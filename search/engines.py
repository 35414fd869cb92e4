"""The one place that picks the search engine from the settings (`SEARCH_ENGINE`,
`OPENSEARCH_URL`): OpenSearch in the services profile, tantivy under `<data dir>/search` in the
embedded one. The API, the batch build and the streaming indexer all open their engine here, so
they always read and write the same indexes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.engine import SearchEngine

if TYPE_CHECKING:
    from appconfig import Settings


def describe(settings: Settings) -> str:
    if settings.search_engine == "opensearch":
        return f"OpenSearch at {settings.opensearch_url} ({settings.opensearch_index_prefix}-*)"
    return f"tantivy under {settings.data_dir / 'search'}"


def engine_exists(settings: Settings) -> bool:
    """Whether the indexes were built (the API answers 503 until they are). Raises
    `EngineUnavailable` when the engine cannot be asked."""
    if settings.search_engine == "opensearch":
        engine = _opensearch(settings, create=False)
        try:
            return engine.exists()
        finally:
            engine.close()
    from search.tantivy_engine import TantivyEngine

    return TantivyEngine.exists(settings.data_dir / "search")


def open_engine(settings: Settings, *, rebuild: bool = False) -> SearchEngine:
    """The engine the settings name, its indexes created if missing (dropped first with
    `rebuild`)."""
    if settings.search_engine == "opensearch":
        engine = _opensearch(settings, create=False)
        if rebuild:
            engine.remove()
        engine.ensure_indexes()
        return engine
    from search.tantivy_engine import TantivyEngine

    root = settings.data_dir / "search"
    if rebuild:
        TantivyEngine.remove(root)
    return TantivyEngine(root)


def _opensearch(settings: Settings, *, create: bool) -> OpenSearchEngine:
    from search.opensearch_engine import OpenSearchEngine

    assert settings.opensearch_url, "SEARCH_ENGINE=opensearch needs OPENSEARCH_URL"
    return OpenSearchEngine(
        settings.opensearch_url, settings.opensearch_index_prefix, create=create
    )


if TYPE_CHECKING:
    from search.opensearch_engine import OpenSearchEngine
