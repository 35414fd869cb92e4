"""Population stability index: ~0 on the same distribution, past the threshold on a shifted one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ml.drift import (
    THRESHOLD,
    DriftReference,
    drifting,
    population_stability,
    psi,
    reference_from,
)

ROWS = 5_000


def batch(seed: int, shift: float = 0.0, video_share: float = 0.3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(5, ROWS).astype("float64")
    counts[rng.random(ROWS) < 0.1] = np.nan  # nulls are a bin of their own
    media = np.where(rng.random(ROWS) < video_share, "video", "photo")
    return pd.DataFrame(
        {
            "post_age_hours": rng.lognormal(2.0 + shift, 1.0, ROWS),
            "likes_24h": counts,
            "media_type": media,
            "is_private": rng.random(ROWS) < 0.2,
            "event_timestamp": pd.Timestamp("2026-11-01", tz="UTC"),
        }
    )


def test_same_distribution_is_stable() -> None:
    reference = reference_from(
        batch(1), ["post_age_hours", "likes_24h", "media_type", "is_private"]
    )
    stability = population_stability(reference, batch(2))
    assert set(stability) == {"post_age_hours", "likes_24h", "media_type", "is_private"}
    assert max(stability.values()) < 0.02
    assert drifting(stability) == []


def test_shifted_distributions_drift_past_the_threshold() -> None:
    columns = ["post_age_hours", "likes_24h", "media_type", "is_private"]
    reference = reference_from(batch(1), columns)
    shifted = batch(2, shift=1.0, video_share=0.8)
    stability = population_stability(reference, shifted)
    assert stability["post_age_hours"] > THRESHOLD
    assert stability["media_type"] > THRESHOLD
    assert stability["likes_24h"] < 0.02 and stability["is_private"] < 0.02
    # worst first
    assert drifting(stability) == sorted(
        ["post_age_hours", "media_type"], key=lambda n: -stability[n]
    )
    small = population_stability(reference, batch(3, shift=0.05))
    assert small["post_age_hours"] < THRESHOLD


def test_a_feature_missing_from_the_batch_counts_as_all_null() -> None:
    reference = reference_from(batch(1), ["post_age_hours", "media_type"])
    stability = population_stability(reference, batch(2).drop(columns=["post_age_hours"]))
    assert stability["post_age_hours"] > 1.0
    assert stability["media_type"] < 0.02


def test_reference_survives_json_and_skips_timestamps() -> None:
    reference = reference_from(batch(1), ["post_age_hours", "media_type", "event_timestamp"])
    assert reference.features == ["post_age_hours", "media_type"]
    again = DriftReference.from_dict(json.loads(json.dumps(reference.to_dict())))
    assert again == reference
    numeric = again.numeric[0]
    assert len(numeric.proportions) == len(numeric.edges) + 2  # + above the last edge, + null
    assert sum(numeric.proportions) == pytest.approx(1.0)


def test_psi_formula() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(expected)
    assert np.isfinite(psi([1.0, 0.0], [0.0, 1.0]))  # empty bins do not divide by zero
