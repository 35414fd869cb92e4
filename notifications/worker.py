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

N workers per consumer group (`--group-id`, same `--prefix`), each correct on its own:
- the state topics (users, settings, posts, relationships) are read in full by every worker,
  through a second consumer outside the group (`assign`, positioned at the offsets recorded in
  Redis), since any worker may route a like by anyone on anyone's post, and must know a block
  from any partition. Each state event's changes are written to Redis once (the apply script
  checks its offset), and every worker applies them to its memory;
- before routing a poll of event-topic messages, a worker reads the state topics up to their
  end offsets (a block produced before a like is known when the like is routed, on every
  worker); at most `STATE_CATCH_UP_SECONDS`, then it routes anyway with a warning;
- the event topics (engagements, messages, live) are split by the group. The apply script
  refuses a batch that overlaps an offset already recorded (a partition moved by a rebalance
  can straddle what its previous owner applied); the worker then routes only the events after
  it (routing an engagement changes no state, so re-routing is harmless);
- batches, digests and the outbox are shared: one worker at a time holds the delivery lease
  (`<prefix>:deliver_lease`, `LEASE_MS`, renewed every poll) and only it flushes and sends. A
  holder killed with -9 leaves the lease to expire; another worker takes it over within
  `LEASE_MS`. Each acquisition carries a fencing token (INCR); the send claims the outbox
  head in a script that refuses a stale token before the provider is called
  (`NotificationStore.send`), so a holder paused past its lease (GC, SIGSTOP) and its
  successor never send the same notification: what the paused one claimed before its pause is
  sent once, by it, when it resumes; after the pause it claims nothing.
Limits: partitions added to a state topic while workers run are not picked up until they
restart; with `auto_offset_reset=latest` and nothing recorded in Redis yet, two workers
starting at once may begin their state reads at different offsets (`--from-beginning` avoids
that). Flushing batches and digests is not fenced: each flush script is guarded on its own
(a batch or digest already flushed by another worker is skipped).
A worker run with one consumer over every topic (no state consumer) is the one-worker layout.

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
import os
import signal
import socket
import sys
import threading
import time
import uuid
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
STATE_FAMILIES = frozenset(TOPIC_ORDER)  # read in full by every worker of a group
STATE_CATCH_UP_SECONDS = 2.0
LEASE_MS = 3_000  # the delivery lease: how long a killed holder blocks delivery


def is_state_topic(topic: str) -> bool:
    return topic.rsplit(".", 1)[-1] in STATE_FAMILIES


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
        state_consumer: Any | None = None,
        lease_ms: int = LEASE_MS,
    ) -> None:
        self.consumer = consumer
        self.state_consumer: Any = state_consumer  # None: state topics come via `consumer`
        self.lease_ms = lease_ms
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._assigned: frozenset[str] = frozenset()
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
        self.applied = dict(self.state.offsets)  # the same snapshot as the state
        self._stop = threading.Event()
        self._last_lag = 0.0
        if state_consumer is not None:
            self._position_state_consumer()

    def _position_state_consumer(self) -> None:
        """Resume every state partition after the offset the loaded state reflects; one with
        nothing recorded starts where the consumer's `auto_offset_reset` says."""
        for tp in self.state_consumer.assignment():
            done = self.applied.get(f"{tp.topic}:{tp.partition}")
            if done is not None:
                self.state_consumer.seek(tp, done + 1)

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
        self._note_assignment()
        consumed = 0
        if self.state_consumer is not None:
            consumed += self._read_state(catch_up=bool(polled))
        for tp in sorted(polled, key=lambda tp: (_priority(tp.topic), tp.topic, tp.partition)):
            consumed += self._partition_batch(tp.topic, tp.partition, polled[tp])
        if polled:
            self._uncommitted = True
        self._commit()
        self._deliver()
        self._report_lag()
        return consumed

    def _note_assignment(self) -> None:
        assigned = frozenset(f"{tp.topic}:{tp.partition}" for tp in self.consumer.assignment())
        if assigned != self._assigned:
            self._assigned = assigned
            log.info("worker %s assigned: %s", self.worker_id, ",".join(sorted(assigned)))

    def _read_state(self, catch_up: bool) -> int:
        """Apply what the state consumer has; with `catch_up`, keep reading until it reaches
        the state topics' end offsets as of now (bounded by STATE_CATCH_UP_SECONDS).

        A poll waits for data (up to its 50 ms) only while a partition is behind its end: a
        worker already caught up pays the end-offsets round trip and a non-blocking poll, not
        a fetch wait per poll of events (that wait was 50 ms of every urgent notification's
        latency in the group layout)."""
        sc = self.state_consumer
        ends = sc.end_offsets(list(sc.assignment())) if catch_up else {}
        deadline = time.monotonic() + STATE_CATCH_UP_SECONDS
        consumed = 0
        while True:
            behind = [tp for tp, end in ends.items() if sc.position(tp) < end]
            polled = sc.poll(timeout_ms=50 if behind else 0)
            for tp in sorted(polled, key=lambda t: (_priority(t.topic), t.topic, t.partition)):
                consumed += self._partition_batch(tp.topic, tp.partition, polled[tp])
            if not behind:
                return consumed
            if time.monotonic() > deadline:
                log.warning("state topics not caught up, routing anyway: %s", behind)
                return consumed

    def _partition_batch(self, topic: str, partition: int, messages: Sequence[Any]) -> int:
        field = f"{topic}:{partition}"
        done = self.applied.get(field, -1)
        fresh = [m for m in messages if m.offset > done]
        if not fresh:
            return 0
        if is_state_topic(topic):
            return self._shared_batch(topic, partition, fresh)
        out = Outcome()
        self._route(fresh, lambda _: out)
        first, last = fresh[0].offset, fresh[-1].offset
        recorded = self.store.apply(
            topic, partition, first, last, self.store.ops_for(out, topic, partition)
        )
        if recorded is None:
            self.metrics.events.labels(topic).inc(len(fresh))
            for reason, n in out.suppressed.items():
                self.metrics.suppressed.labels(reason).inc(n)
            self.metrics.dead_letters.inc(len(out.dead_letters))
            self.applied[field] = last
            return len(fresh)
        # applied before, wholly or up to `recorded` (this worker before a crash, or the
        # partition's previous owner): route again only what follows
        self.applied[field] = max(done, recorded)
        if recorded >= last:
            return len(fresh)
        return self._partition_batch(topic, partition, fresh)

    def _route(self, messages: Sequence[Any], out_for: Any) -> None:
        """Route each message into `out_for(i)`'s outcome, comments checked in one call."""
        events = [event_stream.decode(m.value) for m in messages]
        comments = [
            i
            for i, e in enumerate(events)
            if e and e.get("event_type") == "comment" and isinstance(e.get("text"), str)
        ]
        texts = [str((events[i] or {})["text"]) for i in comments]
        verdicts: dict[int, CommentVerdict] = dict(
            zip(comments, self.checker.check_many(texts), strict=True)
        )
        for i, (message, event) in enumerate(zip(messages, events, strict=True)):
            out = out_for(i)
            if event is None:
                raw = (message.value or b"")[:2000].decode("utf-8", "replace")
                out.dead_letters.append(
                    ({"raw": raw, "offset": message.offset}, "not a JSON object")
                )
                continue
            self.router.route(event, int(message.timestamp), out, verdicts.get(i))

    def _shared_batch(self, topic: str, partition: int, fresh: Sequence[Any]) -> int:
        """A state partition's batch: every worker routes it (its memory needs the changes);
        the script writes each event's changes and notifications only if no worker recorded
        that event's offset yet, so only the first worker's count."""
        outcomes = [Outcome() for _ in fresh]
        self._route(fresh, outcomes.__getitem__)
        groups = [
            (m.offset, self.store.ops_for(out, topic, partition))
            for m, out in zip(fresh, outcomes, strict=True)
        ]
        recorded = self.store.apply_shared(topic, partition, groups)
        mine = [out for m, out in zip(fresh, outcomes, strict=True) if m.offset > recorded]
        if mine:
            self.metrics.events.labels(topic).inc(len(mine))
            for out in mine:
                for reason, n in out.suppressed.items():
                    self.metrics.suppressed.labels(reason).inc(n)
                self.metrics.dead_letters.inc(len(out.dead_letters))
        self.applied[f"{topic}:{partition}"] = max(fresh[-1].offset, recorded)
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
        token = self.store.hold_lease(self.worker_id, self.lease_ms)
        if not token:
            return  # another worker of the group flushes and sends
        counts = self.store.flush_due(self.state)
        self.metrics.batched.inc(counts["batched"])
        self.metrics.digested.inc(counts["digested"])
        for reason in ("blocked_or_muted", "withheld_post"):
            if counts[f"suppressed_{reason}"]:
                self.metrics.suppressed.labels(reason).inc(counts[f"suppressed_{reason}"])
        self.store.flush_digests(self.state)
        sent, unconfirmed = self.store.send(self.provider, self.worker_id, token)
        for kind, n in sent.items():
            self.metrics.sent.labels(kind).inc(n)
        if unconfirmed:
            log.warning("%d notifications of an unconfirmed claim set aside", unconfirmed)
            self.metrics.unconfirmed.inc(unconfirmed)

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
        if self.state_consumer is not None:
            self.state_consumer.close()


def make_consumer(bootstrap: str, topics: Sequence[str], group_id: str, **overrides: Any) -> Any:
    options: dict[str, Any] = {
        "auto_offset_reset": "latest",
        "max_poll_records": 5_000,
        "fetch_max_wait_ms": 50,
    }
    return event_stream.make_consumer(bootstrap, topics, group_id=group_id, **(options | overrides))


class StateConsumer:
    """The state topics' consumer, whose end offsets are asked on a connection of their own.

    A broker answers one connection's requests in order, and the consumer's connection almost
    always has a fetch in flight, which the broker holds up to `fetch_max_wait_ms` (50 ms) when
    there is nothing new: an end-offsets request behind it waited for it (34 ms per poll on
    average in the group layout, measured with the bench's latency workload). A consumer that
    never fetches answers in about a millisecond."""

    def __init__(self, consumer: Any, probe: Any) -> None:
        self._consumer = consumer
        self._probe = probe

    def end_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        return dict(self._probe.end_offsets(partitions))

    def close(self) -> None:
        self._probe.close()
        self._consumer.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


def make_state_consumer(bootstrap: str, topics: Sequence[str], **overrides: Any) -> Any:
    """Every partition of the state topics, outside any group (`assign`): each worker of the
    group reads them in full. Positioned by the worker at the offsets recorded in Redis."""
    from kafka import KafkaConsumer, TopicPartition

    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap.split(","),
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "latest",
        "isolation_level": "read_committed",
        "max_poll_records": 5_000,
        "fetch_max_wait_ms": 50,
    }
    consumer = KafkaConsumer(**(config | overrides))
    partitions = []
    for topic in topics:
        found = consumer.partitions_for_topic(topic)
        if not found:
            consumer.close()
            raise SystemExit(f"state topic {topic} has no partitions (does it exist?)")
        partitions += [TopicPartition(topic, p) for p in sorted(found)]
    consumer.assign(partitions)
    probe = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None)
    return StateConsumer(consumer, probe)


def make_consumers(
    bootstrap: str, topics: Sequence[str], group_id: str, **overrides: Any
) -> tuple[Any, Any]:
    """The group's consumer of the event topics and this worker's reader of the state topics."""
    state = [t for t in topics if is_state_topic(t)]
    events = [t for t in topics if not is_state_topic(t)]
    reset = {k: v for k, v in overrides.items() if k == "auto_offset_reset"}
    return make_consumer(bootstrap, events, group_id, **overrides), make_state_consumer(
        bootstrap, state, **reset
    )


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
    parser.add_argument(
        "--lease-ms", type=int, default=LEASE_MS, help="delivery lease of one group member"
    )
    parser.add_argument(
        "--session-timeout-ms",
        type=int,
        default=None,
        help="group session timeout: how soon a killed member's partitions move (Kafka: 45 s)",
    )
    parser.add_argument(
        "--instance-id",
        default=None,
        help="static group membership (default KAFKA_GROUP_INSTANCE_ID): a worker restarted "
        "after kill -9 with its id takes its partitions back at once",
    )
    parser.add_argument(
        "--provider-latency-ms",
        type=int,
        default=0,
        help="RecordingProvider: how long each call takes (a push service's round trip)",
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
    provider = RecordingProvider(
        redis, args.record_key or keys.pushed, latency_ms=args.provider_latency_ms
    )
    timing = Timing(args.delay_seconds, args.digest_limit, args.digest_window_seconds)
    consumer, state_consumer = make_consumers(
        settings.kafka_bootstrap_servers,
        [t for t in args.topics.split(",") if t],
        args.group_id,
        **({"auto_offset_reset": "earliest"} if args.from_beginning else {}),
        **(
            {
                "session_timeout_ms": args.session_timeout_ms,
                "heartbeat_interval_ms": max(args.session_timeout_ms // 3, 100),
            }
            if args.session_timeout_ms
            else {}
        ),
        **(
            {"group_instance_id": instance_id}
            if (instance_id := args.instance_id or settings.kafka_group_instance_id)
            else {}
        ),
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
        state_consumer=state_consumer,
        lease_ms=args.lease_ms,
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
