"""Experiment configs, deterministic assignment and the registry that re-reads its folder."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from experiments import ExperimentConfigError, ExperimentRegistry, parse_experiment
from experiments.assignment import assign, bucket

KNOWN = {"feed-ranker@champion", "feed-ranker/2", "feed-ranker/3"}
AT = datetime(2026, 12, 10, tzinfo=UTC)


def config(**overrides: object) -> dict:
    raw: dict = {
        "name": "ranker-v3",
        "salt": "ranker-v3-salt",
        "surface": "home_feed",
        "start": "2026-12-01T00:00:00Z",
        "end": "2027-01-01T00:00:00Z",
        "arms": [
            {"name": "control", "model": "feed-ranker@champion", "traffic": [0.0, 0.5]},
            {"name": "treatment", "model": "feed-ranker/3", "traffic": [0.5, 1.0]},
        ],
    }
    raw.update(overrides)
    return raw


def refused(raw: dict) -> list[str]:
    with pytest.raises(ExperimentConfigError) as error:
        parse_experiment(raw, "test.json", KNOWN.__contains__)
    return error.value.reasons


def test_a_valid_config_parses() -> None:
    experiment = parse_experiment(config(), known_model=KNOWN.__contains__)
    assert [a.name for a in experiment.arms] == ["control", "treatment"]
    assert experiment.is_active(AT)
    assert not experiment.is_active(datetime(2027, 1, 1, tzinfo=UTC))


def test_overlapping_splits_are_refused_by_name() -> None:
    reasons = refused(
        config(
            arms=[
                {"name": "a", "model": "feed-ranker/2", "traffic": [0.0, 0.6]},
                {"name": "b", "model": "feed-ranker/3", "traffic": [0.5, 1.0]},
            ]
        )
    )
    assert any("'a' [0.0, 0.6) overlaps 'b' [0.5, 1.0)" in r for r in reasons), reasons
    assert any("sum to 1.1" in r for r in reasons), reasons


def test_splits_not_summing_to_one_are_refused() -> None:
    reasons = refused(
        config(
            arms=[
                {"name": "a", "model": "feed-ranker/2", "traffic": [0.0, 0.4]},
                {"name": "b", "model": "feed-ranker/3", "traffic": [0.5, 1.0]},
            ]
        )
    )
    assert reasons == ["arms: traffic splits sum to 0.9, not 1"]


def test_unknown_model_and_every_other_reason_at_once() -> None:
    reasons = refused(
        config(
            surface="reels",
            end="2026-11-01T00:00:00Z",
            arms=[
                {"name": "a", "model": "feed-ranker/99", "traffic": [0.0, 0.5]},
                {"name": "a", "model": "feed-ranker/2", "traffic": [0.5, 1.0]},
            ],
        )
    )
    assert "arms[0].model: unknown model version or alias 'feed-ranker/99'" in reasons
    assert "surface: expected one of home_feed, explore" in reasons
    assert "end: must be after start" in reasons
    assert "arms: the name 'a' is used twice" in reasons


def test_assignment_is_deterministic_and_follows_the_split() -> None:
    experiment = parse_experiment(
        config(
            arms=[
                {"name": "control", "model": "feed-ranker/2", "traffic": [0.0, 0.2]},
                {"name": "treatment", "model": "feed-ranker/3", "traffic": [0.2, 1.0]},
            ]
        )
    )
    counts = Counter(assign(experiment, user).name for user in range(1, 20_001))
    # binomial sd of the control count: sqrt(20000 * 0.2 * 0.8) ~ 57; 5 sd either side
    assert abs(counts["control"] - 4_000) < 290, counts
    assert [assign(experiment, u).name for u in range(1, 50)] == [
        assign(experiment, u).name for u in range(1, 50)
    ]
    # another salt reshuffles: about half the users change arm, not none and not all
    other = parse_experiment(config(salt="another"))
    moved = sum(
        (bucket("ranker-v3-salt", u) < 0.5) != (bucket("another", u) < 0.5) for u in range(1, 2001)
    )
    assert 800 < moved < 1200
    assert {assign(other, u).name for u in range(1, 100)} == {"control", "treatment"}


def write(folder: Path, name: str, raw: dict) -> Path:
    path = folder / f"{name}.json"
    path.write_bytes(orjson.dumps(raw))
    return path


def test_registry_rereads_changed_files_and_stops_without_restart(tmp_path: Path) -> None:
    write(tmp_path, "a", config())
    registry = ExperimentRegistry(tmp_path, KNOWN.__contains__, min_interval=0.0)
    assert registry.active("home_feed", AT) is not None
    assert registry.knows_arm("ranker-v3", "treatment")
    assert not registry.knows_arm("ranker-v3", "nope")
    assert not registry.knows_arm("other", "control")

    path = write(tmp_path, "a", config(stopped=True))
    os.utime(path, ns=(1, 1))  # a different mtime even on a coarse clock
    assert registry.refresh()
    assert registry.active("home_feed", AT) is None
    assert registry.knows_arm("ranker-v3", "control")  # impressions served before the stop

    write(tmp_path, "a", config())
    registry.refresh(force=True)
    registry.stop("ranker-v3")
    assert orjson.loads(path.read_bytes())["stopped"] is True
    assert registry.active("home_feed", AT) is None


def test_registry_refuses_bad_files_and_overlapping_experiments(tmp_path: Path) -> None:
    write(tmp_path, "a", config())
    write(tmp_path, "b", config(name="later", start="2026-12-15T00:00:00Z"))
    write(tmp_path, "c", config(name="broken", arms=[]))
    (tmp_path / "d.json").write_text("{not json")
    registry = ExperimentRegistry(tmp_path, KNOWN.__contains__)
    assert set(registry.experiments) == {"ranker-v3"}
    assert "overlap on home_feed" in registry.errors["b.json"][0]
    assert registry.errors["c.json"] == ["arms: expected a list of at least two arms"]
    assert registry.errors["d.json"][0].startswith("malformed JSON")


def test_an_interleaving_config_has_two_arms_without_traffic() -> None:
    arms = [
        {"name": "control", "model": "feed-ranker@champion"},
        {"name": "treatment", "model": "feed-ranker/3"},
    ]
    experiment = parse_experiment(config(kind="interleaving", arms=arms), "t", KNOWN.__contains__)
    assert experiment.interleaved and [a.name for a in experiment.arms] == ["control", "treatment"]
    reasons = refused(
        config(
            kind="interleaving",
            arms=[*arms, {"name": "third", "model": "feed-ranker/2"}],
        )
    )
    assert "arms: interleaving merges exactly two arms" in reasons, reasons
    reasons = refused(config(kind="interleaving"))  # the A/B arms, with traffic
    assert any("omit traffic" in r for r in reasons), reasons
    assert any(
        r.startswith("kind: expected one of ab, interleaving") for r in refused(config(kind="x"))
    )
