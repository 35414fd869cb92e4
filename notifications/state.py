"""What the worker must know to route an event, in memory and persisted in Redis.

Known users (and usernames), post authors, deleted posts, follows, blocks, mutes and push
settings. Every change is written to Redis by the same atomic script that records the Kafka
offset it came from (`notifications.store`), so after a crash the worker reloads exactly the
state of the events it has applied, and skips those events when Kafka re-delivers them.

With N workers in one group every worker keeps the whole state: the state topics (users,
settings, posts, relationships) are read in full by each worker (`notifications.worker`), and
the first worker to apply an event's offset writes its changes to Redis, the others only
update their memory. A worker starting later loads Redis and the offsets in one snapshot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from notifications.kinds import merge_preferences
from visibility import VisibilityGraph


@dataclass(frozen=True)
class Keys:
    """Redis keys under one prefix (tests and benchmarks use their own prefixes)."""

    prefix: str

    def __getattr__(self, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        key = f"{self.prefix}:{name}"
        object.__setattr__(self, name, key)  # cached: the next lookup is a plain attribute
        return key

    def batch(self, batch_id: str) -> str:
        return f"{self.prefix}:batch:{batch_id}"

    def actors(self, batch_id: str) -> str:
        return f"{self.prefix}:actors:{batch_id}"

    def rate(self, recipient: int, bucket: int) -> str:
        return f"{self.prefix}:rate:{recipient}:{bucket}"

    def digest(self, recipient: int) -> str:
        return f"{self.prefix}:digest:{recipient}"

    def sent(self, key: str) -> str:
        return f"{self.prefix}:sent:{key}"


def _pairs(members: set[bytes] | set[str]) -> list[tuple[int, int]]:
    out = []
    for member in members:
        text = member.decode() if isinstance(member, bytes) else member
        a, b = text.split(":")
        out.append((int(a), int(b)))
    return out


class RoutingState:
    """The in-memory copy; mutators return the Redis commands that persist the change."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.usernames: dict[int, str] = {}
        self.post_authors: dict[int, int] = {}
        self.preferences: dict[int, dict[str, bool]] = {}
        self.graph = VisibilityGraph()
        # the offsets recorded in Redis when this state was loaded (`load`): where to resume
        self.offsets: dict[str, int] = {}

    @classmethod
    def load(cls, redis: Any, keys: Keys) -> RoutingState:
        state = cls(keys)
        pipe = redis.pipeline(transaction=True)  # one snapshot with the offsets it reflects
        for key in (keys.offsets, keys.users, keys.posts, keys.prefs):
            pipe.hgetall(key)
        for key in (keys.private, keys.deleted, keys.follows, keys.blocks, keys.mutes):
            pipe.smembers(key)
        offsets, users, posts, prefs, private, deleted, follows, blocks, mutes = pipe.execute()
        state.offsets = {k.decode(): int(v) for k, v in offsets.items()}
        state.usernames = {int(k): v.decode() for k, v in users.items()}
        state.post_authors = {int(k): int(v) for k, v in posts.items()}
        state.preferences = {int(k): json.loads(v) for k, v in prefs.items()}
        state.graph = VisibilityGraph.from_edges(
            follows=_pairs(follows),
            blocks=_pairs(blocks),
            mutes=_pairs(mutes),
            private_users=[int(u) for u in private],
            deleted_posts=[int(p) for p in deleted],
        )
        return state

    def knows(self, user: int) -> bool:
        return user in self.usernames

    def name(self, user: int) -> str:
        return self.usernames.get(user, f"user{user}")

    def add_user(self, user: int, username: str, is_private: bool) -> list[list[str]]:
        self.usernames[user] = username
        self.graph.set_private(user, is_private)
        ops = [["HSET", self.keys.users, str(user), username]]
        ops.append(["SADD" if is_private else "SREM", self.keys.private, str(user)])
        return ops

    def set_private(self, user: int, is_private: bool) -> list[list[str]]:
        self.graph.set_private(user, is_private)
        return [["SADD" if is_private else "SREM", self.keys.private, str(user)]]

    def add_post(self, post: int, author: int) -> list[list[str]]:
        self.post_authors[post] = author
        return [["HSET", self.keys.posts, str(post), str(author)]]

    def apply_decision(self, decision: dict[str, Any]) -> None:
        """A moderation decision (`moderation.decisions`, checked by `decision_problem`): kept in
        memory only, since the worker re-reads every decision file when it starts."""
        hidden = bool(decision.get("is_hidden", True))
        if "story_id" in decision:
            self.graph.moderate_story(int(decision["story_id"]), hidden)
        else:
            self.graph.moderate_post(int(decision["post_id"]), hidden)

    def delete_post(self, post: int) -> list[list[str]]:
        self.graph.delete_post(post)
        return [["SADD", self.keys.deleted, str(post)]]

    def update_preferences(self, user: int, update: dict[str, Any]) -> list[list[str]]:
        merged = merge_preferences(self.preferences.get(user, {}), update)
        self.preferences[user] = merged
        return [["HSET", self.keys.prefs, str(user), json.dumps(merged)]]

    def wants(self, user: int, setting: str) -> bool:
        return self.preferences.get(user, {}).get(setting, True)

    def relationship(
        self, event_type: str, actor: int, target: int, occurred_at: object = None
    ) -> list[list[str]]:
        """Apply one relationship event to the graph; persist the edges it changed."""
        before = self._edges(actor, target)
        self.graph.apply_relationship(event_type, actor, target, occurred_at)
        after = self._edges(actor, target)
        ops = []
        for key, members in after.items():
            for member in members - before[key]:
                ops.append(["SADD", key, member])
            for member in before[key] - members:
                ops.append(["SREM", key, member])
        return ops

    def _edges(self, a: int, b: int) -> dict[str, set[str]]:
        g = self.graph
        follows = {f"{x}:{y}" for x, y in ((a, b), (b, a)) if g.is_following(x, y)}
        blocks = {f"{x}:{y}" for x, y in ((a, b), (b, a)) if g.has_blocked(x, y)}
        mutes = {f"{x}:{y}" for x, y in ((a, b), (b, a)) if g.has_muted(x, y)}
        return {self.keys.follows: follows, self.keys.blocks: blocks, self.keys.mutes: mutes}
