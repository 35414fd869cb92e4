"""OpenTelemetry spans for the API, off by default (`SERVING_TRACING=off|console|otlp`).

`console` prints finished spans to stdout (for a look at one slow request); `otlp` sends them
over OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter's own variable, default
http://localhost:4318). Every request gets a server span from opentelemetry-instrumentation-
fastapi, and the ranked answers' stages (`serving.stages`) become its children, so a slow p99
can be explained from a trace.
"""

import logging

from fastapi import FastAPI

from serving.stages import set_tracer

log = logging.getLogger(__name__)
MODES = ("off", "console", "otlp")


def install(app: FastAPI, mode: str) -> None:
    """Instrument `app` and send spans to the exporter `mode` names; `off` does nothing."""
    if mode == "off":
        set_tracer(None)
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if mode == "console":
        exporter = ConsoleSpanExporter()
    elif mode == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        raise ValueError(f"SERVING_TRACING must be one of {', '.join(MODES)}, not {mode!r}")
    provider = TracerProvider(resource=Resource.create({"service.name": "photo-platform-serving"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="healthz,metrics"
    )
    set_tracer(provider.get_tracer("serving.stages"))
    log.info("tracing on: spans to the %s exporter", mode)
