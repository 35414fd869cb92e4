"""Recommenders on Spark ALS: who to follow, Explore posts, their evaluation, MovieLens checks.

Serving's entry point is `load_champion(tracking_uri, name)`; every `recommend(user_id, k,
visibility)` call filters with the `VisibilityGraph` given (or the one set on the model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml.recommenders.explore import Explore
    from ml.recommenders.who_to_follow import WhoToFollow
    from visibility import VisibilityGraph


def load_champion(
    tracking_uri: str, name: str, visibility: VisibilityGraph | None = None
) -> WhoToFollow | Explore:
    """The `champion` of `who-to-follow` or `explore` from the registry, `.version` set.

    Without a visibility graph here, pass one to every `recommend(user_id, k, visibility)`."""
    from ml.recommenders.publish import load_champion as load

    model, _ = load(name, visibility, tracking_uri=tracking_uri)
    return model
