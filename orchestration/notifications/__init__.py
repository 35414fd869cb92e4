"""The streaming notification worker in Dagster: its health (lag, outbox, dead letters) observed
from Redis, where the worker writes it every few seconds (`<prefix>:health`)."""

from __future__ import annotations

import time

import dagster as dg

from appconfig import get_settings

WORKER = dg.AssetKey(["notifications", "worker"])
LAG_WARN = 10_000  # messages behind before the check fails
STALE_SECONDS = 120  # no health report for this long: the worker is down


def worker_health(redis_url: str, prefix: str) -> dict[str, int]:
    from redis import Redis

    client = Redis.from_url(redis_url)
    try:
        raw: dict[bytes, bytes] = client.hgetall(f"{prefix}:health")  # type: ignore[assignment]
    finally:
        client.close()
    return {k.decode(): int(v) for k, v in raw.items()}


def _health() -> dict[str, int] | None:
    settings = get_settings()
    if not settings.redis_url:
        return None
    return worker_health(settings.redis_url, settings.notifications_prefix)


# an observable asset built from a spec (not a SourceAsset), so the code location's automation
# mapping, which works on specs, applies to it like every other asset
@dg.multi_observable_source_asset(
    specs=[
        dg.AssetSpec(
            WORKER,
            group_name="notifications",
            description="The streaming notification worker (`python -m notifications.worker`): "
            "consumer lag, outbox, pending batches and dead letters as it last reported them.",
        )
    ],
)
def notifications_worker() -> dg.ObserveResult:
    health = _health()
    if health is None:
        return dg.ObserveResult(
            asset_key=WORKER, metadata={"status": "REDIS_URL is not set: no worker to observe"}
        )
    age = (time.time() * 1000 - health.get("at_ms", 0)) / 1000
    return dg.ObserveResult(
        asset_key=WORKER, metadata={**health, "report_age_seconds": round(age, 1)}
    )


@dg.asset_check(
    asset=WORKER,
    name="worker_lag",
    description=f"The worker reported within {STALE_SECONDS} s and lags at most {LAG_WARN} messages.",
)
def worker_lag() -> dg.AssetCheckResult:
    health = _health()
    if not health:
        return dg.AssetCheckResult(passed=False, metadata={"reason": "no health report in Redis"})
    age = (time.time() * 1000 - health.get("at_ms", 0)) / 1000
    return dg.AssetCheckResult(
        passed=age <= STALE_SECONDS and health.get("lag", 0) <= LAG_WARN,
        metadata={**health, "report_age_seconds": round(age, 1)},
    )


def defs() -> dg.Definitions:
    return dg.Definitions(assets=[notifications_worker], asset_checks=[worker_lag])
