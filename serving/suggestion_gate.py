"""The promotion gate for hashtag and location suggestions: the taste model serves only while it
beats popularity on a holdout by the gate's margin (`ml.gate`, the rule the registry applies to
the trained models); otherwise every viewer gets the popularity baseline, named in
`model_version` (`hashtags/baseline-popularity`, `locations/baseline-popularity`).

Neither suggester is a trained artifact (both score the live snapshot), so there is no registry
version to gate; the holdout is taken from the snapshot itself, the first time a snapshot is
asked: the posts of its latest HOLDOUT_SHARE of time are hidden, and for (an evenly spaced sample
of) GATE_USERS authors who tagged something in that span, Recall@GATE_K of the taste model and of
popularity, both computed on the earlier posts under the same visibility, against the tags /
places they went on to use. Decided once per snapshot (a reload decides again on its data), in a
background thread as the snapshot loads (`warm`), so requests rarely wait for it; with no author
to measure on, the baseline serves (a model is never served unmeasured).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from ml.gate import PROMOTION_MARGIN, beats
from serving import hashtags, locations
from serving.snapshot import Posts

HOLDOUT_SHARE = 0.25
GATE_K = 10
GATE_USERS = 100  # authors measured: about 1-2 s for both suggesters on the demo snapshot


@dataclass(frozen=True)
class Suggester:
    """One suggestion model and its baseline: `model` and `baseline` rank for a viewer;
    `used` lists what a post row tags (hashtags, or its place)."""

    name: str
    model: Callable[[Any, int, int], tuple[str, list[Any]]]
    baseline: Callable[[Any, int, int], list[Any]]
    baseline_version: str
    used: Callable[[Posts, int], set[Any]]


def _tags_used(posts: Posts, row: int) -> set[Any]:
    return {t.lower().lstrip("#") for t in map(str, posts.frame["hashtags"].iat[row] or ())}


def _place_used(posts: Posts, row: int) -> set[Any]:
    place = int(posts.location_ids[row])
    return {place} if place > 0 else set()


SUGGESTERS = {
    "hashtags": Suggester(
        "hashtags",
        hashtags.suggest_hashtags,
        hashtags.popular_hashtags,
        hashtags.BASELINE_VERSION,
        _tags_used,
    ),
    "locations": Suggester(
        "locations",
        locations.suggest_locations,
        locations.popular_locations,
        locations.BASELINE_VERSION,
        _place_used,
    ),
}


@dataclass(frozen=True)
class GateDecision:
    name: str
    serve_model: bool
    model_recall: float
    baseline_recall: float
    users: int

    @property
    def reason(self) -> str:
        verdict = "beats" if self.serve_model else "does not beat"
        return (
            f"{self.name} taste Recall@{GATE_K} {self.model_recall:.3f} {verdict} popularity "
            f"{self.baseline_recall:.3f} by {PROMOTION_MARGIN:.0%} on {self.users} held-out users"
        )


def evaluate(
    snapshot: Any,
    suggester: Suggester,
    share: float = HOLDOUT_SHARE,
    max_users: int = GATE_USERS,
) -> GateDecision:
    """Taste model against popularity on the snapshot's latest `share` of time (see module)."""
    posts: Posts = snapshot.posts
    times = posts.created_ts
    if len(times) == 0:
        return GateDecision(suggester.name, False, float("nan"), float("nan"), 0)
    cutoff = float(times.max()) - share * float(times.max() - times.min())
    held: dict[int, set[Any]] = {}
    for row in np.flatnonzero(times > cutoff).tolist():
        used = suggester.used(posts, row)
        if used:
            held.setdefault(int(posts.author_ids[row]), set()).update(used)
    users = sorted(held)
    if len(users) > max_users:
        users = [users[i] for i in np.linspace(0, len(users) - 1, max_users).astype(int)]
    past = SimpleNamespace(
        posts=Posts(posts.frame[posts.frame["created_ts"] <= cutoff], posts.deleted),
        visibility=snapshot.visibility,
        follows=snapshot.follows,
        seen_posts=snapshot.seen_posts,
    )
    model, baseline = [], []
    for user in users:
        _, ranked = suggester.model(past, user, GATE_K)
        model.append(_recall(ranked, held[user]))
        baseline.append(_recall(suggester.baseline(past, user, GATE_K), held[user]))
    if not users:
        return GateDecision(suggester.name, False, float("nan"), float("nan"), 0)
    m, b = float(np.mean(model)), float(np.mean(baseline))
    return GateDecision(suggester.name, beats(m, b, PROMOTION_MARGIN), m, b, len(users))


def _recall(ranked: Sequence[Any], held: set[Any]) -> float:
    return len({item[0] for item in ranked} & held) / len(held)


_lock = threading.Lock()
_decided: dict[str, tuple[Any, GateDecision]] = {}  # name -> (the snapshot, its decision)


def decision(snapshot: Any, name: str) -> GateDecision:
    """The gate's decision for this snapshot (computed once, kept for the latest snapshot)."""
    with _lock:
        cached = _decided.get(name)
        if cached is not None and cached[0] is snapshot:
            return cached[1]
        decided = evaluate(snapshot, SUGGESTERS[name])
        _decided[name] = (snapshot, decided)
        return decided


def suggest(snapshot: Any, name: str, user_id: int, k: int) -> tuple[str, list[Any]]:
    """(model_version, ranked) for the viewer: the taste model when the gate lets it serve, else
    the popularity baseline, named as such."""
    suggester = SUGGESTERS[name]
    if decision(snapshot, name).serve_model:
        return suggester.model(snapshot, user_id, k)
    return suggester.baseline_version, suggester.baseline(snapshot, user_id, k)


def warm(snapshot: Any) -> threading.Thread:
    """Decide for every suggester in a background thread (called when a snapshot loads)."""

    def decide_all() -> None:
        for name in SUGGESTERS:
            decision(snapshot, name)

    thread = threading.Thread(target=decide_all, name="suggestion-gate", daemon=True)
    thread.start()
    return thread
