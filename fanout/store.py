"""The feed store interface: one capped, newest-first list of candidate posts per user.

Two implementations share these semantics (Redis sorted sets for the services profile, SQLite
for the embedded one), so the fan-out code, the API and the tests are written once:

- an entry is (post id, author id, created ms); a user's feed holds each post at most once, so
  pushing the same entry again changes nothing (at-least-once consumers rely on this);
- entries are ordered by created ms, newest first; ties break on the member string
  `"<post>:<author>"`, descending (what Redis does for equal scores);
- a feed keeps at most `max_length` entries: the oldest are dropped on write;
- every change to a user's feed increments that user's version, so a reader can cache a
  ranked feed per user and drop it when the version moves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


class FeedStoreUnavailable(RuntimeError):
    """The backend cannot be reached; callers fall back (e.g. pull-only feeds) instead of 5xx.

    `partial`: only this call failed (a cache miss while the database behind the cache is down);
    other users' feeds are still served, so a caller should not stop using the store.
    """

    def __init__(self, message: str, *, partial: bool = False) -> None:
        super().__init__(message)
        self.partial = partial


class Push(NamedTuple):
    """One entry to write into one user's feed."""

    user_id: int
    post_id: int
    author_id: int
    created_ms: int


@dataclass(frozen=True, slots=True)
class FeedEntry:
    post_id: int
    author_id: int
    created_ms: int

    @property
    def member(self) -> str:
        return encode_member(self.post_id, self.author_id)


def to_ms(moment: datetime) -> int:
    """Feed scores: milliseconds since 1970 (exact in a double, so Lua and SQLite agree)."""
    return int(moment.timestamp() * 1000)


def encode_member(post_id: int, author_id: int) -> str:
    """The author rides along with the post so a reader can filter by author without a lookup."""
    return f"{post_id}:{author_id}"


def decode_member(member: str | bytes, created_ms: float) -> FeedEntry:
    text = member.decode() if isinstance(member, bytes) else member
    post, _, author = text.partition(":")
    return FeedEntry(int(post), int(author), int(created_ms))


def group_by_user(
    entries: Iterable[Push | tuple[int, int, int, int]],
) -> dict[int, list[FeedEntry]]:
    grouped: dict[int, list[FeedEntry]] = {}
    for user_id, post_id, author_id, created_ms in entries:
        grouped.setdefault(int(user_id), []).append(
            FeedEntry(int(post_id), int(author_id), int(created_ms))
        )
    return grouped


class FeedStore(ABC):
    """Per-user capped feeds; every method raises FeedStoreUnavailable when the backend is down."""

    max_length: int

    @abstractmethod
    def push_many(self, entries: Iterable[Push | tuple[int, int, int, int]]) -> int:
        """Add entries to users' feeds; returns how many were new (re-pushes count 0)."""

    def push_post(
        self, post_id: int, author_id: int, created_ms: int, user_ids: Iterable[int]
    ) -> int:
        """One new post into many users' feeds (the fan-out shape); returns how many were new."""
        return self.push_posts([(post_id, author_id, created_ms, list(user_ids))])

    def push_posts(self, posts: Iterable[tuple[int, int, int, Sequence[int]]]) -> int:
        """Several (post, author, created ms, recipients) at once; as `push_many`."""
        return self.push_many(
            Push(user, post, author, created)
            for post, author, created, users in posts
            for user in users
        )

    @abstractmethod
    def replace_many(self, feeds: Mapping[int, Iterable[FeedEntry]]) -> int:
        """Replace whole feeds (precompute); returns the number of entries kept."""

    def replace_feed(self, user_id: int, entries: Iterable[FeedEntry]) -> int:
        return self.replace_many({user_id: entries})

    @abstractmethod
    def read(self, user_id: int, limit: int, max_created_ms: int | None = None) -> list[FeedEntry]:
        """Newest first, at most `limit`, only entries created at or before `max_created_ms`."""

    def read_with_status(
        self, user_id: int, limit: int, max_created_ms: int | None = None
    ) -> tuple[list[FeedEntry], str | None]:
        """As `read`, and why the answer is degraded (None: it is not). A tiered store answers
        from its slower tier when the fast one is down, and says so when that was too slow."""
        return self.read(user_id, limit, max_created_ms), None

    @abstractmethod
    def remove_post(self, post_id: int, author_id: int, follower_ids: Iterable[int]) -> int:
        """Drop a (deleted or no longer visible) post from these users' feeds; returns removals."""

    @abstractmethod
    def remove_author(self, user_id: int, author_id: int) -> int:
        """Drop every post of one author from one user's feed (unfollow, block, mute)."""

    @abstractmethod
    def version(self, user_id: int) -> int:
        """Increments on every change of the user's feed; 0 for a user never written."""

    @abstractmethod
    def length(self, user_id: int) -> int: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise FeedStoreUnavailable unless the backend answers."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> FeedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
