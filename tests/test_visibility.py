"""The privacy contract: property tests over random graphs, and the marts against a replay.

The replay test reads the relationship events of a built platform in time order through the
streaming hooks and checks that they reach the same state as the dbt models that
`VisibilityGraph.from_clickhouse` reads: the batch and streaming paths agree.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from platform_support import BuiltPlatform

from visibility import VisibilityGraph
from warehouse import clickhouse_client

USERS = st.integers(min_value=1, max_value=12)
PAIRS = st.lists(st.tuples(USERS, USERS).filter(lambda p: p[0] != p[1]), max_size=40)


@st.composite
def graphs(draw: st.DrawFn) -> VisibilityGraph:
    return VisibilityGraph.from_edges(
        follows=draw(PAIRS),
        blocks=draw(PAIRS),
        mutes=draw(PAIRS),
        private_users=draw(st.lists(USERS, max_size=6)),
    )


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


@given(graphs(), USERS)
@settings(deadline=None)  # a loaded CI machine must not fail a pure property
def test_hidden_and_private_authors_are_never_visible(graph: VisibilityGraph, viewer: int) -> None:
    for author in range(1, 13):
        visible = graph.can_see_author(viewer, author)
        if author == viewer:
            assert visible
            continue
        if author in graph.hidden_authors(viewer):
            assert not visible
        if graph.is_private(author) and not graph.is_following(viewer, author):
            assert not visible
        if (
            not graph.is_private(author)
            and author not in graph.hidden_authors(viewer)
            and not graph.is_blocked_either_way(viewer, author)
        ):
            assert visible


@given(graphs(), USERS)
@settings(deadline=None)  # a loaded CI machine must not fail a pure property
def test_masks_agree_with_the_scalar_rules(graph: VisibilityGraph, viewer: int) -> None:
    authors = np.arange(0, 14, dtype=np.int64)
    expected_visible = [graph.can_see_author(viewer, int(a)) for a in authors]
    expected_suggest = [graph.can_suggest(viewer, int(a)) for a in authors]
    assert graph.visible_mask(viewer, authors).tolist() == expected_visible
    assert graph.suggestable_mask(viewer, authors).tolist() == expected_suggest


@given(graphs(), USERS)
@settings(deadline=None)  # a loaded CI machine must not fail a pure property
def test_suggestions_exclude_self_followed_and_hidden_either_way(
    graph: VisibilityGraph, viewer: int
) -> None:
    for candidate in range(1, 13):
        if graph.can_suggest(viewer, candidate):
            assert candidate != viewer
            assert not graph.is_following(viewer, candidate)
            assert candidate not in graph.hidden_authors(viewer)
            assert viewer not in graph.hidden_authors(candidate) or not (
                graph.is_blocked_either_way(viewer, candidate)
            )


@given(EVENTS, st.lists(USERS, max_size=4))
@settings(max_examples=200, deadline=None)
def test_streamed_events_keep_blocked_pairs_apart(
    events: list[tuple[str, int, int]], private: list[int]
) -> None:
    graph = VisibilityGraph.from_edges(private_users=private)
    for event_type, actor, target in events:
        graph.apply_relationship(event_type, actor, target)
    for viewer in range(1, 13):
        for author in range(1, 13):
            if viewer != author and graph.is_blocked_either_way(viewer, author):
                assert not graph.is_following(viewer, author)
                assert not graph.can_see_author(viewer, author)
                assert not graph.can_suggest(viewer, author)
            if graph.is_private(author) and viewer != author:
                # only an approval (never a plain follow) admits a viewer to a private account
                approved = any(e == ("follow_approved", author, viewer) for e in events)
                if graph.can_see_author(viewer, author):
                    assert approved


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
    try:
        graph.apply_relationship("befriend", 1, 2)
    except ValueError as error:
        assert "befriend" in str(error)
    else:
        raise AssertionError("an unknown relationship event was accepted")


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
            if graph.can_see_author(viewer, author):
                assert viewer == author or graph.is_following(viewer, author)
