"""Hybrid fan-out: push a new post into its followers' feeds, unless its author is a celebrity.

Pushing costs one write per follower, so an account with millions of followers would turn one
post into millions of writes; those authors' posts are pulled at read time instead (`fanout.pull`).
Which authors count as celebrities is configurable: the `dim_users` tier, or a follower threshold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fanout.pull import RecentPostIndex
from fanout.store import FeedEntry, FeedStore, Push, to_ms

__all__ = ["CelebrityPolicy", "FanOut", "FanOutReport", "NewPost", "to_ms"]

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from appconfig import Settings
    from visibility import VisibilityGraph


@dataclass(frozen=True)
class CelebrityPolicy:
    """Who is never pushed: a tier of `dim_users`, or (when set) a follower threshold."""

    tier: str = "celebrity"
    min_followers: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> CelebrityPolicy:
        return cls(settings.feed_celebrity_tier, settings.feed_pull_min_followers)

    def is_celebrity(self, tier: str | None, follower_count: int) -> bool:
        if self.min_followers is not None:
            return follower_count >= self.min_followers
        return tier == self.tier

    def load(self, client: Client, settings: Settings) -> set[int]:
        """The celebrity authors as of the `dim_users` mart."""
        marts = settings.marts_database
        rows = client.query(
            f"select user_id, tier, ifNull(follower_count, 0) from {marts}.dim_users"
        ).result_rows
        return {int(user) for user, tier, count in rows if self.is_celebrity(tier, int(count))}


@dataclass(frozen=True)
class NewPost:
    post_id: int
    author_id: int
    created_ms: int


@dataclass
class FanOutReport:
    posts: int = 0
    pushed_entries: int = 0  # written to feeds (new; re-deliveries count 0)
    recipients: int = 0  # follower feeds addressed
    celebrity_posts: int = 0  # never pushed: pulled at read time
    withheld: int = 0  # followers skipped by privacy (blocked either way, muted)
    celebrity_authors: set[int] = field(default_factory=set)

    def add(self, other: FanOutReport) -> None:
        self.posts += other.posts
        self.pushed_entries += other.pushed_entries
        self.recipients += other.recipients
        self.celebrity_posts += other.celebrity_posts
        self.withheld += other.withheld
        self.celebrity_authors |= other.celebrity_authors


class FanOut:
    """Decides who receives a post and writes it; the graph and celebrity set are kept current
    by the caller (snapshot from the marts, then streamed relationship events)."""

    def __init__(
        self,
        store: FeedStore,
        graph: VisibilityGraph,
        celebrities: Iterable[int],
        policy: CelebrityPolicy | None = None,
        recent: RecentPostIndex | None = None,
    ) -> None:
        self.store = store
        self.graph = graph
        self.celebrities = set(celebrities)
        self.policy = policy or CelebrityPolicy()
        # non-celebrities' recent posts, to backfill a new follower's feed
        self.recent = recent if recent is not None else RecentPostIndex(per_author=20)

    def is_celebrity(self, author_id: int) -> bool:
        if self.policy.min_followers is not None:  # the live follower count decides
            return len(self.graph.followers(author_id)) >= self.policy.min_followers
        return author_id in self.celebrities

    def recipients(self, author_id: int) -> tuple[list[int], int]:
        """Approved followers allowed to see the author, and how many privacy withheld."""
        followers = self.graph.followers(author_id)
        allowed = [f for f in followers if self.graph.can_see_author(f, author_id)]
        return allowed, len(followers) - len(allowed)

    def plan(self, posts: Iterable[NewPost]) -> tuple[list[Push], FanOutReport]:
        """Every (follower, post) entry to write, one by one (tests, small batches)."""
        groups, report = self.plan_posts(posts)
        pushes = [Push(u, p, a, ms) for p, a, ms, users in groups for u in users]
        return pushes, report

    def plan_posts(
        self, posts: Iterable[NewPost]
    ) -> tuple[list[tuple[int, int, int, list[int]]], FanOutReport]:
        """(post, author, created ms, recipients) per pushed post: the store's fan-out shape."""
        report = FanOutReport()
        groups: list[tuple[int, int, int, list[int]]] = []
        for post in posts:
            report.posts += 1
            if self.graph.is_withheld(post.post_id):
                continue
            if self.is_celebrity(post.author_id):
                report.celebrity_posts += 1
                report.celebrity_authors.add(post.author_id)
                continue
            self.recent.add(FeedEntry(post.post_id, post.author_id, post.created_ms))
            allowed, withheld = self.recipients(post.author_id)
            report.withheld += withheld
            report.recipients += len(allowed)
            if allowed:
                groups.append((post.post_id, post.author_id, post.created_ms, allowed))
        return groups, report

    def publish(self, posts: Iterable[NewPost]) -> FanOutReport:
        """Push new posts to their followers' feeds (idempotent: safe to re-deliver)."""
        groups, report = self.plan_posts(posts)
        report.pushed_entries = self.store.push_posts(groups) if groups else 0
        return report

    def delete(self, post_id: int, author_id: int) -> int:
        """A deleted post leaves every follower's feed and is never pushed again."""
        self.graph.delete_post(post_id)
        self.recent.remove(post_id, author_id)
        return self.store.remove_post(post_id, author_id, self.graph.followers(author_id))

    def relationship_changed(
        self, event_type: str, actor: int, target: int, occurred_at: object = None
    ) -> int:
        """Apply a relationship event to the graph and bring the feeds in line: drop what a user
        may no longer see, backfill a new follow with the author's recent posts (celebrities
        excepted: they are pulled). Returns the feed entries removed or added."""
        changed = 0
        self.graph.apply_relationship(event_type, actor, target, occurred_at)
        # an unfollow or a block ends the follow whatever else came at its instant; a mute hides
        # only if it stands (an unmute at the same instant wins)
        if event_type == "unfollow" or (
            event_type == "mute" and target in self.graph.muted_by_user(actor)
        ):
            changed += self.store.remove_author(actor, target)
        elif event_type == "block":  # hidden both ways
            changed += self.store.remove_author(actor, target)
            changed += self.store.remove_author(target, actor)
        if event_type in ("follow", "follow_approved"):
            follower, author = (actor, target) if event_type == "follow" else (target, actor)
            changed += self.backfill(follower, author)
        return changed

    def backfill(self, follower: int, author: int) -> int:
        if not self.graph.is_following(follower, author) or self.is_celebrity(author):
            return 0
        if not self.graph.can_see_author(follower, author):
            return 0
        posts = [
            e
            for e in self.recent.recent([author], self.recent.per_author)
            if not self.graph.is_withheld(e.post_id)
        ]
        return self.store.push_many(
            Push(follower, e.post_id, e.author_id, e.created_ms) for e in posts
        )
