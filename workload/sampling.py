"""Vectorized samplers shared by the simulation: when things happen, how late they arrive, ids.

All times are epoch milliseconds (int64, UTC). Everything takes an explicit numpy Generator so a
seed reproduces the workload exactly.
"""

from __future__ import annotations

import numpy as np

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
NEVER = np.iinfo(np.int64).max // 2  # "no end": far beyond any window, still safe to add to

# Relative activity per local hour of day: quiet nights, a lunch bump and an evening peak.
DIURNAL = np.array(
    [0.35, 0.2, 0.12, 0.08, 0.07, 0.1, 0.25, 0.5, 0.7, 0.75, 0.75, 0.8,
     0.95, 0.9, 0.8, 0.75, 0.8, 0.9, 1.0, 1.1, 1.2, 1.2, 1.0, 0.65]
)  # fmt: skip
_ACCEPT = DIURNAL / DIURNAL.max()

# Snowflake-style ids: milliseconds since this epoch in the high bits, a sequence in the low ones.
ID_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z


def diurnal_times(
    rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, tz_hours: np.ndarray
) -> np.ndarray:
    """One time per row in [lo, hi), denser in the row's local daytime (rejection sampling)."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    out = np.empty(len(lo), dtype=np.int64)
    todo = np.arange(len(lo))
    while len(todo):
        span = hi[todo] - lo[todo]
        t = lo[todo] + (rng.random(len(todo)) * span).astype(np.int64)
        local_hour = ((t // HOUR_MS) + tz_hours[todo]) % 24
        accepted = rng.random(len(todo)) < _ACCEPT[local_hour]
        out[todo[accepted]] = t[accepted]
        todo = todo[~accepted]
    return out


def counts_over(
    rng: np.random.Generator, rate_per_day: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Poisson counts of events per row at `rate_per_day` over [lo, hi) (0 when empty)."""
    days = np.clip((np.asarray(hi) - np.asarray(lo)) / DAY_MS, 0.0, None)
    return rng.poisson(np.asarray(rate_per_day) * days).astype(np.int64)


def server_delay(rng: np.random.Generator, n: int) -> np.ndarray:
    """A service's event reaches the sink within moments: ~0.3 s, never more than 30 s."""
    return np.minimum(20 + rng.exponential(300.0, n), 30_000).astype(np.int64)


def client_delay(rng: np.random.Generator, n: int, late_probability: float) -> np.ndarray:
    """A device's events arrive in seconds; now and then (offline phones) hours late."""
    delay = np.minimum(150 + rng.exponential(1500.0, n), 60_000).astype(np.int64)
    late = rng.random(n) < late_probability
    delay[late] = rng.integers(HOUR_MS, 14 * HOUR_MS, int(late.sum()))
    return delay


def snowflake_ids(rng: np.random.Generator, ms: np.ndarray) -> np.ndarray:
    """Unique, time-ordered 64-bit ids (as the app's id service assigns them) for times `ms`."""
    ms = np.asarray(ms, dtype=np.int64)
    order = np.argsort(ms, kind="stable")
    sorted_ms = ms[order]
    run_start = np.r_[0, np.flatnonzero(np.diff(sorted_ms)) + 1]
    run_index = np.repeat(run_start, np.diff(np.r_[run_start, len(ms)]))
    sequence = np.arange(len(ms)) - run_index
    if len(ms) and sequence.max() >= 4096:
        raise ValueError("more than 4096 ids in one millisecond")
    shard = rng.integers(0, 1024, len(ms), dtype=np.int64)
    ids = np.empty(len(ms), dtype=np.int64)
    ids[order] = ((sorted_ms - ID_EPOCH_MS) << 22) | (shard[order] << 12) | sequence
    return ids


def lognormal_ms(rng: np.random.Generator, median_ms: float, sigma: float, n: int) -> np.ndarray:
    return (median_ms * np.exp(sigma * rng.standard_normal(n))).astype(np.int64)
