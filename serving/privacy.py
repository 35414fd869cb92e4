"""May this viewer see that author or post? The one question every endpoint asks.

Routers (and later ones, such as search) call these instead of reading the graph themselves,
so a rule is written once (`visibility.VisibilityGraph`) and the graph they ask is always the
current one, with the change follower's updates applied.
"""

from __future__ import annotations

import numpy as np

from serving.snapshot import ServingSnapshot


def may_see_author(snapshot: ServingSnapshot, viewer: int, author: int) -> bool:
    """Not blocked either way, not muted, and public, followed (approved) or oneself."""
    return bool(snapshot.visibility.can_see_author(viewer, author))


def may_see_post(
    snapshot: ServingSnapshot, viewer: int, post_id: int, author: int | None = None
) -> bool:
    """The post is not deleted and its author is visible; an unknown post (author not given
    and not in the snapshot) is not visible."""
    if author is None:
        row = snapshot.posts.index.get(post_id)
        if row is None:
            return False
        author = int(snapshot.posts.author_ids[row])
    return bool(snapshot.visibility.can_see_post(viewer, post_id, author))


def may_find_account(snapshot: ServingSnapshot, viewer: int, account: int) -> bool:
    """Search and autocomplete: an account that blocks the viewer, or that the viewer
    blocked, is not found (private and muted accounts still are, by name)."""
    return not snapshot.visibility.is_blocked_either_way(viewer, account)


def visible_rows(
    snapshot: ServingSnapshot,
    viewer: int,
    post_ids: np.ndarray,
    author_ids: np.ndarray,
    start: int,
    limit: int,
) -> tuple[list[int], int]:
    """Rows from `start` whose posts the viewer may still see, up to `limit` of them, and
    where the scan stopped (the next page starts there): a ranked snapshot re-checked per
    page, so a block, mute, unfollow, private switch or deletion made after it was ranked is
    honoured on its next page. One set lookup or so per item."""
    visible = snapshot.visibility.post_checker(viewer)
    rows: list[int] = []
    i, end = start, len(post_ids)
    while i < end and len(rows) < limit:
        stop = min(end, i + 2 * (limit - len(rows)))
        for post, author in zip(
            post_ids[i:stop].tolist(), author_ids[i:stop].tolist(), strict=True
        ):
            if visible(post, author):
                rows.append(i)
                if len(rows) == limit:
                    return rows, i + 1
            i += 1
    return rows, i
