"""A seeded follow graph with the shape of real ones, for the importer's end-to-end tests.

Communities (most follows stay inside one), reciprocity (a share of follows are returned),
a heavy tail (a few accounts collect most followers: Pareto popularity) and triadic closure
(people follow whom their followees follow). Nothing here knows how the recommenders work:
the held-out edges are a random sample of each active user's follows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass
class SocialGraph:
    follows: list[tuple[int, int]]  # in the file
    held_out: dict[int, set[int]]  # follower -> followees removed from the file
    mutes: list[tuple[int, int]]
    blocks: list[tuple[int, int]]
    community: np.ndarray

    def followers(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for _, followee in self.follows:
            counts[followee] = counts.get(followee, 0) + 1
        return counts


def hex_key(node: int) -> str:
    """How a real export names an account: a hash, not a number."""
    return hashlib.md5(f"account-{node}".encode(), usedforsecurity=False).hexdigest()


def social_graph(
    *,
    users: int = 500,
    communities: int = 10,
    seed: int = 23,
    held_out_fraction: float = 0.2,
) -> SocialGraph:
    rng = np.random.default_rng(seed)
    community = rng.integers(0, communities, users)
    activity = np.minimum(rng.pareto(1.6, users) + 1.0, 12.0)  # how many accounts one follows
    popularity = rng.pareto(1.1, users) + 1.0
    members = [np.flatnonzero(community == c) for c in range(communities)]
    edges: set[tuple[int, int]] = set()

    def follow(a: int, b: int) -> None:
        if a != b:
            edges.add((a, b))
            if rng.random() < 0.25:  # reciprocity
                edges.add((b, a))

    for user in range(users):
        for _ in range(int(activity[user] * 2)):
            pool = members[community[user]] if rng.random() < 0.85 else np.arange(users)
            weights = popularity[pool] / popularity[pool].sum()
            follow(user, int(rng.choice(pool, p=weights)))
    following: dict[int, list[int]] = {}
    for a, b in sorted(edges):
        following.setdefault(a, []).append(b)
    for user in range(users):  # triadic closure: a followee's followee
        mine = following.get(user, [])
        for _ in range(int(activity[user])):
            if not mine:
                break
            friend = mine[int(rng.integers(len(mine)))]
            theirs = following.get(friend, [])
            if theirs:
                follow(user, theirs[int(rng.integers(len(theirs)))])

    by_user: dict[int, list[int]] = {}
    for a, b in sorted(edges):
        by_user.setdefault(a, []).append(b)
    kept: list[tuple[int, int]] = []
    held_out: dict[int, set[int]] = {}
    for user, followees in by_user.items():
        order = rng.permutation(len(followees))
        n_held = int(len(followees) * held_out_fraction) if len(followees) >= 5 else 0
        for rank, position in enumerate(order):
            if rank < n_held:
                held_out.setdefault(user, set()).add(followees[position])
            else:
                kept.append((user, followees[position]))
    kept_set = set(kept)
    in_file = {n for edge in kept for n in edge}

    # mutes and blocks of accounts a user would plausibly be suggested: popular in their
    # community, not followed, not held out (those are the evaluation's answers)
    def plausible(user: int) -> int | None:
        pool = [
            int(c)
            for c in members[community[user]][np.argsort(-popularity[members[community[user]]])]
            if c != user
            and c in in_file
            and (user, int(c)) not in kept_set
            and int(c) not in held_out.get(user, ())
        ]
        return pool[int(rng.integers(min(len(pool), 3)))] if pool else None

    active = sorted(u for u in by_user if u in in_file)
    mutes: set[tuple[int, int]] = set()
    blocks: set[tuple[int, int]] = set()
    for user in rng.choice(active, size=min(80, len(active)), replace=False):
        target = plausible(int(user))
        if target is not None:
            mutes.add((int(user), target))
    for user in rng.choice(active, size=min(20, len(active)), replace=False):
        target = plausible(int(user))
        if target is not None and (int(user), target) not in mutes:
            blocks.add((int(user), target))
    order = rng.permutation(len(kept))
    return SocialGraph(
        follows=[kept[i] for i in order],
        held_out=held_out,
        mutes=sorted(mutes),
        blocks=sorted(blocks),
        community=community,
    )
