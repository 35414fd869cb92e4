"""Prometheus metrics of the API (`GET /metrics`): request latency by route, feed cache hits,
model and snapshot state."""

import time

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_SECONDS = Histogram(
    "serving_request_seconds",
    "Request latency by route template and status class",
    ["route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
FEED_REQUESTS = Counter(
    "serving_feed_requests_total", "Home feed requests by how they were answered", ["path"]
)
MODEL_INFO = Gauge("serving_model_loaded", "1 for the ranker version being served", ["version"])
SNAPSHOT_AGE = Gauge("serving_snapshot_age_seconds", "Seconds since the snapshot was loaded")
DEGRADED = Counter("serving_degraded_total", "Degraded answers by reason", ["reason"])


class LatencyMiddleware:
    """Pure ASGI (no per-request task like BaseHTTPMiddleware): the cached feed is ~1 ms."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = [500]

        async def send_with_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                code[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            REQUEST_SECONDS.labels(template, f"{code[0] // 100}xx").observe(
                time.perf_counter() - started
            )


def exposition(model_version: str, snapshot_age: float | None) -> Response:
    for labels in list(MODEL_INFO._metrics):  # the previous champion drops to 0
        if labels != (model_version,):
            MODEL_INFO.labels(*labels).set(0)
    MODEL_INFO.labels(model_version).set(1)
    if snapshot_age is not None:
        SNAPSHOT_AGE.set(snapshot_age)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
