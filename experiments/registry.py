"""The experiments in a folder of JSON files, re-read when a file changes: stopping an
experiment is an edit of its file (or `stop(name)`, which makes that edit), never a restart.

`refresh()` costs one `stat` per file when nothing changed, so serving calls it per request at
most once a second. A file that fails validation is not served (its reasons are in `errors`);
the other experiments keep running. Of two live experiments on one surface whose windows
overlap, the one starting later is refused.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson

from experiments.assignment import assign
from experiments.config import (
    Arm,
    Experiment,
    ExperimentConfigError,
    load_experiment,
    overlapping,
)

log = logging.getLogger(__name__)


class ExperimentRegistry:
    def __init__(
        self,
        folder: Path | None,
        known_model: Callable[[str], bool] | None = None,
        min_interval: float = 1.0,
    ) -> None:
        self.folder = folder
        self.known_model = known_model
        self.min_interval = min_interval
        self.experiments: dict[str, Experiment] = {}
        self.paths: dict[str, Path] = {}
        self.errors: dict[str, list[str]] = {}  # file -> why it is not served
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.refresh(force=True)

    def _files(self) -> list[Path]:
        if self.folder is None or not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.json"))

    def refresh(self, force: bool = False) -> bool:
        """Re-read the folder if a file was added, removed or changed; True when it was."""
        now = time.monotonic()
        if not force and now - self._checked < self.min_interval:
            return False
        with self._lock:
            self._checked = now
            files = self._files()
            signature = []
            for path in files:
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                signature.append((path.name, st.st_mtime_ns, st.st_size))
            if not force and tuple(signature) == self._signature:
                return False
            experiments: dict[str, Experiment] = {}
            paths: dict[str, Path] = {}
            errors: dict[str, list[str]] = {}
            for path in files:
                try:
                    experiment = load_experiment(path, self.known_model)
                except (ExperimentConfigError, OSError) as exc:
                    errors[path.name] = getattr(exc, "reasons", [str(exc)])
                    continue
                if experiment.name in experiments:
                    errors[path.name] = [f"name {experiment.name!r} is already used"]
                    continue
                experiments[experiment.name] = experiment
                paths[experiment.name] = path
            for _, later, reason in overlapping(list(experiments.values())):
                if later.name in experiments:
                    errors[paths[later.name].name] = [reason]
                    del experiments[later.name]
            for name, reasons in errors.items():
                log.error("experiment %s not served: %s", name, "; ".join(reasons))
            self.experiments, self.paths, self.errors = experiments, paths, errors
            self._signature = tuple(signature)
            return True

    def active(self, surface: str, at: datetime) -> Experiment | None:
        """The live experiment on `surface` at `at` (at most one: overlaps are refused)."""
        for experiment in self.experiments.values():
            if experiment.surface == surface and experiment.is_active(at):
                return experiment
        return None

    def assignment(self, surface: str, user_id: int, at: datetime) -> tuple[Experiment, Arm] | None:
        experiment = self.active(surface, at)
        if experiment is None:
            return None
        return experiment, assign(experiment, user_id)

    def knows_arm(self, experiment: str, arm: str) -> bool:
        """Whether an impression may carry (experiment, arm); stopped experiments count (their
        impressions were served before the stop)."""
        found = self.experiments.get(experiment)
        return found is not None and found.arm(arm) is not None

    def models(self) -> set[str]:
        return {arm.model for e in self.experiments.values() for arm in e.arms}

    def stop(self, name: str) -> Experiment:
        """Mark the experiment stopped in its file (atomically) and re-read; KeyError if unknown."""
        path = self.paths[name]
        raw = orjson.loads(path.read_bytes())
        raw["stopped"] = True
        tmp = path.with_suffix(".json.tmp")
        tmp.write_bytes(orjson.dumps(raw, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)
        self.refresh(force=True)
        return self.experiments[name]
