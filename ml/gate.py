"""The promotion gate's rule, in one home: a candidate serves only if it beats the figure it is
compared with by `PROMOTION_MARGIN` (relative).

Kept apart from `ml.registry` (which imports MLflow) so that serving can apply the same rule to
models it evaluates itself (hashtag and location suggestions, `serving.suggestion_gate`) without
loading MLflow.
"""

from __future__ import annotations

import math

# a candidate must beat the champion and the baseline by 1% of their figure: a smaller gain is
# within the noise of a holdout of a few hundred users, and not worth a model swap
PROMOTION_MARGIN = 0.01


def finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def beats(value: float, other: float, margin: float, higher_is_better: bool = True) -> bool:
    """`value` better than `other` by a relative `margin` (of `other`'s size)."""
    if not finite(value):
        return False
    if not finite(other):
        return True
    slack = abs(other) * margin
    return value > other + slack if higher_is_better else value < other - slack
