"""Notification worker: throughput beside a bare consume loop, and urgent latency, same run.

- baseline: a bare kafka-python consume loop (poll, count, commit once) over the same topics
  and messages, with a fresh consumer group;
- worker: `NotificationWorker.poll_once` from the start of the same topics with its own group
  (decode, validate, comment checks, routing, one Redis script per partition batch, commit,
  flush, send) until every message is consumed; target >= 0.5x the baseline;
- latency: comments (urgent) produced at a steady rate while the worker runs in a thread;
  Kafka message timestamp -> `RecordingProvider` call, p50/p99; target p99 <= 2 s.
The machine is shared: the load average is printed. Topics, groups and Redis keys are unique
per run and deleted (keys) at the end.

    uv run python -m bench.notifications [--events 40000] [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from appconfig import get_settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from notification_support import (
    Producer,
    comment,
    create_topics,
    delete_prefix,
    event,
    post,
    topics_for,
    user,
)


def _produce_workload(p: Producer, events: int, users: int = 2_000, posts: int = 5_000) -> int:
    for u in range(1, users + 1):
        p.send("users", user(u))
    for k in range(1, posts + 1):
        p.send("posts", post(1 + k % users, k))
    sent = users + posts
    i = 0
    while sent < events:
        actor, target = 1 + (i * 7919) % users, 1 + i % posts
        if i % 10 == 0:
            p.send("engagements", comment(actor, target, "amazing shot"))
        else:
            p.send("engagements", event("like", user_id=actor, post_id=target))
        i += 1
        sent += 1
    p.flush()
    return sent


def bare_loop(bootstrap: str, topics: list[str], total: int) -> float:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=f"bench-bare-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=5_000,
        fetch_max_wait_ms=50,
    )
    consumer.subscribe(topics)
    seen, started = 0, None
    while seen < total:
        polled = consumer.poll(timeout_ms=100)
        n = sum(len(v) for v in polled.values())
        if n and started is None:
            started = time.perf_counter()
        seen += n
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.commit()
    consumer.close()
    return seen / elapsed


def _worker(bootstrap: str, redis: Any, prefix: str, topics: list[str], delay: float) -> Any:
    from moderation.comments import default_checker
    from notifications.provider import RecordingProvider
    from notifications.state import Keys
    from notifications.store import Timing
    from notifications.worker import NotificationWorker, make_consumer

    keys = Keys(prefix)
    consumer = make_consumer(bootstrap, topics, f"bench-{prefix}", auto_offset_reset="earliest")
    return NotificationWorker(
        consumer,
        redis,
        RecordingProvider(redis, keys.pushed),
        keys=keys,
        timing=Timing(delay_seconds=delay, digest_limit=-1),
        checker=default_checker(),
    )


def worker_throughput(
    bootstrap: str, redis: Any, prefix: str, topics: list[str], total: int
) -> float:
    worker = _worker(bootstrap, redis, prefix, topics, delay=1.0)
    seen, started = 0, None
    while seen < total:
        n = worker.poll_once()
        if n and started is None:
            started = time.perf_counter()
        seen += n
    elapsed = time.perf_counter() - (started or time.perf_counter())
    worker.close()
    return seen / elapsed


def latency(bootstrap: str, redis: Any, run: str, rate: float, seconds: float) -> list[float]:
    topics = topics_for(f"{run}-lat")
    create_topics(bootstrap, list(topics.values()))
    p = Producer(bootstrap, topics)
    for u in (1, 2):
        p.send("users", user(u))
    p.send("posts", post(1, 1))
    p.flush()
    prefix = f"bench-notify-{run}-lat"
    worker = _worker(bootstrap, redis, prefix, list(topics.values()), delay=300.0)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            worker.poll_once(timeout_ms=50)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    while not redis.hexists(f"{prefix}:posts", "1"):
        time.sleep(0.05)
    n = int(rate * seconds)
    for i in range(n):
        p.send("engagements", comment(2, 1, f"so good {i}"))
        p.producer.flush()
        time.sleep(1 / rate)
    deadline = time.monotonic() + 30
    while redis.llen(f"{prefix}:pushed") < n and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join()
    worker.close()
    p.close()
    from notifications.provider import RecordingProvider

    calls = RecordingProvider(redis, f"{prefix}:pushed").calls()
    delete_prefix(redis, prefix)
    return [(c["called_ms"] - c["source_ms"]) / 1000 for c in calls]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--rate", type=float, default=100.0, help="urgent events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    from redis import Redis

    settings = get_settings()  # else the ports of scripts/services
    bootstrap = settings.kafka_bootstrap_servers or "127.0.0.1:19092"
    redis = Redis.from_url(settings.redis_url or "redis://127.0.0.1:16379/0")
    run = uuid.uuid4().hex[:8]
    topics = topics_for(f"bench-{run}")
    create_topics(bootstrap, list(topics.values()))
    p = Producer(bootstrap, topics)
    total = _produce_workload(p, args.events)
    p.close()
    names = list(topics.values())
    print(f"load average before: {os.getloadavg()}")
    prefix = f"bench-notify-{run}"
    try:
        base = bare_loop(bootstrap, names, total)
        work = worker_throughput(bootstrap, redis, prefix, names, total)
        base2 = bare_loop(bootstrap, names, total)
        print(f"events: {total} (2,000 sign-ups, 5,000 posts, then 9 likes : 1 comment)")
        print(f"bare consume loop: {base:,.0f} msg/s, again after the worker: {base2:,.0f} msg/s")
        print(
            f"worker:            {work:,.0f} msg/s -> {work / statistics.mean([base, base2]):.2f}x"
        )
        print(f"load average after throughput: {os.getloadavg()}")
        lat = sorted(latency(bootstrap, redis, run, args.rate, args.seconds))
        if lat:
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            print(
                f"urgent latency (produce -> provider called) over {len(lat)} comments at "
                f"{args.rate:.0f}/s: p50 {statistics.median(lat) * 1000:.0f} ms, "
                f"p99 {p99 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
            )
        print(f"load average after: {os.getloadavg()}")
    finally:
        delete_prefix(redis, prefix)
        redis.close()


if __name__ == "__main__":
    main()
