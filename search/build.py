"""The batch build: every post, user, hashtag and location of the marts into the search index
(tantivy or OpenSearch, as `search.engines` picks from the settings) and, with `REDIS_URL`, the
autocomplete sorted sets. `python -m search.build [--rebuild]`; in Dagster, the asset `search/indexes` downstream of the dbt marts.

Upserts by entity id, so a re-run changes nothing and documents the streaming indexer added for
posts the marts do not have yet stay. The marts can be older than the stream: where the index
already knows a post is deleted or an account private, the stricter state is kept (a later
stream event or a later build with fresher marts settles it).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

from appconfig import Settings, get_settings
from search.autocomplete import Completion, RedisAutocomplete
from search.documents import MartDocuments, load_from_marts
from search.engine import SearchEngine
from search.engines import open_engine
from warehouse import clickhouse_client


@dataclass
class BuildReport:
    documents: dict[str, int] = field(default_factory=dict)
    read_seconds: float = 0.0
    index_seconds: float = 0.0
    index_bytes: int = 0
    autocomplete_entries: int = 0
    kept_tombstones: int = 0
    kept_private: int = 0

    @property
    def docs_per_second(self) -> float:
        return sum(self.documents.values()) / self.index_seconds if self.index_seconds else 0.0


def completions(docs: MartDocuments) -> list[Completion]:
    return [Completion("user", u.username, u.user_id, u.followers) for u in docs.users] + [
        Completion("hashtag", f"#{h.hashtag}", None, h.posts) for h in docs.hashtags
    ]


def index_documents(
    engine: SearchEngine, docs: MartDocuments, report: BuildReport | None = None
) -> BuildReport:
    """Write `docs`, keeping the stricter of index and marts for deletions and privacy."""
    report = report or BuildReport()
    started = time.perf_counter()
    tombstones = engine.deleted_posts()
    private = engine.private_users()
    report.kept_private = sum(1 for u in docs.users if u.user_id in private and not u.is_private)
    docs.users = [replace(u, is_private=True) if u.user_id in private else u for u in docs.users]
    private |= {u.user_id for u in docs.users if u.is_private}
    posts = []
    for p in docs.posts:
        if p.post_id in tombstones and not p.deleted:
            report.kept_tombstones += 1
            p = replace(p, deleted=True)
        if p.author_id in private and not p.author_private:
            p = replace(p, author_private=True)
        posts.append(p)
    docs.posts = posts
    for kind, items in docs.by_kind():
        report.documents[kind] = engine.upsert(items)
    report.index_seconds = time.perf_counter() - started
    report.index_bytes = engine.size_bytes()
    return report


def build_from_marts(
    settings: Settings,
    *,
    rebuild: bool = False,
    autocomplete: Any | None = None,
) -> BuildReport:
    """Read the marts (closing the warehouse client at once), then index them."""
    report = BuildReport()
    started = time.perf_counter()
    with clickhouse_client(settings.clickhouse_url) as client:
        docs = load_from_marts(client, settings)
    report.read_seconds = time.perf_counter() - started
    engine = open_engine(settings, rebuild=rebuild)
    index_documents(engine, docs, report)
    if autocomplete is None and settings.redis_url:
        autocomplete = RedisAutocomplete.from_url(settings.redis_url)
    if autocomplete is not None:
        if rebuild:
            autocomplete.clear()
        report.autocomplete_entries = autocomplete.add(completions(docs))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="drop the index first")
    args = parser.parse_args(argv)
    report = build_from_marts(get_settings(), rebuild=args.rebuild)
    print(report, f"docs/s={report.docs_per_second:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
