"""The pull half of hybrid fan-out: celebrities' recent posts, merged into a feed at read time.

Celebrity posts are never pushed, so a reader asks this in-memory index for the recent posts of
the celebrities the viewer follows. The index holds only celebrities' posts from a recent window
(a few per author), so it stays small and is refreshed from `dim_posts` in the background.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from feeds.fanout import to_ms
from feeds.store import FeedEntry

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from appconfig import Settings
    from visibility import VisibilityGraph


class CelebrityPostIndex:
    """author -> that celebrity's recent posts, newest first (thread-safe swaps on refresh)."""

    def __init__(self, per_author: int = 50) -> None:
        self.per_author = per_author
        self._posts: dict[int, list[FeedEntry]] = {}
        self._lock = threading.Lock()
        self.as_of: datetime | None = None

    @property
    def authors(self) -> set[int]:
        return set(self._posts)

    def replace(self, entries: Iterable[FeedEntry], as_of: datetime | None = None) -> None:
        posts: dict[int, list[FeedEntry]] = {}
        for entry in entries:
            posts.setdefault(entry.author_id, []).append(entry)
        for items in posts.values():
            items.sort(key=lambda e: (e.created_ms, e.member), reverse=True)
            del items[self.per_author :]
        with self._lock:
            self._posts = posts
            self.as_of = as_of

    def add(self, entry: FeedEntry) -> None:
        """A celebrity post seen on the stream before the next refresh."""
        with self._lock:
            items = [e for e in self._posts.get(entry.author_id, []) if e.post_id != entry.post_id]
            items.append(entry)
            items.sort(key=lambda e: (e.created_ms, e.member), reverse=True)
            self._posts = {**self._posts, entry.author_id: items[: self.per_author]}

    def remove(self, post_id: int, author_id: int) -> None:
        with self._lock:
            if author_id in self._posts:
                items = [e for e in self._posts[author_id] if e.post_id != post_id]
                self._posts = {**self._posts, author_id: items}

    def recent(
        self, authors: Iterable[int], limit: int, max_created_ms: int | None = None
    ) -> list[FeedEntry]:
        """The newest `limit` posts of these authors (at or before `max_created_ms`)."""
        posts = self._posts
        lists = [posts[a] for a in authors if a in posts]
        merged = heapq.merge(*lists, key=lambda e: (e.created_ms, e.member), reverse=True)
        out: list[FeedEntry] = []
        for entry in merged:
            if max_created_ms is not None and entry.created_ms > max_created_ms:
                continue
            out.append(entry)
            if len(out) >= limit:
                break
        return out

    def for_viewer(
        self,
        viewer: int,
        graph: VisibilityGraph,
        limit: int,
        max_created_ms: int | None = None,
    ) -> list[FeedEntry]:
        """Recent posts of the celebrities the viewer follows and may see, not deleted."""
        authors = [a for a in graph.follows(viewer) if a in self._posts]
        visible = [a for a in authors if graph.can_see_author(viewer, a)]
        return [
            e
            for e in self.recent(visible, limit + 50, max_created_ms)
            if not graph.is_deleted(e.post_id)
        ][:limit]

    def refresh(
        self,
        client: Client,
        settings: Settings,
        celebrities: Iterable[int],
        *,
        as_of: datetime | None = None,
    ) -> int:
        """Reload from `dim_posts`: the window ends at `as_of`, by default the newest post
        in the mart (so replayed or generated data has a window too). Returns posts indexed."""
        authors = sorted(set(celebrities))
        marts = f"{settings.analytics_schema}_marts"
        if as_of is None:
            as_of = newest_post_at(client, settings)
        if not authors or as_of is None:
            self.replace([], as_of)
            return 0
        start = as_of - timedelta(hours=settings.feed_window_hours)
        rows = client.query(
            f"""
            select post_id, author_id, toUnixTimestamp64Milli(toDateTime64(created_at, 3))
            from {marts}.dim_posts
            where not is_deleted and author_id in {{authors:Array(Int64)}}
              and toUnixTimestamp64Milli(toDateTime64(created_at, 3))
                  between {{start_ms:Int64}} and {{end_ms:Int64}}
            order by author_id, created_at desc
            limit {{per_author:UInt32}} by author_id
            """,
            parameters={
                "authors": authors,
                "start_ms": to_ms(start),
                "end_ms": to_ms(as_of),
                "per_author": self.per_author,
            },
        ).result_rows
        entries = [FeedEntry(int(p), int(a), int(ms)) for p, a, ms in rows]
        self.replace(entries, as_of)
        return len(entries)


def newest_post_at(client: Client, settings: Settings) -> datetime | None:
    marts = f"{settings.analytics_schema}_marts"
    rows = client.query(f"select max(created_at), count() from {marts}.dim_posts").result_rows
    if not rows or not rows[0][1]:
        return None
    newest: datetime = rows[0][0]
    # chDB returns naive datetimes for DateTime64(3, 'UTC')
    return newest if newest.tzinfo else newest.replace(tzinfo=UTC)


def merge_candidates(
    pushed: Sequence[FeedEntry], pulled: Sequence[FeedEntry], limit: int
) -> list[FeedEntry]:
    """Pushed and pulled candidates as one newest-first list, each post once."""
    seen: set[int] = set()
    out: list[FeedEntry] = []
    for entry in sorted([*pushed, *pulled], key=lambda e: (e.created_ms, e.member), reverse=True):
        if entry.post_id in seen:
            continue
        seen.add(entry.post_id)
        out.append(entry)
        if len(out) >= limit:
            break
    return out


def window_start_ms(as_of: datetime, settings: Settings) -> int:
    return to_ms(as_of - timedelta(hours=settings.feed_window_hours))
