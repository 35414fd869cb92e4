"""The suggestion gate serves the taste model only when it beats popularity on the snapshot's
holdout, and the popularity baseline (named in model_version) when it does not: both directions,
for hashtags and for locations."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from serving import hashtags, locations, suggestion_gate
from serving.snapshot import Posts
from visibility import VisibilityGraph

USERS = range(1, 13)
PROLIFIC = 100  # an account everyone may see, whose many posts make the popular tags / places
EARLY, LATE = 1000.0, 2000.0  # post times: LATE is inside the gate's holdout (latest quarter)


def snapshot(*, late_own: bool) -> SimpleNamespace:
    """Each user posts early with their own tags / place. Later they use their own again
    (`late_own`, the taste model is right) or the popular ones (popularity is right)."""
    rows = []
    for i in range(12):  # the prolific account: popular tags pop0..pop11 and places 900..911
        rows.append((PROLIFIC, EARLY + i, [f"pop{j}" for j in range(12)], 900 + i))
    for user in USERS:
        own = [f"own{user}-{j}" for j in range(12)]  # enough to fill all GATE_K slots
        rows.append((user, EARLY + 50, own, 100 + user))
        later = [own[0]] if late_own else ["pop0"]
        rows.append((user, LATE, later, 100 + user if late_own else 900))
    frame = pd.DataFrame(
        {
            "post_id": range(1, len(rows) + 1),
            "author_id": [r[0] for r in rows],
            "created_ts": [r[1] for r in rows],
            "media_type": "photo",
            "hashtags": [r[2] for r in rows],
            "popularity": 1.0,
            "location_id": [r[3] for r in rows],
            "location_name": [f"place {r[3]}" for r in rows],
        }
    )
    graph = VisibilityGraph.from_edges(follows=[])
    return SimpleNamespace(
        posts=Posts(frame, frozenset()), visibility=graph, follows=graph.follows, seen_posts={}
    )


@pytest.mark.parametrize("name", ["hashtags", "locations"])
def test_taste_model_serves_when_it_beats_popularity(name: str) -> None:
    snap = snapshot(late_own=True)
    decision = suggestion_gate.decision(snap, name)
    assert decision.serve_model, decision.reason
    assert decision.model_recall > decision.baseline_recall
    version, ranked = suggestion_gate.suggest(snap, name, 1, 5)
    assert version == f"{name}/taste" and ranked


@pytest.mark.parametrize("name", ["hashtags", "locations"])
def test_popularity_serves_when_taste_does_not_beat_it(name: str) -> None:
    snap = snapshot(late_own=False)
    decision = suggestion_gate.decision(snap, name)
    assert not decision.serve_model, decision.reason
    assert "does not beat" in decision.reason
    version, ranked = suggestion_gate.suggest(snap, name, 1, 5)
    module = hashtags if name == "hashtags" else locations
    assert version == module.BASELINE_VERSION
    assert ranked == suggestion_gate.SUGGESTERS[name].baseline(snap, 1, 5)


def test_decided_once_per_snapshot_and_again_for_a_new_one() -> None:
    first = snapshot(late_own=True)
    assert suggestion_gate.decision(first, "hashtags") is suggestion_gate.decision(
        first, "hashtags"
    )
    assert not suggestion_gate.decision(snapshot(late_own=False), "hashtags").serve_model


def test_nothing_to_measure_serves_the_baseline() -> None:
    empty = snapshot(late_own=True)
    empty.posts = Posts(empty.posts.frame.iloc[:0], frozenset())
    assert not suggestion_gate.decision(empty, "locations").serve_model


def test_warm_decides_off_the_request_path() -> None:
    snap = snapshot(late_own=True)
    suggestion_gate.warm(snap).join(timeout=30)
    cached = suggestion_gate._decided["locations"]
    assert cached[0] is snap and cached[1].serve_model
