"""The search engine interface: what the service, the batch build and the indexer ask of it.

Two implementations: `search.tantivy_engine.TantivyEngine` (embedded profile, on disk) and
`search.opensearch_engine.OpenSearchEngine` (services profile); `search.engines` picks one from
the settings. Text relevance comes from the engine (BM25 and a one-typo fuzzy match); blending
it with engagement and recency, and the privacy filter, happen above it (`search.ranking`, `search.privacy`) so every engine ranks and
filters the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from search.documents import Doc, Kind, PostDoc
from search.query import ParsedQuery


class EngineUnavailable(RuntimeError):
    """The index cannot be read or written now (not built yet, locked, damaged): a 503."""


@dataclass(frozen=True)
class Filters:
    """Post filters: created within [since_ts, until_ts] (epoch seconds), by one author, at one
    location. Ignored for other kinds."""

    since_ts: int | None = None
    until_ts: int | None = None
    author_id: int | None = None
    location_id: int | None = None


@dataclass(frozen=True)
class Match:
    doc: Doc
    text_score: float  # the engine's relevance (BM25 plus fuzzy), larger is better


class SearchEngine(Protocol):
    def upsert(self, docs: Iterable[Doc]) -> int:
        """Write documents, replacing any with the same kind and key; durable on return."""
        ...

    def get(self, kind: Kind, keys: Iterable[str]) -> dict[str, Doc]:
        """The stored documents with these keys (missing keys are absent)."""
        ...

    def match(
        self, kind: Kind, query: ParsedQuery, filters: Filters, limit: int, *, fuzzy: bool = True
    ) -> list[Match]:
        """Up to `limit` documents matching any word of the query, best text match first
        (post tombstones never match)."""
        ...

    def hydrate(self, kind: Kind, matches: list[Match]) -> list[Match]:
        """Matches with whole documents (an engine may return thin ones from `match`)."""
        ...

    def posts_of(self, author_id: int) -> list[PostDoc]:
        """Every post document of one author (tombstones included)."""
        ...

    def deleted_posts(self) -> set[int]:
        """Post ids kept as tombstones."""
        ...

    def private_users(self) -> set[int]:
        """User ids whose document says private."""
        ...

    def count(self, kind: Kind) -> int: ...

    def refresh(self) -> None:
        """See writes committed by other processes (a no-op where reads are always current)."""
        ...

    def size_bytes(self) -> int: ...
