"""One experiment per JSON file: its arms (a model alias or version each), their traffic split
and its start and end.

    {
      "name": "ranker-v2",
      "salt": "ranker-v2-2026-12",
      "surface": "home_feed",
      "start": "2026-12-01T00:00:00Z",
      "end": "2027-01-01T00:00:00Z",
      "stopped": false,
      "arms": [
        {"name": "control",   "model": "feed-ranker@champion", "traffic": [0.0, 0.5]},
        {"name": "treatment", "model": "feed-ranker/7",        "traffic": [0.5, 1.0]}
      ]
    }

An experiment's `kind` is "ab" (the default: each user sees one arm) or "interleaving": two arms
without `traffic`, whose rankings every user in the experiment sees merged by team draft
(`experiments.interleaving`), each item logged with the arm that placed it.

An arm owns the users whose hash falls in its half-open `traffic` range of [0, 1): ranges are
explicit (not bare percentages) so that growing an arm moves only the users at its edge, and so
that two arms claiming the same users is an error that can be named. A config is refused, with
every reason at once, when ranges overlap, leave a gap (the splits do not sum to 1), or an arm
names a model the registry does not know (`known_model` is passed in: this package does not
import the model registry).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

SURFACES = ("home_feed", "explore")
KINDS = ("ab", "interleaving")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
TOLERANCE = 1e-9


class ExperimentConfigError(ValueError):
    """A refused experiment config; `reasons` lists every problem found."""

    def __init__(self, source: str, reasons: list[str]) -> None:
        self.source = source
        self.reasons = reasons
        super().__init__(f"experiment config {source} refused: " + "; ".join(reasons))


@dataclass(frozen=True)
class Arm:
    name: str
    model: str  # "<registered model>@<alias>" or "<registered model>/<version>"
    low: float
    high: float

    @property
    def share(self) -> float:
        return self.high - self.low


@dataclass(frozen=True)
class Experiment:
    name: str
    salt: str
    surface: str
    start: datetime
    end: datetime
    arms: tuple[Arm, ...]
    stopped: bool = False
    kind: str = "ab"

    @property
    def interleaved(self) -> bool:
        return self.kind == "interleaving"

    def arm(self, name: str) -> Arm | None:
        return next((a for a in self.arms if a.name == name), None)

    def is_active(self, at: datetime) -> bool:
        return not self.stopped and self.start <= at < self.end


def _timestamp(value: Any, field: str, reasons: list[str]) -> datetime | None:
    if not isinstance(value, str):
        reasons.append(f"{field}: expected an ISO-8601 timestamp")
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        reasons.append(f"{field}: not an ISO-8601 timestamp: {value!r}")
        return None
    if parsed.tzinfo is None:
        reasons.append(f"{field}: needs a timezone (UTC)")
        return None
    return parsed.astimezone(UTC)


def _arms(
    raw: Any, reasons: list[str], known_model: Callable[[str], bool] | None, kind: Any = "ab"
) -> list[Arm]:
    if not isinstance(raw, list) or len(raw) < 2:
        reasons.append("arms: expected a list of at least two arms")
        return []
    if kind == "interleaving":
        if len(raw) != 2:
            reasons.append("arms: interleaving merges exactly two arms")
        for i, item in enumerate(raw):
            if isinstance(item, Mapping) and "traffic" in item:
                reasons.append(
                    f"arms[{i}].traffic: interleaving arms share every user's feed; omit traffic"
                )
        raw = [
            {**item, "traffic": [0.0, 1.0]} if isinstance(item, Mapping) else item for item in raw
        ]
    arms: list[Arm] = []
    for i, item in enumerate(raw):
        where = f"arms[{i}]"
        if not isinstance(item, Mapping):
            reasons.append(f"{where}: expected an object")
            continue
        name, model, traffic = item.get("name"), item.get("model"), item.get("traffic")
        ok = True
        if not isinstance(name, str) or not NAME_RE.match(name):
            reasons.append(f"{where}.name: expected a lowercase name ([a-z0-9_-], max 64)")
            ok = False
        if not isinstance(model, str) or not model:
            reasons.append(f"{where}.model: expected a model alias or version")
            ok = False
        elif known_model is not None and not known_model(model):
            reasons.append(f"{where}.model: unknown model version or alias {model!r}")
            ok = False
        if (
            not isinstance(traffic, list)
            or len(traffic) != 2
            or not all(type(v) in (int, float) for v in traffic)
            or not 0 <= traffic[0] < traffic[1] <= 1
        ):
            reasons.append(f"{where}.traffic: expected [low, high) with 0 <= low < high <= 1")
            ok = False
        if ok and isinstance(traffic, list):
            arms.append(Arm(str(name), str(model), float(traffic[0]), float(traffic[1])))
    names = [
        str(i["name"]) for i in raw if isinstance(i, Mapping) and isinstance(i.get("name"), str)
    ]
    for name in sorted({n for n in names if names.count(n) > 1}):
        reasons.append(f"arms: the name {name!r} is used twice")
    if kind == "interleaving":
        return arms
    ordered = sorted(arms, key=lambda a: a.low)
    for left, right in itertools.pairwise(ordered):
        if right.low < left.high - TOLERANCE:
            reasons.append(
                f"arms: traffic of {left.name!r} [{left.low}, {left.high}) overlaps "
                f"{right.name!r} [{right.low}, {right.high})"
            )
    if len(arms) == len(raw):
        total = sum(a.share for a in arms)
        if abs(total - 1.0) > TOLERANCE:
            reasons.append(f"arms: traffic splits sum to {total:.6g}, not 1")
    return arms


def parse_experiment(
    raw: Any, source: str = "<config>", known_model: Callable[[str], bool] | None = None
) -> Experiment:
    """The experiment of one parsed config, or `ExperimentConfigError` with every reason."""
    if not isinstance(raw, Mapping):
        raise ExperimentConfigError(source, ["expected a JSON object"])
    reasons: list[str] = []
    name, salt, surface = raw.get("name"), raw.get("salt", raw.get("name")), raw.get("surface")
    if not isinstance(name, str) or not NAME_RE.match(name):
        reasons.append("name: expected a lowercase name ([a-z0-9_-], max 64)")
    if not isinstance(salt, str) or not salt:
        reasons.append("salt: expected a non-empty string")
    if surface not in SURFACES:
        reasons.append(f"surface: expected one of {', '.join(SURFACES)}")
    kind = raw.get("kind", "ab")
    if kind not in KINDS:
        reasons.append(f"kind: expected one of {', '.join(KINDS)}")
    start = _timestamp(raw.get("start"), "start", reasons)
    end = _timestamp(raw.get("end"), "end", reasons)
    if start is not None and end is not None and end <= start:
        reasons.append("end: must be after start")
    stopped = raw.get("stopped", False)
    if type(stopped) is not bool:
        reasons.append("stopped: expected a boolean")
    unknown = sorted(
        set(raw) - {"name", "salt", "surface", "start", "end", "stopped", "arms", "kind"}
    )
    if unknown:
        reasons.append(f"unknown keys: {', '.join(unknown)}")
    arms = _arms(raw.get("arms"), reasons, known_model, kind)
    if reasons:
        raise ExperimentConfigError(source, reasons)
    assert start is not None and end is not None
    return Experiment(
        str(name), str(salt), str(surface), start, end, tuple(arms), bool(stopped), str(kind)
    )


def load_experiment(path: Path, known_model: Callable[[str], bool] | None = None) -> Experiment:
    """Read and validate one config file."""
    try:
        raw = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ExperimentConfigError(str(path), [f"malformed JSON: {exc}"]) from exc
    return parse_experiment(raw, str(path), known_model)


def overlapping(experiments: list[Experiment]) -> list[tuple[Experiment, Experiment, str]]:
    """Pairs that may not run together, the later-starting one second, with the reason: two
    experiments on one surface whose windows intersect would both claim the same requests."""
    reasons = []
    live = sorted((e for e in experiments if not e.stopped), key=lambda e: (e.surface, e.start))
    for i, a in enumerate(live):
        for b in live[i + 1 :]:
            if a.surface == b.surface and a.start < b.end and b.start < a.end:
                reason = (
                    f"experiments {a.name!r} and {b.name!r} overlap on {a.surface} "
                    f"between {max(a.start, b.start):%Y-%m-%d} and {min(a.end, b.end):%Y-%m-%d}"
                )
                reasons.append((a, b, reason))
    return reasons
