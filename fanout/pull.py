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

from fanout.store import FeedEntry, to_ms

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from appconfig import Settings
    from visibility import VisibilityGraph


class RecentPostIndex:
    """author -> that author's recent posts, newest first. Readers pull celebrities' posts from
    it; the fan-out consumer keeps one of everyone else's to backfill a new follower's feed."""

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
        """A post seen on the stream before the next refresh. Each author's list is replaced,
        never changed in place, so a reader iterating the old one is undisturbed."""
        with self._lock:
            items = [e for e in self._posts.get(entry.author_id, []) if e.post_id != entry.post_id]
            items.append(entry)
            items.sort(key=lambda e: (e.created_ms, e.member), reverse=True)
            self._posts[entry.author_id] = items[: self.per_author]

    def remove(self, post_id: int, author_id: int) -> None:
        with self._lock:
            if author_id in self._posts:
                items = [e for e in self._posts[author_id] if e.post_id != post_id]
                self._posts[author_id] = items

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
            if not graph.is_withheld(e.post_id)
        ][:limit]

    def refresh(
        self,
        client: Client,
        settings: Settings,
        authors: Iterable[int],
        *,
        as_of: datetime | None = None,
    ) -> int:
        """Reload these authors' posts from `dim_posts`: the window ends at `as_of`, by default
        the newest post in the mart (so replayed or generated data has a window too). Returns
        the number of posts indexed."""
        chosen = sorted(set(authors))
        if as_of is None:
            as_of = newest_post_at(client, settings)
        entries = (
            recent_posts(client, settings, as_of, self.per_author, authors=chosen)
            if chosen and as_of is not None
            else []
        )
        self.replace(entries, as_of)
        return len(entries)


def recent_posts(
    client: Client,
    settings: Settings,
    as_of: datetime,
    per_author: int,
    *,
    authors: Iterable[int] | None = None,
    exclude_authors: Iterable[int] = (),
) -> list[FeedEntry]:
    """The newest `per_author` non-deleted posts per author in the window ending at `as_of`."""
    marts = settings.marts_database
    start = as_of - timedelta(hours=settings.feed_window_hours)
    only = "and author_id in {authors:Array(Int64)}" if authors is not None else ""
    rows = client.query(
        f"""
        select post_id, author_id, toUnixTimestamp64Milli(toDateTime64(created_at, 3))
        from {marts}.dim_posts
        where not is_deleted {only} and author_id not in {{exclude:Array(Int64)}}
          and toUnixTimestamp64Milli(toDateTime64(created_at, 3))
              between {{start_ms:Int64}} and {{end_ms:Int64}}
        order by author_id, created_at desc
        limit {{per_author:UInt32}} by author_id
        """,
        parameters={
            **({"authors": sorted(authors)} if authors is not None else {}),
            "exclude": sorted(exclude_authors),
            "start_ms": to_ms(start),
            "end_ms": to_ms(as_of),
            "per_author": per_author,
        },
    ).result_rows
    return [FeedEntry(int(p), int(a), int(ms)) for p, a, ms in rows]


def newest_post_at(client: Client, settings: Settings) -> datetime | None:
    marts = settings.marts_database
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
