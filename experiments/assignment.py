"""Deterministic assignment: a user's arm is a pure function of the experiment's salt and the
user id, so every API worker, every restart and the offline analysis agree without a lookup
table, and a new salt reshuffles users between experiments (no carry-over from the last one).
"""

from __future__ import annotations

import hashlib

from experiments.config import Arm, Experiment

_SCALE = float(2**64)


def bucket(salt: str, user_id: int) -> float:
    """A uniform point in [0, 1) for (salt, user): the first 8 bytes of SHA-256."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign(experiment: Experiment, user_id: int) -> Arm:
    """The arm whose traffic range holds the user's bucket (validated configs tile [0, 1))."""
    point = bucket(experiment.salt, user_id)
    for arm in experiment.arms:
        if arm.low <= point < arm.high:
            return arm
    return experiment.arms[-1]  # point within float rounding of 1.0
