"""Location suggestions (`GET /v1/users/{id}/suggested-locations`), privacy-filtered.

Built exactly like hashtag suggestions (`serving.hashtags`), on the same per-post taste weights
and the same visibility mask, so a place is only ever known from a post the viewer may open:
never from a private account they do not follow, a blocked (either way) or muted author, or a
deleted post. A place is a post's tagged `location_id` (dim_posts), shown with its name.
- model (`locations/taste`): places of the posts the viewer has seen, follows and wrote,
  recency-weighted; popular visible places fill the rest;
- baseline (`locations/baseline-popularity`): the places of the most visible posts, by how many
  visible posts are tagged there (what a user with no located history gets).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from serving.hashtags import taste_weights

MODEL_VERSION = "locations/taste"
BASELINE_VERSION = "locations/baseline-popularity"


def _popular(posts: Any, visible: np.ndarray) -> tuple[Counter[int], dict[int, str]]:
    names: dict[int, str] = {}
    popular: Counter[int] = Counter()
    for row in np.flatnonzero(visible & (posts.location_ids > 0)).tolist():
        place = int(posts.location_ids[row])
        popular[place] += 1
        names.setdefault(place, posts.location_names[row])
    return popular, names


def popular_locations(snapshot: Any, user_id: int, k: int) -> list[tuple[int, str, float]]:
    """The baseline for this viewer: the places of most posts they may see, ties by id."""
    visible, _ = taste_weights(snapshot, user_id)
    popular, names = _popular(snapshot.posts, visible)
    top = sorted(popular.items(), key=lambda item: (-item[1], item[0]))[:k]
    return [(p, names[p], float(n)) for p, n in top]


def suggest_locations(
    snapshot: Any, user_id: int, k: int
) -> tuple[str, list[tuple[int, str, float]]]:
    """(model_version, [(location_id, name, score)] best first) for the viewer: the taste model,
    or the baseline for a viewer without located history (`serving.suggestion_gate` decides
    whether the taste model serves at all)."""
    posts = snapshot.posts
    visible, weight = taste_weights(snapshot, user_id)
    located = posts.location_ids > 0
    popular, names = _popular(posts, visible)
    taste: dict[int, float] = {}
    for row in np.flatnonzero((weight > 0) & located).tolist():
        place = int(posts.location_ids[row])
        taste[place] = taste.get(place, 0.0) + float(weight[row])
    if not taste:
        top = sorted(popular.items(), key=lambda item: (-item[1], item[0]))[:k]
        return BASELINE_VERSION, [(p, names[p], float(n)) for p, n in top]
    ranked = sorted(taste.items(), key=lambda item: (-item[1], item[0]))[:k]
    chosen = {p for p, _ in ranked}
    fill = sorted(popular.items(), key=lambda item: (-item[1], item[0]))
    ranked += [(p, 0.0) for p, _ in fill if p not in chosen]
    return MODEL_VERSION, [(p, names[p], s) for p, s in ranked[:k]]
