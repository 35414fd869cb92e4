"""The visibility graph: follows, blocks, mutes, private accounts and deleted posts in memory.

Every surface that shows one user's content to another (home feed, Explore, stories, who to
follow) asks this one object, so a privacy rule is written once. It is loaded from the marts and
kept current by the mutation hooks, which streaming consumers call as relationship events arrive.

The rules:
- a viewer never sees an author they blocked, who blocked them, or whom they muted;
- a private author's content is seen only by approved followers (and the author);
- deleted posts are seen by no one;
- posts hidden by moderation (`dim_posts.is_moderation_hidden`, or a streamed `post_moderated`
  decision) are seen by no one either, their author included: every surface asks
  `can_see_post` / `post_checker` / `visible_posts_mask` / `is_withheld`, so none can forget it;
- stories whose media moderation hid (`fct_story_views.is_moderation_hidden`, or a streamed
  `story_moderated` decision) are seen by no one (`can_see_story`, `visible_stories_mask`);
- a suggestion is never the viewer, someone they follow, or someone hidden either way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from appconfig import Settings

_EMPTY: frozenset[int] = frozenset()


class VisibilityGraph:
    """Who may see whose content, as of the marts plus any streamed changes since."""

    def __init__(self) -> None:
        self._following: defaultdict[int, set[int]] = defaultdict(set)  # follower -> followees
        self._followers: defaultdict[int, set[int]] = defaultdict(set)  # followee -> followers
        self._blocked: defaultdict[int, set[int]] = defaultdict(set)  # blocker -> blocked
        self._blocked_by: defaultdict[int, set[int]] = defaultdict(set)  # blocked -> blockers
        self._muted: defaultdict[int, set[int]] = defaultdict(set)  # muter -> muted
        self._private: set[int] = set()
        self._deleted_posts: set[int] = set()
        self._moderated_posts: set[int] = set()  # hidden by a moderation decision
        self._moderated_stories: set[int] = set()  # stories hidden by a moderation decision
        self._instant = _Instant()  # the relationship events of the latest instant applied

    # --- construction --------------------------------------------------------------------

    @classmethod
    def from_edges(
        cls,
        *,
        follows: Iterable[tuple[int, int]] = (),
        blocks: Iterable[tuple[int, int]] = (),
        mutes: Iterable[tuple[int, int]] = (),
        private_users: Iterable[int] = (),
        deleted_posts: Iterable[int] = (),
        moderated_posts: Iterable[int] = (),
        moderated_stories: Iterable[int] = (),
    ) -> VisibilityGraph:
        """From (follower, followee), (blocker, blocked) and (muter, muted) pairs.

        Follows are taken as current (approved) follows; a block does not remove them here, but
        a blocked pair is hidden either way regardless.
        """
        graph = cls()
        for follower, followee in follows:
            graph._following[int(follower)].add(int(followee))
            graph._followers[int(followee)].add(int(follower))
        for blocker, blocked in blocks:
            graph._blocked[int(blocker)].add(int(blocked))
            graph._blocked_by[int(blocked)].add(int(blocker))
        for muter, muted in mutes:
            graph._muted[int(muter)].add(int(muted))
        graph._private.update(int(user) for user in private_users)
        graph._deleted_posts.update(int(post) for post in deleted_posts)
        graph._moderated_posts.update(int(post) for post in moderated_posts)
        graph._moderated_stories.update(int(story) for story in moderated_stories)
        return graph

    @classmethod
    def from_clickhouse(cls, client: Client, settings: Settings) -> VisibilityGraph:
        """Read the current state from the dbt models (`int_follow_graph`, `int_blocks`,
        `int_mutes`, `dim_users.is_private`, `dim_posts.is_deleted`, `dim_posts.is_moderation_hidden`,
        `fct_story_views.is_moderation_hidden`)."""
        intermediate = settings.intermediate_database
        marts = settings.marts_database

        def pairs(sql: str) -> list[tuple[int, int]]:
            return [(int(a), int(b)) for a, b in client.query(sql).result_rows]

        def ids(sql: str) -> list[int]:
            return [int(row[0]) for row in client.query(sql).result_rows]

        return cls.from_edges(
            follows=pairs(f"select follower_id, followee_id from {intermediate}.int_follow_graph"),
            blocks=pairs(f"select blocker_id, blocked_id from {intermediate}.int_blocks"),
            mutes=pairs(f"select muter_id, muted_id from {intermediate}.int_mutes"),
            private_users=ids(f"select user_id from {marts}.dim_users where is_private"),
            deleted_posts=ids(f"select post_id from {marts}.dim_posts where is_deleted"),
            moderated_posts=ids(
                f"select post_id from {marts}.dim_posts where is_moderation_hidden"
            ),
            moderated_stories=ids(
                f"select story_id from {marts}.fct_story_views where is_moderation_hidden"
            ),
        )

    # --- questions -------------------------------------------------------------------------

    def follows(self, viewer: int) -> set[int]:
        """Accounts the viewer follows now (approved follows only)."""
        return set(self._following.get(viewer, _EMPTY))

    def followers(self, author: int) -> set[int]:
        return set(self._followers.get(author, _EMPTY))

    def is_following(self, viewer: int, author: int) -> bool:
        return author in self._following.get(viewer, _EMPTY)

    def is_private(self, user: int) -> bool:
        return user in self._private

    def is_deleted(self, post_id: int) -> bool:
        return post_id in self._deleted_posts

    def is_moderated(self, post_id: int) -> bool:
        """Hidden by a moderation decision (NSFW media, a reviewer)."""
        return post_id in self._moderated_posts

    def is_withheld(self, post_id: int) -> bool:
        """Seen by no one: deleted by its author or hidden by moderation."""
        return post_id in self._deleted_posts or post_id in self._moderated_posts

    def is_story_moderated(self, story_id: int) -> bool:
        """A story hidden by a moderation decision: seen by no one, its author included."""
        return story_id in self._moderated_stories

    def hidden_authors(self, viewer: int) -> set[int]:
        """Blocked by the viewer, blocking the viewer, or muted by the viewer."""
        return (
            set(self._blocked.get(viewer, _EMPTY))
            | self._blocked_by.get(viewer, _EMPTY)
            | self._muted.get(viewer, _EMPTY)
        )

    def has_blocked(self, blocker: int, blocked: int) -> bool:
        return blocked in self._blocked.get(blocker, _EMPTY)

    def has_muted(self, muter: int, muted: int) -> bool:
        return muted in self._muted.get(muter, _EMPTY)

    def blocked_by_user(self, user: int) -> frozenset[int]:
        """Accounts `user` has blocked."""
        return frozenset(self._blocked.get(user, _EMPTY))

    def blockers_of(self, user: int) -> frozenset[int]:
        """Accounts that have blocked `user`."""
        return frozenset(self._blocked_by.get(user, _EMPTY))

    def muted_by_user(self, user: int) -> frozenset[int]:
        return frozenset(self._muted.get(user, _EMPTY))

    def is_blocking(self, blocker: int, blocked: int) -> bool:
        return blocked in self._blocked.get(blocker, _EMPTY)

    def is_blocked_either_way(self, a: int, b: int) -> bool:
        return b in self._blocked.get(a, _EMPTY) or a in self._blocked.get(b, _EMPTY)

    def can_see_author(self, viewer: int, author: int) -> bool:
        """Not hidden, and the author is public, followed (approved) by the viewer, or the viewer."""
        if viewer == author:
            return True
        if self.is_blocked_either_way(viewer, author) or author in self._muted.get(viewer, _EMPTY):
            return False
        return author not in self._private or self.is_following(viewer, author)

    def can_see_post(self, viewer: int, post_id: int, author: int) -> bool:
        return not self.is_withheld(post_id) and self.can_see_author(viewer, author)

    def author_checker(self, viewer: int) -> Callable[[int], bool]:
        """`can_see_author` for one viewer as a closure over their sets, looked up once (the
        viewer's blocks both ways and mutes merged into one set): a set lookup or three per
        author instead of six dict and set lookups."""
        hidden = self.hidden_authors(viewer)
        following = self._following.get(viewer, _EMPTY)
        private = self._private

        def visible(author: int) -> bool:
            if author == viewer:
                return True
            return author not in hidden and (author not in private or author in following)

        return visible

    def post_checker(self, viewer: int) -> Callable[[int, int], bool]:
        """`can_see_post` for one viewer as a closure (`author_checker`'s): the per-item check
        of a served page (a few set lookups per item)."""
        author_visible = self.author_checker(viewer)
        deleted, moderated = self._deleted_posts, self._moderated_posts

        def visible(post_id: int, author: int) -> bool:
            if post_id in deleted or post_id in moderated:
                return False
            return author_visible(author)

        return visible

    def visible_mask(self, viewer: int, authors: np.ndarray) -> np.ndarray:
        """`can_see_author` for an array of authors at once (the candidate lists of a feed).

        Work is per distinct author in the array, never per private account or follow of the
        whole graph, so it stays cheap however large the graph grows."""
        authors = np.asarray(authors, dtype=np.int64)
        if authors.size == 0:
            return np.zeros(0, dtype=bool)
        distinct, positions = np.unique(authors, return_inverse=True)
        allowed = np.fromiter(
            map(self.author_checker(viewer), distinct.tolist()), dtype=bool, count=len(distinct)
        )
        return allowed[positions]

    def visible_posts_mask(
        self, viewer: int, post_ids: np.ndarray, authors: np.ndarray
    ) -> np.ndarray:
        """Posts the viewer may see: author visible, post neither deleted nor hidden by
        moderation."""
        ids = np.asarray(post_ids, dtype=np.int64).tolist()
        deleted, moderated = self._deleted_posts, self._moderated_posts
        visible = self.visible_mask(viewer, authors)
        if deleted.isdisjoint(ids) and moderated.isdisjoint(ids):  # one C loop each, usually
            return visible
        alive = np.fromiter(
            (post not in deleted and post not in moderated for post in ids),
            dtype=bool,
            count=len(ids),
        )
        return visible & alive

    def can_see_story(self, viewer: int, story_id: int, author: int) -> bool:
        return story_id not in self._moderated_stories and self.can_see_author(viewer, author)

    def visible_stories_mask(
        self, viewer: int, story_ids: np.ndarray, authors: np.ndarray
    ) -> np.ndarray:
        """Stories the viewer may see: author visible, story not hidden by moderation (the
        stories tray's one check, as `visible_posts_mask` is the feed's)."""
        story_ids = np.asarray(story_ids, dtype=np.int64)
        moderated = self._moderated_stories
        allowed = np.fromiter(
            (story not in moderated for story in story_ids.tolist()),
            dtype=bool,
            count=len(story_ids),
        )
        return self.visible_mask(viewer, authors) & allowed

    def can_suggest(self, viewer: int, candidate: int) -> bool:
        """A who-to-follow candidate: not the viewer, not followed, not hidden either way."""
        if candidate == viewer or self.is_following(viewer, candidate):
            return False
        if self.is_blocked_either_way(viewer, candidate):
            return False
        return candidate not in self._muted.get(viewer, _EMPTY)

    def suggestable_mask(self, viewer: int, candidates: np.ndarray) -> np.ndarray:
        """`can_suggest` for an array of candidates at once."""
        candidates = np.asarray(candidates, dtype=np.int64)
        barred = self.hidden_authors(viewer) | self._following.get(viewer, _EMPTY) | {viewer}
        return ~np.isin(candidates, np.fromiter(barred, dtype=np.int64))

    # --- mutation hooks (streaming updates) --------------------------------------------------

    def add_follow(self, follower: int, followee: int) -> None:
        """An approved follow (a `follow` of a public account or a `follow_approved`)."""
        if self.is_blocked_either_way(follower, followee):
            return  # the app refuses follows while a block stands
        self._following[follower].add(followee)
        self._followers[followee].add(follower)

    def remove_follow(self, follower: int, followee: int) -> None:
        self._following[follower].discard(followee)
        self._followers[followee].discard(follower)

    def add_block(self, blocker: int, blocked: int) -> None:
        """A block ends follows both ways (as `int_follow_graph` does) and hides the pair."""
        self._blocked[blocker].add(blocked)
        self._blocked_by[blocked].add(blocker)
        self.remove_follow(blocker, blocked)
        self.remove_follow(blocked, blocker)

    def remove_block(self, blocker: int, blocked: int) -> None:
        """An unblock does not restore the follows the block ended."""
        self._blocked[blocker].discard(blocked)
        self._blocked_by[blocked].discard(blocker)

    def add_mute(self, muter: int, muted: int) -> None:
        self._muted[muter].add(muted)

    def remove_mute(self, muter: int, muted: int) -> None:
        self._muted[muter].discard(muted)

    def set_private(self, user: int, is_private: bool) -> None:
        if is_private:
            self._private.add(user)
        else:
            self._private.discard(user)

    def delete_post(self, post_id: int) -> None:
        self._deleted_posts.add(post_id)

    def moderate_post(self, post_id: int, hidden: bool = True) -> None:
        """A moderation decision: hide the post from everyone (or restore it)."""
        if hidden:
            self._moderated_posts.add(post_id)
        else:
            self._moderated_posts.discard(post_id)

    def moderated_posts(self) -> frozenset[int]:
        return frozenset(self._moderated_posts)

    def moderate_story(self, story_id: int, hidden: bool = True) -> None:
        """A moderation decision on a story's media: hide it from everyone (or restore it)."""
        if hidden:
            self._moderated_stories.add(story_id)
        else:
            self._moderated_stories.discard(story_id)

    def moderated_stories(self) -> frozenset[int]:
        return frozenset(self._moderated_stories)

    def apply_relationship(
        self, event_type: str, actor: int, target: int, occurred_at: object = None
    ) -> None:
        """Apply one relationship event as the contracts name it (follow, unfollow, ...).

        `follow_request` changes nothing until `follow_approved` (actor = the private account).
        A follow across a block or a plain `follow` of a private account is ignored. The batch
        twin of these rules is dbt's `int_follow_transitions`; tests/test_relationship_state_parity.py
        holds the two equal.

        Events of one instant (equal `occurred_at`, the event's own time) give the same state in
        any arrival order, the SQL's: an end wins (an `unfollow` or `block` at the instant of a
        follow leaves no follow, an `unblock` / `unmute` at the instant of a `block` / `mute`
        leaves none), and a follow reads the blocks as of the instant before (an unblock at its
        instant comes too late). Without `occurred_at`, events apply in arrival order.
        """
        instant = self._instant.at(occurred_at)
        match event_type:
            case "follow" | "follow_approved":
                follower, followee = (actor, target) if event_type == "follow" else (target, actor)
                if ("follow", follower, followee) in instant.ended:
                    return  # an end at this instant wins
                if instant.was_blocked(self, follower, followee) or instant.was_blocked(
                    self, followee, follower
                ):
                    return  # the app refuses follows while a block stands
                if event_type == "follow" and followee in self._private:
                    return  # the app sends a follow_request to a private account
                self.add_follow(follower, followee)
            case "unfollow":
                instant.ended.add(("follow", actor, target))
                self.remove_follow(actor, target)
            case "block":
                instant.remember_block(self, actor, target)
                instant.ended.update((("follow", actor, target), ("follow", target, actor)))
                if ("block", actor, target) in instant.ended:
                    self.remove_follow(actor, target)  # the block still ends the follows
                    self.remove_follow(target, actor)
                else:
                    self.add_block(actor, target)
            case "unblock":
                instant.remember_block(self, actor, target)
                instant.ended.add(("block", actor, target))
                self.remove_block(actor, target)
            case "mute":
                if ("mute", actor, target) not in instant.ended:
                    self.add_mute(actor, target)
            case "unmute":
                instant.ended.add(("mute", actor, target))
                self.remove_mute(actor, target)
            case "follow_request":
                pass
            case _:
                raise ValueError(f"unknown relationship event type {event_type!r}")

    # --- summaries -------------------------------------------------------------------------

    def follow_edges(self) -> pd.DataFrame:
        """Every current follow as (follower_id, followee_id) rows, for training recommenders."""
        rows = [(f, g) for f, gs in self._following.items() for g in gs]
        return pd.DataFrame(rows, columns=["follower_id", "followee_id"], dtype="int64")

    def viewers(self) -> set[int]:
        """Every user with at least one follow, block or mute of their own."""
        return (
            {u for u, v in self._following.items() if v}
            | {u for u, v in self._blocked.items() if v}
            | {u for u, v in self._muted.items() if v}
        )

    def block_edges(self) -> list[tuple[int, int]]:
        return [(a, b) for a, bs in self._blocked.items() for b in bs]

    def mute_edges(self) -> list[tuple[int, int]]:
        return [(a, b) for a, bs in self._muted.items() for b in bs]

    def __repr__(self) -> str:
        edges = sum(len(v) for v in self._following.values())
        return (
            f"VisibilityGraph(follows={edges}, blocks={sum(map(len, self._blocked.values()))}, "
            f"mutes={sum(map(len, self._muted.values()))}, private={len(self._private)}, "
            f"deleted_posts={len(self._deleted_posts)}, moderated_posts={len(self._moderated_posts)}, "
            f"moderated_stories={len(self._moderated_stories)})"
        )


class _Instant:
    """What `apply_relationship` remembers of the latest instant so that the events of one
    instant give one state whatever order they arrive in: the pairs a `unfollow` / `block` /
    `unblock` / `unmute` ended at it, and the block state of the pairs it toggled as it was
    before it. Only the latest instant is kept: memory stays bounded, and an event of an older
    instant arriving late applies in arrival order."""

    def __init__(self) -> None:
        self.occurred_at: object = None
        self.ended: set[tuple[str, int, int]] = set()  # (what, actor, target)
        self.blocked_before: dict[tuple[int, int], bool] = {}  # (blocker, blocked) -> blocked

    def at(self, occurred_at: object) -> _Instant:
        if occurred_at is None or occurred_at != self.occurred_at:
            self.occurred_at = occurred_at
            self.ended.clear()
            self.blocked_before.clear()
        return self

    def remember_block(self, graph: VisibilityGraph, blocker: int, blocked: int) -> None:
        self.blocked_before.setdefault((blocker, blocked), graph.is_blocking(blocker, blocked))

    def was_blocked(self, graph: VisibilityGraph, blocker: int, blocked: int) -> bool:
        """Did `blocker` block `blocked` before this instant?"""
        known = self.blocked_before.get((blocker, blocked))
        return graph.is_blocking(blocker, blocked) if known is None else known
