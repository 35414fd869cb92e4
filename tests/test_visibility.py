"""The privacy contract: property tests over random graphs, and the marts against a replay.

The replay test reads the relationship events of a built platform in time order through the
streaming hooks and checks that they reach the same state as the dbt models that
`VisibilityGraph.from_clickhouse` reads: the batch and streaming paths agree.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from platform_support import BuiltPlatform

from visibility import VisibilityGraph
from warehouse import clickhouse_client

USERS = st.integers(min_value=1, max_value=12)
PAIRS = st.lists(st.tuples(USERS, USERS).filter(lambda p: p[0] != p[1]), max_size=40)


@st.composite
def edge_sets(draw: st.DrawFn) -> dict:
    return {
        "follows": set(draw(PAIRS)),
        "blocks": set(draw(PAIRS)),
        "mutes": set(draw(PAIRS)),
        "private": set(draw(st.lists(USERS, max_size=6))),
    }


def graph_of(edges: dict) -> VisibilityGraph:
    return VisibilityGraph.from_edges(
        follows=edges["follows"],
        blocks=edges["blocks"],
        mutes=edges["mutes"],
        private_users=edges["private"],
    )


def may_see(edges: dict, viewer: int, author: int) -> bool:
    """The rules, written from the edge lists (not from VisibilityGraph)."""
    if viewer == author:
        return True
    if (viewer, author) in edges["blocks"] or (author, viewer) in edges["blocks"]:
        return False
    if (viewer, author) in edges["mutes"]:
        return False
    return author not in edges["private"] or (viewer, author) in edges["follows"]


def may_suggest(edges: dict, viewer: int, candidate: int) -> bool:
    if candidate == viewer or (viewer, candidate) in edges["follows"]:
        return False
    blocked = (viewer, candidate) in edges["blocks"] or (candidate, viewer) in edges["blocks"]
    return not blocked and (viewer, candidate) not in edges["mutes"]


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(
            ["follow", "unfollow", "follow_approved", "block", "unblock", "mute", "unmute"]
        ),
        USERS,
        USERS,
    ).filter(lambda e: e[1] != e[2]),
    max_size=60,
)


@given(edge_sets(), USERS)
@settings(deadline=None)  # a loaded CI machine must not fail a pure property
def test_visibility_follows_the_rules(edges: dict, viewer: int) -> None:
    graph = graph_of(edges)
    for author in range(1, 13):
        assert graph.can_see_author(viewer, author) == may_see(edges, viewer, author), author


@given(edge_sets(), USERS)
@settings(deadline=None)  # a loaded CI machine must not fail a pure property
def test_masks_agree_with_the_rules(edges: dict, viewer: int) -> None:
    graph = graph_of(edges)
    authors = np.arange(0, 14, dtype=np.int64)
    assert graph.visible_mask(viewer, authors).tolist() == [
        may_see(edges, viewer, int(a)) for a in authors
    ]
    assert graph.suggestable_mask(viewer, authors).tolist() == [
        may_suggest(edges, viewer, int(a)) for a in authors
    ]
    graph.delete_post(99)
    check = graph.post_checker(viewer)  # the per-item check of served pages
    assert [check(7, int(a)) for a in authors] == [may_see(edges, viewer, int(a)) for a in authors]
    assert not any(check(99, int(a)) for a in authors)


@given(edge_sets(), USERS)
@settings(deadline=None)  # a loaded CI machine must not fail a pure property
def test_suggestions_exclude_self_followed_and_hidden_either_way(edges: dict, viewer: int) -> None:
    graph = graph_of(edges)
    for candidate in range(1, 13):
        assert graph.can_suggest(viewer, candidate) == may_suggest(edges, viewer, candidate)


@given(EVENTS, st.lists(USERS, max_size=4))
@settings(max_examples=200, deadline=None)
def test_streamed_events_keep_blocked_pairs_apart(
    events: list[tuple[str, int, int]], private: list[int]
) -> None:
    """The hooks against a replay written from the contracts' wording: a block ends follows
    both ways and refuses new ones; only an approval admits a follower to a private account."""
    graph = VisibilityGraph.from_edges(private_users=private)
    edges: dict = {"follows": set(), "blocks": set(), "mutes": set(), "private": set(private)}
    for event_type, actor, target in events:
        graph.apply_relationship(event_type, actor, target)
        blocked = (actor, target) in edges["blocks"] or (target, actor) in edges["blocks"]
        if event_type == "follow" and target not in edges["private"] and not blocked:
            edges["follows"].add((actor, target))
        elif event_type == "follow_approved" and not blocked:
            edges["follows"].add((target, actor))
        elif event_type == "unfollow":
            edges["follows"].discard((actor, target))
        elif event_type == "block":
            edges["blocks"].add((actor, target))
            edges["follows"] -= {(actor, target), (target, actor)}
        elif event_type == "unblock":
            edges["blocks"].discard((actor, target))
        elif event_type == "mute":
            edges["mutes"].add((actor, target))
        elif event_type == "unmute":
            edges["mutes"].discard((actor, target))
    for viewer in range(1, 13):
        for author in range(1, 13):
            assert graph.is_following(viewer, author) == ((viewer, author) in edges["follows"])
            assert graph.can_see_author(viewer, author) == may_see(edges, viewer, author)
            assert graph.can_suggest(viewer, author) == may_suggest(edges, viewer, author)


def test_deleted_posts_are_invisible_to_everyone() -> None:
    graph = VisibilityGraph.from_edges(follows=[(1, 2)], deleted_posts=[10])
    mask = graph.visible_posts_mask(1, np.array([10, 11]), np.array([2, 2]))
    assert mask.tolist() == [False, True]
    assert not graph.can_see_post(2, 10, 2)  # not even the author
    graph.delete_post(11)
    assert not graph.can_see_post(1, 11, 2)


def test_unblock_does_not_restore_follows() -> None:
    graph = VisibilityGraph.from_edges(follows=[(1, 2), (2, 1)])
    graph.add_block(1, 2)
    graph.remove_block(1, 2)
    assert not graph.is_following(1, 2) and not graph.is_following(2, 1)
    assert graph.can_suggest(1, 2)


def test_unknown_event_type_is_refused() -> None:
    graph = VisibilityGraph()
    with pytest.raises(ValueError, match="befriend"):
        graph.apply_relationship("befriend", 1, 2)


def test_marts_match_a_replay_of_the_relationship_events(built_platform: BuiltPlatform) -> None:
    settings_ = built_platform.settings
    staging = settings_.staging_database
    with clickhouse_client(settings_.clickhouse_url) as client:
        graph = VisibilityGraph.from_clickhouse(client, settings_)
        events = client.query(
            f"select event_type, actor_user_id, target_user_id from {staging}.stg_raw__relationships "
            "order by occurred_at, event_type in ('unfollow', 'block', 'unblock', 'unmute'), "
            "event_id"
        ).result_rows
        private = [
            row[0]
            for row in client.query(
                f"select user_id from {built_platform.marts}.dim_users where is_private"
            ).result_rows
        ]
    assert len(events) > 100, "the workload should have relationship events"
    replay = VisibilityGraph.from_edges(private_users=private)
    for event_type, actor, target in events:
        replay.apply_relationship(event_type, int(actor), int(target))

    users = sorted({int(a) for _, a, _ in events} | {int(t) for _, _, t in events})
    assert sum(len(graph.follows(u)) for u in users) > 50
    mismatched = [u for u in users if graph.follows(u) != replay.follows(u)]
    assert not mismatched, f"follows differ for users {mismatched[:5]}"
    assert all(graph.hidden_authors(u) == replay.hidden_authors(u) for u in users)
    private_set = set(private)
    for viewer in users[:50]:
        for author in private_set:
            assert graph.can_see_author(viewer, author) == replay.can_see_author(viewer, author)
