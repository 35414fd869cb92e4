"""Location suggestions never reveal a place known only from posts the viewer may not see (a
private account they do not follow, a blocked or muted author, a deleted post), and prefer the
places of what they follow and saw over merely popular ones."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.locations import BASELINE_VERSION, MODEL_VERSION, suggest_locations
from serving.snapshot import Posts
from visibility import VisibilityGraph

VIEWER, FRIEND, PRIVATE, BLOCKED, STRANGER, MUTED, BLOCKER = 1, 2, 3, 4, 5, 6, 7
HOME, SECRET, HIDDEN, POPULAR, GONE, QUIET, AWAY = 101, 102, 103, 104, 105, 106, 107
HIDDEN_PLACES = {SECRET, HIDDEN, GONE, QUIET, AWAY}
POST_IDS = [10, 11, 12, 13, 14, 15, 16, 17, 18]
AUTHORS = [FRIEND, PRIVATE, BLOCKED, STRANGER, STRANGER, FRIEND, MUTED, BLOCKER, STRANGER]
NAMES = ["Home", "Secret", "Hidden", "Popular", "Popular", "Gone", "Quiet", "Away", ""]


def snapshot(graph: VisibilityGraph, seen: frozenset[int] = frozenset()) -> SimpleNamespace:
    frame = pd.DataFrame(
        {
            "post_id": POST_IDS,
            "author_id": AUTHORS,
            "created_ts": [1000.0 + i for i in range(9)],
            "media_type": ["photo"] * 9,
            "hashtags": [[]] * 9,
            "popularity": [1.0] * 9,
            "location_id": [HOME, SECRET, HIDDEN, POPULAR, POPULAR, GONE, QUIET, AWAY, 0],
            "location_name": NAMES,
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
        follows=[(VIEWER, FRIEND), (VIEWER, MUTED), (VIEWER, BLOCKER)],
        blocks=[(VIEWER, BLOCKED), (BLOCKER, VIEWER)],
        mutes=[(VIEWER, MUTED)],
        private_users=[PRIVATE],
    )
    graph.delete_post(15)
    return graph


def test_places_of_followed_accounts_first_and_nothing_hidden() -> None:
    version, ranked = suggest_locations(snapshot(base_graph()), VIEWER, 10)
    places = [p for p, _, _ in ranked]
    assert version == MODEL_VERSION and places[0] == HOME and ranked[0][1] == "Home"
    assert POPULAR in places and 0 not in places
    assert not HIDDEN_PLACES & set(places)


def test_no_history_gets_popular_visible_places() -> None:
    version, ranked = suggest_locations(snapshot(base_graph()), 99, 10)
    assert version == BASELINE_VERSION
    assert ranked[0][:2] == (POPULAR, "Popular") and ranked[0][2] == 2.0
    assert SECRET not in {p for p, _, _ in ranked}  # private, not followed by 99
    assert GONE not in {p for p, _, _ in ranked}  # deleted


@given(
    seen=st.frozensets(st.sampled_from(POST_IDS)),
    follows=st.frozensets(st.sampled_from([FRIEND, PRIVATE, BLOCKED, STRANGER, MUTED, BLOCKER])),
    k=st.integers(1, 10),
)
@settings(max_examples=40, deadline=None)
def test_hidden_posts_reveal_no_place(
    seen: frozenset[int], follows: frozenset[int], k: int
) -> None:
    """Whatever the viewer follows (short of being accepted by PRIVATE) or has seen, places of
    blocked, blocking, muted, deleted and private-to-them posts never come back."""
    graph = VisibilityGraph.from_edges(
        follows=[(VIEWER, a) for a in follows if a != PRIVATE],
        blocks=[(VIEWER, BLOCKED), (BLOCKER, VIEWER)],
        mutes=[(VIEWER, MUTED)],
        private_users=[PRIVATE],
    )
    graph.delete_post(15)
    _, ranked = suggest_locations(snapshot(graph, seen), VIEWER, k)
    assert len(ranked) <= k
    assert not HIDDEN_PLACES & {p for p, _, _ in ranked}


def test_offline_evaluation_runs_on_a_small_workload(capsys: pytest.CaptureFixture[str]) -> None:
    """`bench.suggestions_quality` (docs/benchmarks.md) still runs end to end on the serving
    code; its figures are reported there, not asserted here."""
    from bench.suggestions_quality import main

    main(["--users", "150", "--days", "1", "--max-users", "30"])
    out = capsys.readouterr().out
    assert "| hashtags |" in out and "| locations |" in out
