"""Hashtag suggestions never reveal a tag known only from posts the viewer may not see (a
private account they do not follow, a blocked author, a deleted post), and prefer the tags of
what they follow and saw over merely popular ones."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.hashtags import BASELINE_VERSION, MODEL_VERSION, suggest_hashtags
from serving.snapshot import Posts
from visibility import VisibilityGraph

VIEWER, FRIEND, PRIVATE, BLOCKED, STRANGER = 1, 2, 3, 4, 5


def snapshot(graph: VisibilityGraph, seen: frozenset[int] = frozenset()) -> SimpleNamespace:
    frame = pd.DataFrame(
        {
            "post_id": [10, 11, 12, 13, 14, 15],
            "author_id": [FRIEND, PRIVATE, BLOCKED, STRANGER, STRANGER, FRIEND],
            "created_ts": [1000.0, 1001.0, 1002.0, 1003.0, 1004.0, 1005.0],
            "media_type": ["photo"] * 6,
            "hashtags": [["cats"], ["secret"], ["hidden"], ["popular"], ["popular"], ["gone"]],
            "popularity": [1.0] * 6,
        }
    )
    return SimpleNamespace(
        posts=Posts(frame, frozenset()),
        visibility=graph,
        follows=graph.follows,
        seen_posts={VIEWER: seen},
    )


def base_graph() -> VisibilityGraph:
    graph = VisibilityGraph.from_edges(
        follows=[(VIEWER, FRIEND)], blocks=[(VIEWER, BLOCKED)], private_users=[PRIVATE]
    )
    graph.delete_post(15)
    return graph


def test_tags_of_followed_accounts_first_and_nothing_hidden() -> None:
    version, ranked = suggest_hashtags(snapshot(base_graph()), VIEWER, 10)
    tags = [t for t, _ in ranked]
    assert version == MODEL_VERSION and tags[0] == "cats"
    assert "popular" in tags
    assert not {"secret", "hidden", "gone"} & set(tags)


def test_no_history_gets_popular_visible_tags() -> None:
    graph = base_graph()
    version, ranked = suggest_hashtags(snapshot(graph), 99, 10)
    assert version == BASELINE_VERSION
    assert ranked[0][0] == "popular"
    assert "secret" not in {t for t, _ in ranked}  # private, not followed by 99


@given(seen=st.frozensets(st.sampled_from([10, 11, 12, 13, 14, 15])))
@settings(max_examples=30, deadline=None)
def test_even_seen_hidden_posts_reveal_nothing(seen: frozenset[int]) -> None:
    _, ranked = suggest_hashtags(snapshot(base_graph(), seen), VIEWER, 10)
    assert not {"secret", "hidden", "gone"} & {t for t, _ in ranked}
