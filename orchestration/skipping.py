"""A stage with nothing to learn from says so instead of failing: a materialization whose
metadata has `skipped` (the reason), and the same reason as a warning on the console.

Real data arrives partial (a follow graph without posts, posts without impressions): each stage
does what its data allows, and a reader of the asset (UI, a downstream asset, a test) tells a
skipped materialization from a built one by `SKIPPED` in its metadata.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

SKIPPED = "skipped"


def skipped(
    context: dg.AssetExecutionContext, reason: str, **metadata: Any
) -> dg.MaterializeResult:
    """Log `<asset> skipped: <reason>` and return the materialization that records it."""
    context.log.warning(f"{context.asset_key.to_user_string()} skipped: {reason}")
    return dg.MaterializeResult(metadata={SKIPPED: reason, **metadata})


def skip_reason(metadata: dict[str, Any]) -> str | None:
    """The reason a materialization was skipped (its metadata as plain values), else None."""
    value = metadata.get(SKIPPED)
    return str(value) if value else None
