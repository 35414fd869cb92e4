"""One search request: words -> engine candidates -> privacy filter -> blended ranking -> a page.

Pagination is by offset into the ranked candidate window. The window is the engine's best
`CANDIDATES` text matches, doubled until it covers the page after filtering (at most
`MAX_WINDOW`): pages inside one window never overlap or skip, because the window, the clock the
recency is computed at (carried in the cursor) and the ranking are the same for every page.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from search.documents import Kind
from search.engine import Filters, SearchEngine
from search.privacy import filter_visible
from search.query import ParsedQuery, parse_query
from search.ranking import BLEND, CANDIDATES, Ranked, Weights, rank

MAX_WINDOW = CANDIDATES * 16


@dataclass(frozen=True)
class SearchPage:
    items: list[Ranked]
    next_offset: int | None
    query: ParsedQuery


class SearchService:
    def __init__(self, engine: SearchEngine, refresh_seconds: float = 0.25) -> None:
        self.engine = engine
        self.refresh_seconds = refresh_seconds
        self._refreshed = time.monotonic()
        self._lock = threading.Lock()

    def maybe_refresh(self) -> None:
        """See the indexer's commits: reload the readers at most every `refresh_seconds`."""
        now = time.monotonic()
        if now - self._refreshed < self.refresh_seconds:
            return
        with self._lock:
            if now - self._refreshed >= self.refresh_seconds:
                self.engine.refresh()
                self._refreshed = time.monotonic()

    def search(
        self,
        kind: Kind,
        text: str,
        *,
        graph: Any,
        viewer: int | None,
        now_ts: float,
        filters: Filters | None = None,
        offset: int = 0,
        limit: int = 20,
        weights: Weights = BLEND,
        fuzzy: bool = True,
    ) -> SearchPage:
        """Raises `QueryError` for text with nothing to search, `EngineUnavailable` when the
        index cannot answer."""
        query = parse_query(text)
        self.maybe_refresh()
        filters = filters or Filters()
        window = CANDIDATES
        while True:
            matches = self.engine.match(kind, query, filters, window, fuzzy=fuzzy)
            exhausted = len(matches) < window
            allowed = filter_visible(graph, viewer, matches)
            if exhausted or len(allowed) > offset + limit or window >= MAX_WINDOW:
                break
            window *= 2
        ranked = rank(allowed, now_ts, weights)
        end = offset + limit
        more = len(ranked) > end
        page = ranked[offset:end]
        full = self.engine.hydrate(kind, [r.match for r in page])
        page = [Ranked(m, r.score) for m, r in zip(full, page, strict=True)]
        return SearchPage(page, end if more else None, query)
