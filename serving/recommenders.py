"""Who-to-follow and Explore for the API: the registered champions when they load, else the
popularity baselines the promotion gate measured them against (most followed accounts; most
engaged recent posts), named `<model>/baseline-popularity` in `model_version`; always behind
the visibility rules (applied by the routers). No champion means none beat popularity on its
holdout (or none was trained), so serving popularity is the better choice, not a degradation.

A model's answer is over-fetched (models do not know this minute's blocks and mutes) and the
routers filter it; the baselines need nothing but the serving snapshot.
"""

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from appconfig import Settings
from serving.snapshot import ServingSnapshot

log = logging.getLogger(__name__)
WHO_TO_FOLLOW_BASELINE = "who-to-follow/baseline-popularity"
EXPLORE_BASELINE = "explore/baseline-popularity"


def _ids(answer: Any) -> list[tuple[int, float]]:
    """A recommender's answer (ids, (id, score) pairs, records or a DataFrame) as pairs."""
    if hasattr(answer, "itertuples"):
        columns = list(answer.columns)
        id_column = next(c for c in columns if c.endswith("_id") or c == "id")
        score_column = "score" if "score" in columns else None
        return [
            (int(row[id_column]), float(row[score_column]) if score_column else 0.0)
            for row in answer.to_dict(orient="records")
        ]
    pairs = []
    for item in answer:
        if isinstance(item, (tuple, list)):
            pairs.append((int(item[0]), float(item[1]) if len(item) > 1 else 0.0))
        elif hasattr(item, "score"):
            key = next(a for a in ("user_id", "post_id", "id", "item_id") if hasattr(item, a))
            pairs.append((int(getattr(item, key)), float(item.score)))
        else:
            pairs.append((int(item), 0.0))
    return pairs


@dataclass
class Recommenders:
    who_to_follow: Any = None
    explore: Any = None
    who_to_follow_version: str = WHO_TO_FOLLOW_BASELINE
    explore_version: str = EXPLORE_BASELINE

    @classmethod
    def load(cls, settings: Settings) -> "Recommenders":
        """The `champion` of `who-to-follow` and `explore`, each optional."""
        found = cls()
        loaders: dict[str, Callable[[str], tuple[Any, str]]] = {}
        try:
            from ml.tracking import tracking_uri

            uri = tracking_uri(settings)
            from ml import recommenders  # noqa: F401  (the recommendation package, when present)

            for name in ("who-to-follow", "explore"):
                loaders[name] = _champion_loader(uri)
        except Exception as exc:
            log.info("recommendation models not available, using baselines: %s", exc)
        for name, attribute in (("who-to-follow", "who_to_follow"), ("explore", "explore")):
            if name not in loaders:
                continue
            try:
                model, version = loaders[name](name)
                setattr(found, attribute, model)
                setattr(found, f"{attribute}_version", version)
            except Exception as exc:
                log.info("no %s champion, using the baseline: %s", name, exc)
        return found

    # --- who to follow ---

    def suggest(self, snapshot: ServingSnapshot, user_id: int, k: int) -> list[tuple[int, float]]:
        """Candidates (over-fetched), best first; not yet filtered by visibility."""
        if self.who_to_follow is not None:
            try:
                return _ids(self.who_to_follow.recommend(user_id, k * 3, snapshot.visibility))
            except Exception as exc:
                log.warning("who-to-follow model failed, using the baseline: %s", exc)
        return popular_accounts(snapshot, user_id, k * 3)

    # --- explore ---

    def explore_pairs(
        self, snapshot: ServingSnapshot, user_id: int, k: int
    ) -> list[tuple[int, float]]:
        if self.explore is not None:
            try:
                return _ids(self._explore(snapshot, user_id, k * 3))
            except Exception as exc:
                log.warning("explore model failed, using the baseline: %s", exc)
        return popular_outside(snapshot, user_id, k * 3)

    def explore_posts(self, snapshot: ServingSnapshot, user_id: int, k: int) -> list[int]:
        """Post ids from the Explore model (candidate source for the home feed)."""
        if self.explore is None:
            raise LookupError("no Explore model")
        return [p for p, _ in _ids(self._explore(snapshot, user_id, k))]

    def _explore(self, snapshot: ServingSnapshot, user_id: int, k: int) -> Any:
        """The model's answer at the snapshot's clock (its freshness rule's `now`) when it
        takes one."""
        clock = getattr(snapshot, "clock", None)
        if clock is not None and "now" in inspect.signature(self.explore.recommend).parameters:
            return self.explore.recommend(user_id, k, snapshot.visibility, now=clock.now())
        return self.explore.recommend(user_id, k, snapshot.visibility)


def _champion_loader(uri: str) -> Callable[[str], tuple[Any, str]]:
    def load(name: str) -> tuple[Any, str]:
        from ml import recommenders

        loader = getattr(recommenders, "load_champion", None)
        if loader is None:
            raise LookupError("ml.recommenders has no load_champion")
        model = loader(uri, name)
        # named like the baselines (`<model>/<version>`, Explore `<model>/<kind>/<version>`:
        # hybrid or collaborative), so model_version says which served
        version = getattr(model, "version", "") or "champion"
        kind = getattr(model, "kind", None)
        return model, f"{name}/{kind}/{version}" if kind else f"{name}/{version}"

    return load


def popular_accounts(snapshot: ServingSnapshot, user_id: int, k: int) -> list[tuple[int, float]]:
    """The most followed accounts the user may be suggested: who-to-follow's baseline."""
    graph = snapshot.visibility
    popular = snapshot.users["follower_count"].sort_values(ascending=False, kind="stable")
    ranked: list[tuple[int, float]] = []
    for candidate, followers in popular.items():
        if graph.can_suggest(user_id, int(candidate)):
            ranked.append((int(candidate), float(followers)))
            if len(ranked) >= k:
                break
    return ranked


def popular_outside(snapshot: ServingSnapshot, user_id: int, k: int) -> list[tuple[int, float]]:
    """The most engaged recent posts by accounts the user does not follow."""
    following = np.fromiter(snapshot.follows(user_id), dtype="int64")
    posts = snapshot.posts
    rows = snapshot.popular_rows
    rows = rows[~np.isin(posts.author_ids[rows], following)][: k * 2]
    return [(int(posts.post_ids[r]), float(posts.popularity[r])) for r in rows]
