"""The id and time columns of a synthetic training frame, shared by the tests that build a small
world of impressions (what each world makes engaging is the test's own)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def impression_keys(rng: np.random.Generator, rows: int) -> dict[str, Any]:
    """One impression a minute from 2026-01-01, 50 viewers and 50 authors drawn from `rng`."""
    return {
        "impression_id": np.arange(rows),
        "user_id": rng.integers(0, 50, rows),
        "post_id": np.arange(rows),
        "author_id": rng.integers(0, 50, rows),
        "event_timestamp": pd.Timestamp("2026-01-01", tz="UTC")
        + pd.to_timedelta(np.arange(rows), unit="min"),
    }
