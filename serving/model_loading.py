"""The ranker the API scores with, and how a new champion replaces it without a restart.

`ModelHolder` keeps the last good scorer. `refresh()` asks the registry which version the alias
points at (one cheap call) and loads it only when it changed; any failure (registry down,
broken artifacts) is recorded and the current scorer stays. Without a champion (none yet, or the
promotion gate found none better than the logistic regression baseline) the holder serves that
baseline (alias `baseline`, version `baseline/logistic-regression@<name>/<v>`); with neither,
`RecencyPopularityScorer`, which says so in its version.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

FALLBACK_VERSION = "fallback/recency-popularity"


class Scorer(Protocol):
    version: str
    feature_names: list[str]

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...

    def explain(self, frame: pd.DataFrame) -> pd.DataFrame: ...


class RecencyPopularityScorer:
    """Newer and more engaged posts first: what a feed shows when no model can rank it."""

    version = FALLBACK_VERSION
    feature_names = ["post_request_features__post_age_hours", "post_engagement__engagements_24h"]
    half_life_hours = 12.0

    def _terms(self, frame: pd.DataFrame) -> pd.DataFrame:
        def column(name: str, missing: float) -> pd.Series:
            if name not in frame.columns:
                return pd.Series(missing, index=frame.index, dtype="float64")
            values = pd.to_numeric(frame[name], errors="coerce").astype("float64")
            return values.fillna(missing)

        age = column(self.feature_names[0], 1e6)
        engaged = column(self.feature_names[1], 0.0)
        return pd.DataFrame(
            {
                self.feature_names[0]: -age / self.half_life_hours,
                self.feature_names[1]: np.log1p(engaged.clip(lower=0.0)),
            },
            index=frame.index,
        )

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        logits = self._terms(frame).sum(axis=1).to_numpy("float64")
        return np.asarray(1.0 / (1.0 + np.exp(-logits)))

    def explain(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self._terms(frame)


@dataclass
class ReloadStatus:
    checked_at: float | None = None
    loaded_at: float | None = None
    registry_version: str | None = None
    error: str | None = None


class ModelHolder:
    """The current scorer, swapped atomically; readers take `holder.scorer` once per request."""

    def __init__(
        self,
        resolve_version: Callable[[], str | None],
        load: Callable[[str], Scorer],
        initial: Scorer | None = None,
        retry_failed_after: float = 60.0,
    ) -> None:
        self._resolve_version = resolve_version
        self._load = load
        self.scorer: Scorer = initial or RecencyPopularityScorer()
        self.status = ReloadStatus()
        self._lock = threading.Lock()
        self.retry_failed_after = retry_failed_after
        self._failed: tuple[str, float] | None = None  # a version that would not load, and when

    @property
    def version(self) -> str:
        return self.scorer.version

    def refresh(self) -> bool:
        """Load the alias's version if it moved; True when the scorer changed."""
        with self._lock:
            self.status.checked_at = time.time()
            wanted: str | None = None
            try:
                wanted = self._resolve_version()
                self.status.registry_version = wanted
                if wanted is None or wanted == self.scorer.version:
                    self.status.error = None
                    return False
                failed = self._failed
                if (
                    failed is not None
                    and failed[0] == wanted
                    and time.monotonic() - failed[1] < self.retry_failed_after
                ):
                    return False  # do not download a broken version on every poll
                scorer = self._load(wanted)
            except Exception as exc:  # registry or artifacts broken: keep the last good model
                if wanted is not None:
                    self._failed = (wanted, time.monotonic())
                self.status.error = f"{type(exc).__name__}: {exc}"
                log.warning("model reload failed, keeping %s: %s", self.scorer.version, exc)
                return False
            self.scorer = scorer
            self._failed = None
            self.status.error = None
            self.status.loaded_at = time.time()
            log.info("ranker now %s", scorer.version)
            return True


def mlflow_holder(tracking_uri: str, name: str, alias: str) -> ModelHolder:
    """A holder following `models:/<name>@<alias>` in an MLflow registry, else the baseline the
    promotion gate measured (`models:/<name>@baseline`)."""

    def lookup(client: Any, wanted: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(client.get_model_version_by_alias(name, wanted).version)
        except MlflowException as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc):
                return None  # nothing registered yet: the fallback scorer is expected
            raise

    def resolve() -> str | None:
        from mlflow import MlflowClient

        from ml.ranking import BASELINE_ALIAS, baseline_version

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        found = lookup(client, alias)
        if found is not None:
            return f"{name}/{found}"
        baseline = lookup(client, BASELINE_ALIAS)
        return baseline_version(name, baseline) if baseline is not None else None

    def load(version: str) -> Any:
        from ml.ranking.scorer import load_champion

        if version.startswith("baseline/"):
            from ml.ranking.publish import load_baseline

            return load_baseline(tracking_uri, name)

        scorer = load_champion(tracking_uri, name)
        if scorer.version != version:  # the alias moved between the two calls: fine, newer
            log.info("alias moved to %s while loading %s", scorer.version, version)
        return scorer

    return ModelHolder(resolve, load)
