"""Prometheus counters of the worker (its own registry, served on `--metrics-port`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("notifications_events", "events consumed", ["topic"], registry=r)
        self.sent = Counter("notifications_sent", "provider calls", ["kind"], registry=r)
        self.batched = Counter(
            "notifications_batched", "events folded into another notification", registry=r
        )
        self.suppressed = Counter(
            "notifications_suppressed", "notifications not sent", ["reason"], registry=r
        )
        self.digested = Counter(
            "notifications_digested", "notifications held for a digest", registry=r
        )
        self.dead_letters = Counter(
            "notifications_dead_letters", "events that could not be routed", registry=r
        )
        self.unconfirmed = Counter(
            "notifications_unconfirmed",
            "claimed by a holder that never confirmed the provider call (crash, or a pause the "
            "next holder outlived): set aside, not re-sent",
            registry=r,
        )
        self.lag = Gauge(
            "notifications_consumer_lag", "messages behind the log end", ["topic"], registry=r
        )
        self.outbox = Gauge("notifications_outbox", "notifications waiting to send", registry=r)
        self.pending_batches = Gauge(
            "notifications_pending_batches", "batches waiting for their delay", registry=r
        )
