"""Which ranker serves a request: the champion, or the model of the viewer's arm when an
experiment runs on the surface.

Each arm's model (`feed-ranker@challenger`, `feed-ranker/7`) gets a `ModelHolder` of its own,
built once and refreshed with the champion's, so an alias an arm follows moves without a
restart. The experiment files are re-read at most once a second (`ExperimentRegistry.refresh`),
so stopping an experiment (its file, or `POST /admin/experiments/{name}/stop`) takes effect on
the next requests. A config naming a model the registry does not have is refused at load.

An interleaving experiment routes every viewer to both arms' models: the feed (and `/v1/rank`)
scores its candidates with each, orders each list by its own rules, and merges the two by team
draft (`Routed.interleave`, seeded per request); every item then carries the arm that placed
it, which the client copies into its impression, so the analysis credits each engagement to
the ranker that earned it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from experiments import ExperimentRegistry
from experiments.interleaving import A, seed_of, team_draft
from serving.model_loading import ModelHolder

log = logging.getLogger(__name__)

BASELINE_ALIAS = "baseline"  # an arm `<name>@baseline` serves the baseline policy


@dataclass(frozen=True)
class Routed:
    models: ModelHolder
    experiment: str | None = None
    arm: str | None = None  # None in an interleaving experiment: each item carries its arm
    partner: ModelHolder | None = None  # interleaving: the second arm's model
    arms: tuple[str, str] | None = None  # interleaving: the arms of `models` and `partner`
    salt: str = ""

    @property
    def interleaved(self) -> bool:
        return self.partner is not None

    @property
    def version(self) -> str:
        """The ranker(s) behind a feed: one version, or both of an interleaving."""
        if self.partner is None:
            return self.models.version
        return f"{self.models.version}+{self.partner.version}"

    def interleave(
        self, order_a: np.ndarray, order_b: np.ndarray, length: int, *seed: object
    ) -> tuple[np.ndarray, np.ndarray]:
        """Team draft of two orders of the same rows (first arm's, second arm's), at most
        `length` long: the merged rows and, per row, the name of the arm that placed it. The
        coin flips are seeded by (salt, *seed): the same request merges alike."""
        assert self.arms is not None
        mixed = team_draft(order_a.tolist(), order_b.tolist(), length, seed_of(self.salt, *seed))
        first, second = self.arms
        names = np.array([first if t == A else second for t in mixed.teams], dtype=object)
        return np.asarray(mixed.items, dtype=np.int64), names


class ExperimentRouter:
    def __init__(
        self,
        folder: Path | None,
        champion: ModelHolder,
        holder_for: Callable[[str], ModelHolder],
        known_model: Callable[[str], bool],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.champion = champion
        self.holder_for = holder_for
        self.clock = clock
        self.holders: dict[str, ModelHolder] = {}
        self._lock = threading.Lock()
        self.registry = ExperimentRegistry(folder, known_model=known_model)

    def holder(self, model: str) -> ModelHolder:
        with self._lock:
            found = self.holders.get(model)
            if found is None:
                found = self.holders[model] = self.holder_for(model)
                found.refresh()
            return found

    def route(self, surface: str, user_id: int) -> Routed:
        """The viewer's arm and its model, or the champion outside any experiment."""
        self.registry.refresh()
        assigned = self.registry.assignment(surface, user_id, self.clock())
        if assigned is None:
            return Routed(self.champion)
        experiment, arm = assigned
        if experiment.interleaved:
            first, second = experiment.arms
            return Routed(
                self.holder(first.model),
                experiment.name,
                None,
                partner=self.holder(second.model),
                arms=(first.name, second.name),
                salt=experiment.salt,
            )
        return Routed(self.holder(arm.model), experiment.name, arm.name)

    def refresh_models(self) -> None:
        """Poll each arm's alias (the background model loop calls this beside the champion's)."""
        for holder in list(self.holders.values()):
            holder.refresh()


def mlflow_model_lookup(
    tracking_uri: str,
) -> tuple[Callable[[str], ModelHolder], Callable[[str], bool]]:
    """(holder for a reference, does the registry know it) over an MLflow registry.

    A reference is `<name>@<alias>` or `<name>/<version>`."""

    def split(model: str) -> tuple[str, str, bool]:
        if "@" in model:
            name, alias = model.split("@", 1)
            return name, alias, True
        name, _, version = model.rpartition("/")
        return name, version, False

    def known(model: str) -> bool:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        name, ref, is_alias = split(model)
        if not name or not ref:
            return False
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        try:
            if is_alias:
                client.get_model_version_by_alias(name, ref)
            else:
                client.get_model_version(name, ref)
        except MlflowException:
            return False
        return True

    def baseline_holder(name: str) -> ModelHolder:
        from mlflow import MlflowClient

        from ml.ranking import baseline_version

        def resolve() -> str | None:
            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            found = client.get_model_version_by_alias(name, BASELINE_ALIAS).version
            return baseline_version(name, str(found))

        def load(version: str) -> Any:
            from ml.ranking.publish import load_baseline

            return load_baseline(tracking_uri, name)

        return ModelHolder(resolve, load)

    def holder_for(model: str) -> ModelHolder:
        from mlflow import MlflowClient

        from ml.ranking.scorer import RankerScorer
        from ml.registry import download_version_artifacts

        name, ref, is_alias = split(model)
        if is_alias and ref == BASELINE_ALIAS:
            # the baseline policy arm: the logistic regression serving falls back to, not the
            # neural ranker of the version that carries it (ml.online_promotion reads it alike)
            return baseline_holder(name)

        def resolve() -> str | None:
            if not is_alias:
                return f"{name}/{ref}"
            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            return f"{name}/{client.get_model_version_by_alias(name, ref).version}"

        def load(version: str) -> RankerScorer:
            number = version.rpartition("/")[2]
            scorer = RankerScorer.load(
                download_version_artifacts(tracking_uri, name, number, "scorer")
            )
            scorer.version = version
            return scorer

        return ModelHolder(resolve, load)

    return holder_for, known
