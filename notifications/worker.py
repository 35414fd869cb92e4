"""`python -m notifications.worker`: the streaming notification worker (a Kafka consumer group).

Reads the event topics, routes each event (`notifications.router`), applies each partition's
batch atomically in Redis with its offset (`notifications.store`), then flushes due batches and
digests and sends the outbox through the push provider. Redis commands per poll do not grow
with the events: one apply script per partition, three commands per flush round, four per send
(redis-py spends about 5 us of CPU per pipelined command; five per batched like, as before,
cost more than routing it). Kafka offsets are committed after the Redis step, at most every
`commit_every_seconds` (1 s; 0: after every poll): the offsets recorded in Redis, not Kafka's,
are what makes a re-delivery after a crash harmless (it is skipped), so a synchronous commit
round trip per poll bought nothing but time.

One worker per consumer group. `--group-id` and `--prefix` are configurable, but a second
worker in the same group is not supported yet: the routing state (users, posts, follows) is
built from the events each worker consumes, so it would miss the state events of partitions
assigned to the other; and `send` reads the outbox head without a lock (docs/benchmarks.md).

Moderation decisions (`moderation.decisions`: files in the object store, not Kafka events) are
read from the first file at start and then about once a second, before each poll's events are
routed: nothing is sent about a post or story moderation hid, and a batch of likes on a post
hidden (or deleted) after it was batched is dropped at flush.

Bad input never stops it: undecodable messages, contract violations, unknown users and posts,
malformed decisions go to the dead-letter list (`<prefix>:dead_letters`) with their reasons.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from ingestion import event_stream
from moderation.comments import CommentChecker, CommentVerdict
from moderation.decisions import DecisionReader
from notifications.metrics import WorkerMetrics
from notifications.provider import PushProvider, RecordingProvider
from notifications.router import Outcome, Router
from notifications.state import Keys, RoutingState
from notifications.store import NotificationStore, Timing

log = logging.getLogger(__name__)

CONSUMER_GROUP = "notifications"
TOPICS = (
    "events.users",
    "events.settings",
    "events.posts",
    "events.relationships",
    "events.engagements",
    "events.messages",
    "events.live",
)
# state-bearing topics first within one poll: a sign-up before that user's first like
TOPIC_ORDER = {"users": 0, "settings": 1, "posts": 2, "relationships": 3}
LAG_EVERY_SECONDS = 5.0
COMMIT_EVERY_SECONDS = 1.0  # Kafka offsets; Redis holds the ones exactly-once relies on
DECISIONS_EVERY_SECONDS = 1.0  # listing the moderation decisions' prefix


def _priority(topic: str) -> int:
    return TOPIC_ORDER.get(topic.rsplit(".", 1)[-1], 9)


class NotificationWorker:
    """Poll -> route -> apply (Redis, atomic per partition) -> commit -> flush -> send."""

    def __init__(
        self,
        consumer: Any,
        redis: Any,
        provider: PushProvider,
        *,
        keys: Keys,
        timing: Timing,
        checker: CommentChecker,
        metrics: WorkerMetrics | None = None,
        commit_every_seconds: float = COMMIT_EVERY_SECONDS,
        decisions: DecisionReader | None = None,
    ) -> None:
        self.consumer = consumer
        self.decisions = decisions
        self._last_decisions = float("-inf")
        self.commit_every_seconds = commit_every_seconds
        self._last_commit = 0.0
        self._uncommitted = False
        self.redis = redis
        self.provider = provider
        self.keys = keys
        self.store = NotificationStore(redis, keys, timing)
        self.state = RoutingState.load(redis, keys)
        self.router = Router(self.state)
        self.checker = checker
        self.metrics = metrics or WorkerMetrics()
        self.applied = self.store.applied_offsets()
        self._stop = threading.Event()
        self._last_lag = 0.0

    def stop(self) -> None:
        self._stop.set()

    def read_decisions(self, force: bool = False) -> int:
        """Apply moderation decisions written since the last read (at most once a second
        unless forced); bad lines become dead letters. Returns how many were applied."""
        now = time.monotonic()
        if self.decisions is None or (
            not force and now - self._last_decisions < DECISIONS_EVERY_SECONDS
        ):
            return 0
        self._last_decisions = now
        decisions, bad = self.decisions.read_new()
        for decision in decisions:
            self.state.apply_decision(decision)
        if bad:
            pipe = self.redis.pipeline(transaction=False)
            for source, reason, raw in bad:
                record = {"reason": reason, "source": source, "event": raw}
                pipe.rpush(self.keys.dead_letters, json.dumps(record))
            pipe.execute()
            self.metrics.dead_letters.inc(len(bad))
        return len(decisions)

    def poll_once(self, timeout_ms: int = 100) -> int:
        self.read_decisions()
        polled = self.consumer.poll(timeout_ms=timeout_ms)
        consumed = 0
        for tp in sorted(polled, key=lambda tp: (_priority(tp.topic), tp.topic, tp.partition)):
            consumed += self._partition_batch(tp.topic, tp.partition, polled[tp])
        if polled:
            self._uncommitted = True
        self._commit()
        self._deliver()
        self._report_lag()
        return consumed

    def _partition_batch(self, topic: str, partition: int, messages: Sequence[Any]) -> int:
        field = f"{topic}:{partition}"
        done = self.applied.get(field, -1)
        fresh = [m for m in messages if m.offset > done]
        if not fresh:
            return 0
        events = [event_stream.decode(m.value) for m in fresh]
        comments = [
            i
            for i, e in enumerate(events)
            if e and e.get("event_type") == "comment" and isinstance(e.get("text"), str)
        ]
        texts = [str((events[i] or {})["text"]) for i in comments]
        verdicts: dict[int, CommentVerdict] = dict(
            zip(comments, self.checker.check_many(texts), strict=True)
        )
        out = Outcome()
        for i, (message, event) in enumerate(zip(fresh, events, strict=True)):
            if event is None:
                raw = (message.value or b"")[:2000].decode("utf-8", "replace")
                out.dead_letters.append(
                    ({"raw": raw, "offset": message.offset}, "not a JSON object")
                )
                continue
            self.router.route(event, int(message.timestamp), out, verdicts.get(i))
        last = fresh[-1].offset
        if self.store.apply(topic, partition, last, self.store.ops_for(out, topic, partition)):
            self.metrics.events.labels(topic).inc(len(fresh))
            for reason, n in out.suppressed.items():
                self.metrics.suppressed.labels(reason).inc(n)
            self.metrics.dead_letters.inc(len(out.dead_letters))
        self.applied[field] = last
        return len(fresh)

    def _commit(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self._uncommitted or (
            not force and now - self._last_commit < self.commit_every_seconds
        ):
            return
        from ingestion.kafka_source import commit

        commit(self.consumer)
        self._last_commit, self._uncommitted = now, False

    def _deliver(self) -> None:
        counts = self.store.flush_due(self.state)
        self.metrics.batched.inc(counts["batched"])
        self.metrics.digested.inc(counts["digested"])
        for reason in ("blocked_or_muted", "withheld_post"):
            if counts[f"suppressed_{reason}"]:
                self.metrics.suppressed.labels(reason).inc(counts[f"suppressed_{reason}"])
        self.store.flush_digests(self.state)
        for kind, n in self.store.send(self.provider).items():
            self.metrics.sent.labels(kind).inc(n)

    def _report_lag(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_lag < LAG_EVERY_SECONDS:
            return
        self._last_lag = now
        assignment = list(self.consumer.assignment())
        if not assignment:
            return
        try:
            ends = self.consumer.end_offsets(assignment)
        except Exception as error:  # a broker hiccup must not stop delivery
            log.warning("lag not measured: %s", error)
            return
        lag: dict[str, int] = {}
        for tp in assignment:
            position = self.consumer.position(tp)
            lag[tp.topic] = lag.get(tp.topic, 0) + max(int(ends.get(tp, 0)) - int(position), 0)
        for topic, value in lag.items():
            self.metrics.lag.labels(topic).set(value)
        sizes = self.store.sizes()
        self.metrics.outbox.set(sizes["outbox"])
        self.metrics.pending_batches.set(sizes["batches"])
        self.redis.hset(
            self.keys.health,
            mapping={"lag": sum(lag.values()), "at_ms": int(time.time() * 1000), **sizes},
        )

    def run(
        self, *, max_seconds: float | None = None, idle_exit_seconds: float | None = None
    ) -> None:
        started = last_busy = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if max_seconds is not None and now - started > max_seconds:
                break
            if self.poll_once():
                last_busy = now
            elif idle_exit_seconds is not None and now - last_busy > idle_exit_seconds:
                break

    def close(self) -> None:
        try:
            self._commit(force=True)
        except Exception as error:  # closing after a broker loss: Redis offsets still guard
            log.warning("final commit failed: %s", error)
        self.consumer.close()


def make_consumer(bootstrap: str, topics: Sequence[str], group_id: str, **overrides: Any) -> Any:
    options: dict[str, Any] = {
        "auto_offset_reset": "latest",
        "max_poll_records": 5_000,
        "fetch_max_wait_ms": 50,
    }
    return event_stream.make_consumer(bootstrap, topics, group_id=group_id, **(options | overrides))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group-id", default=CONSUMER_GROUP)
    parser.add_argument("--topics", default=",".join(TOPICS))
    parser.add_argument("--prefix", default="notify", help="Redis key prefix of all state")
    parser.add_argument("--from-beginning", action="store_true", help="a new group starts at 0")
    parser.add_argument("--delay-seconds", type=float, default=300.0)
    parser.add_argument("--digest-limit", type=int, default=50)
    parser.add_argument("--digest-window-seconds", type=int, default=3600)
    parser.add_argument(
        "--record-key", default=None, help="RecordingProvider list (default <prefix>:pushed)"
    )
    parser.add_argument(
        "--commit-every-seconds",
        type=float,
        default=COMMIT_EVERY_SECONDS,
        help="commit Kafka offsets at most this often (0: after every poll)",
    )
    parser.add_argument("--metrics-port", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--idle-exit-seconds", type=float, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)

    from redis import Redis

    from appconfig import get_settings

    settings = get_settings()
    if not settings.kafka_bootstrap_servers or not settings.redis_url:
        raise SystemExit("KAFKA_BOOTSTRAP_SERVERS and REDIS_URL must be set")
    redis = Redis.from_url(settings.redis_url)
    keys = Keys(args.prefix)
    provider = RecordingProvider(redis, args.record_key or keys.pushed)
    timing = Timing(args.delay_seconds, args.digest_limit, args.digest_window_seconds)
    consumer = make_consumer(
        settings.kafka_bootstrap_servers,
        [t for t in args.topics.split(",") if t],
        args.group_id,
        **({"auto_offset_reset": "earliest"} if args.from_beginning else {}),
    )
    from objectstore.store import store_from_settings

    decisions = DecisionReader(store_from_settings(settings), settings.moderation_decisions_prefix)
    worker = NotificationWorker(
        consumer,
        redis,
        provider,
        keys=keys,
        timing=timing,
        checker=CommentChecker.trained(),
        commit_every_seconds=args.commit_every_seconds,
        decisions=decisions,
    )
    # the routing state loaded from Redis and the comment model live as long as the process:
    # out of the cyclic collector's reach, its full collections stop re-walking them (about
    # 8% of the routing CPU in bench.notifications_routing once the state exists)
    gc.freeze()
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr="127.0.0.1", registry=worker.metrics.registry)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    log.info("notification worker ready (prefix %s, group %s)", args.prefix, args.group_id)
    try:
        worker.run(max_seconds=args.max_seconds, idle_exit_seconds=args.idle_exit_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
