"""Hashtag suggestions (`GET /v1/users/{id}/suggested-hashtags`), privacy-filtered.

Only posts the viewer may see count, so no tag is ever known from content they could not open
(a private account's post, a blocked author's, a deleted one); trending figures computed over
every post are deliberately not used for that reason.
- model (`hashtags/taste`): tags of the posts the viewer has seen, of accounts they follow and
  of their own, each post weighted by recency (half-life HALF_LIFE_HOURS), seen posts and their
  own counting double; each of those tags is scored by its share of that taste plus BLEND times
  its share of visible tag use (so a tag both near and widely used beats a one-off near tag);
  popular visible tags fill the rest;
- baseline (`hashtags/baseline-popularity`): the tags of the most visible posts, by how many
  visible posts use them (what a user with no history gets).
Held-out tag use (`bench.suggestions_quality`, docs/benchmarks.md): Recall@10 only ~1.03-1.05x
popularity (BLEND = 1.0 chosen on seed 7, confirmed on seed 11; without it 0.98-0.99x): on the
generated workload tags are dominated by a Zipf head and timed trends, which popularity gets.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

MODEL_VERSION = "hashtags/taste"
BASELINE_VERSION = "hashtags/baseline-popularity"
HALF_LIFE_HOURS = 48.0
BLEND = 1.0  # weight of the visible-popularity share in the taste score


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(t).lower().lstrip("#") for t in value if str(t).strip()]


def taste_weights(snapshot: Any, user_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(visible, weight) per snapshot post row for the viewer: `visible` is what they may see
    (not private-to-them, blocked either way, muted or deleted); `weight` is the recency-decayed
    weight of the visible posts they follow, saw (counting double) or wrote. Shared by hashtag and
    location suggestions (`serving.locations`) so both read the same taste and the same privacy
    filter."""
    posts = snapshot.posts
    visible = snapshot.visibility.visible_posts_mask(user_id, posts.post_ids, posts.author_ids)
    following = np.fromiter(snapshot.follows(user_id) | {user_id}, dtype=np.int64)
    seen = np.fromiter(snapshot.seen_posts.get(user_id, frozenset()), dtype=np.int64)
    close = visible & np.isin(posts.author_ids, following)
    viewed = visible & np.isin(posts.post_ids, seen)
    newest = float(posts.created_ts.max()) if len(posts.created_ts) else 0.0
    decay = 0.5 ** ((newest - posts.created_ts) / (HALF_LIFE_HOURS * 3600.0))
    weight = np.where(close, decay, 0.0) + np.where(viewed, 2.0 * decay, 0.0)
    weight = np.where(visible & (posts.author_ids == user_id), weight + decay, weight)
    return visible, weight


def _popular(snapshot: Any, visible: np.ndarray) -> Counter[str]:
    hashtags = snapshot.posts.frame["hashtags"].to_numpy()
    popular: Counter[str] = Counter()
    for row in np.flatnonzero(visible).tolist():
        popular.update(set(_tags(hashtags[row])))
    return popular


def popular_hashtags(snapshot: Any, user_id: int, k: int) -> list[tuple[str, float]]:
    """The baseline for this viewer: the tags of most posts they may see, ties by name."""
    visible, _ = taste_weights(snapshot, user_id)
    counts = _popular(snapshot, visible)
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]
    return [(t, float(n)) for t, n in top]


def suggest_hashtags(snapshot: Any, user_id: int, k: int) -> tuple[str, list[tuple[str, float]]]:
    """(model_version, [(hashtag, score)] best first) for the viewer: the taste model, or the
    baseline for a viewer without history (`serving.suggestion_gate` decides whether the taste
    model serves at all)."""
    visible, weight = taste_weights(snapshot, user_id)
    hashtags = snapshot.posts.frame["hashtags"].to_numpy()
    popular = _popular(snapshot, visible)
    taste: dict[str, float] = {}
    for row in np.flatnonzero(weight > 0).tolist():
        for tag in set(_tags(hashtags[row])):
            taste[tag] = taste.get(tag, 0.0) + float(weight[row])
    if not taste:
        top = sorted(popular.items(), key=lambda item: (-item[1], item[0]))[:k]
        return BASELINE_VERSION, [(t, float(n)) for t, n in top]
    total_taste, total_pop = sum(taste.values()), max(sum(popular.values()), 1)
    blended = {t: w / total_taste + BLEND * popular.get(t, 0) / total_pop for t, w in taste.items()}
    ranked = sorted(blended.items(), key=lambda item: (-item[1], item[0]))[:k]
    chosen = {t for t, _ in ranked}
    ranked += [(t, 0.0) for t, _ in popular.most_common(k + len(chosen)) if t not in chosen]
    return MODEL_VERSION, ranked[:k]
