"""Who may find what: the visibility rules applied to search results.

The rules are `visibility.VisibilityGraph`'s (blocks either way, mutes, private accounts,
deleted posts, posts hidden by moderation), asked of the graph the caller holds; the index adds what the stream has told it
sooner than the graph knows (a tombstone, a private switch). Where the two disagree the stricter
wins: a post is hidden if either says it is deleted or its author private (and not followed).

- posts: never deleted or hidden by moderation (`graph.is_withheld`), never by an author hidden from the viewer either way (blocked, blocking,
  muted), never by a private author the viewer does not follow (unless it is the viewer's own);
- users: never an account that blocked the viewer or that the viewer blocked (a private account
  can be found, as in the app: its posts cannot);
- hashtags and locations: aggregates of public, undeleted posts not hidden by moderation (the
  batch build's `fct_hashtag_trends` and location counts; the indexer keeps them as posts come
  and go), shown to everyone; one left with no such post is never returned.

A viewer of None is logged out: public, undeleted posts only, and every account.
"""

from __future__ import annotations

from typing import Any

from search.documents import HashtagDoc, LocationDoc, PostDoc, UserDoc
from search.engine import Match


def visible(graph: Any, viewer: int | None, match: Match) -> bool:
    doc = match.doc
    if isinstance(doc, PostDoc):
        return _post_visible(graph, viewer, doc)
    if isinstance(doc, UserDoc):
        return (
            viewer is None
            or viewer == doc.user_id
            or not graph.is_blocked_either_way(viewer, doc.user_id)
        )
    if isinstance(doc, HashtagDoc | LocationDoc):
        return doc.posts > 0
    return True


def _post_visible(graph: Any, viewer: int | None, doc: PostDoc) -> bool:
    if doc.deleted or graph.is_withheld(doc.post_id):
        return False
    private = doc.author_private or graph.is_private(doc.author_id)
    if viewer is None:
        return not private
    if viewer == doc.author_id:
        return True
    if not graph.can_see_author(viewer, doc.author_id):
        return False
    return not private or graph.is_following(viewer, doc.author_id)


def filter_visible(graph: Any, viewer: int | None, matches: list[Match]) -> list[Match]:
    return [m for m in matches if visible(graph, viewer, m)]
