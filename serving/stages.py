"""Where a ranked answer's time goes: per-stage timings as a Prometheus histogram
(`serving_stage_seconds{endpoint, stage}` on `/metrics`) and, when tracing is on
(`serving.tracing`), as OpenTelemetry spans under the request's span.

    with stage("feed", "features"):
        ...

The stages of a ranked answer: candidates, visibility, features, preprocessing, scoring, rules,
serialization. One `perf_counter` pair and a histogram observe (a few microseconds) when
tracing is off, so it stays on in production.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Histogram

STAGES = (
    "candidates",
    "visibility",
    "features",
    "preprocessing",
    "scoring",
    "rules",
    "serialization",
)
STAGE_SECONDS = Histogram(
    "serving_stage_seconds",
    "Time in each stage of a ranked answer (uncached feed, /v1/rank)",
    ["endpoint", "stage"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
_tracer = None  # an OpenTelemetry tracer while tracing is on (serving.tracing sets it)


def set_tracer(tracer: object | None) -> None:
    global _tracer
    _tracer = tracer


@contextmanager
def stage(endpoint: str, name: str) -> Iterator[None]:
    """Time one stage of `endpoint`; a span named `<endpoint>.<name>` when tracing is on."""
    started = time.perf_counter()
    tracer = _tracer
    if tracer is None:
        try:
            yield
        finally:
            STAGE_SECONDS.labels(endpoint, name).observe(time.perf_counter() - started)
        return
    with tracer.start_as_current_span(f"{endpoint}.{name}"):  # type: ignore[attr-defined]
        try:
            yield
        finally:
            STAGE_SECONDS.labels(endpoint, name).observe(time.perf_counter() - started)
