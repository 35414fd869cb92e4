"""Notification worker: throughput beside a bare consume loop, and urgent latency, same run.

- baseline: a bare kafka-python consume loop (poll, count, commit once) over the same topics
  and messages, with a fresh consumer group; run before and after the workers;
- worker layouts, each from the start of the same topics with its own group and Redis prefix
  (decode, validate, comment checks, routing, one Redis script per partition batch, commit,
  flush, send) until every message is applied; target >= 0.5x the baseline:
  - `single`: one worker, one consumer over every topic (the one-worker layout), in-process;
  - `group1`, `group2`: the group layout (`make_consumers`: the state topics read in full by
    each worker outside the group, the event topics split by the group, the delivery lease)
    with 1 and 2 worker processes; timed from the group consumer's first message (after the
    group's join) to the poll of Redis's recorded offsets that covers every message, counting
    the messages applied after the clock started;
- latency per layout: comments (urgent) produced at a steady rate over the topics' partitions
  while the workers run; Kafka message timestamp -> `RecordingProvider` call, p50/p99;
  target p99 <= 2 s.
The machine is shared: the load average is printed. Topics, groups and Redis keys are unique
per run and deleted (keys) at the end.

    uv run python -m bench.notifications [--events 40000] [--rate 100] [--seconds 10]
        [--partitions 2] [--layouts single,group1,group2]
"""

from __future__ import annotations

import argparse
import multiprocessing
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


def _timed(poll: Any, redis: Any, prefix: str) -> Any:
    """The group consumer's poll, starting the clock at its first message: its join (Kafka
    delays a new group's first rebalance by 3 s) is not throughput, and the state consumer
    reads meanwhile. What was applied before then is recorded, and not counted."""
    first = [True]

    def timed(*args: Any, **kwargs: Any) -> Any:
        polled = poll(*args, **kwargs)
        if polled and first[0]:
            first[0] = False
            applied = sum(int(v) + 1 for v in redis.hgetall(f"{prefix}:offsets").values())
            if redis.set(f"{prefix}:bench_start", time.time(), nx=True):
                redis.set(f"{prefix}:bench_start_applied", applied)
        return polled

    return timed


def _group_worker(
    bootstrap: str,
    redis_url: str,
    prefix: str,
    topics: list[str],
    delay: float,
    ready: Any,
) -> None:
    """One worker process of the group layout: polls until `<prefix>:bench_stop` exists."""
    from redis import Redis

    from moderation.comments import default_checker
    from notifications.provider import RecordingProvider
    from notifications.state import Keys
    from notifications.store import Timing
    from notifications.worker import NotificationWorker, make_consumers

    redis = Redis.from_url(redis_url)
    keys = Keys(prefix)
    consumer, state_consumer = make_consumers(
        bootstrap, topics, f"bench-{prefix}", auto_offset_reset="earliest"
    )
    worker = NotificationWorker(
        consumer,
        redis,
        RecordingProvider(redis, keys.pushed),
        keys=keys,
        timing=Timing(delay_seconds=delay, digest_limit=-1),
        checker=default_checker(),
        state_consumer=state_consumer,
    )
    consumer.poll = _timed(consumer.poll, redis, prefix)
    ready.wait()  # every worker built (comment model loaded) before any joins the group
    while not redis.exists(f"{prefix}:bench_stop"):
        worker.poll_once(timeout_ms=50)
    worker.close()
    redis.close()


def _start_group(
    n: int, bootstrap: str, redis_url: str, prefix: str, topics: list[str], delay: float
) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")  # no client of the parent's in a child
    ready = ctx.Barrier(n + 1)
    procs = [
        ctx.Process(target=_group_worker, args=(bootstrap, redis_url, prefix, topics, delay, ready))
        for _ in range(n)
    ]
    for proc in procs:
        proc.start()
    ready.wait(timeout=300)
    return procs


def _stop_group(redis: Any, prefix: str, procs: list[Any]) -> None:
    redis.set(f"{prefix}:bench_stop", 1)
    for proc in procs:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.kill()


def group_throughput(
    n: int, bootstrap: str, redis: Any, redis_url: str, prefix: str, topics: list[str], total: int
) -> float:
    procs = _start_group(n, bootstrap, redis_url, prefix, topics, delay=1.0)
    try:
        while True:  # every partition's recorded offset: Σ (offset + 1) is what was applied
            applied = sum(int(v) + 1 for v in redis.hgetall(f"{prefix}:offsets").values())
            if applied >= total:
                ended = time.time()
                break
            time.sleep(0.02)
            assert all(proc.is_alive() for proc in procs), "a bench worker died"
        started = float(redis.get(f"{prefix}:bench_start"))
        before = int(redis.get(f"{prefix}:bench_start_applied"))
    finally:
        _stop_group(redis, prefix, procs)
    return (total - before) / (ended - started)


def latency(
    bootstrap: str,
    redis: Any,
    redis_url: str,
    run: str,
    rate: float,
    seconds: float,
    layout: str,
    partitions: int,
) -> list[float]:
    topics = topics_for(f"{run}-lat-{layout}")
    create_topics(bootstrap, list(topics.values()), partitions=partitions)
    p = Producer(bootstrap, topics)
    for u in (1, 2):
        p.send("users", user(u))
    p.send("posts", post(1, 1))
    p.flush()
    prefix = f"bench-notify-{run}-lat-{layout}"
    names = list(topics.values())
    stop = threading.Event()
    procs: list[Any] = []
    if layout == "single":
        worker = _worker(bootstrap, redis, prefix, names, delay=300.0)

        def loop() -> None:
            while not stop.is_set():
                worker.poll_once(timeout_ms=50)
            worker.close()

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
    else:
        procs = _start_group(int(layout[-1]), bootstrap, redis_url, prefix, names, delay=300.0)
    deadline = time.monotonic() + 60
    while not redis.hexists(f"{prefix}:posts", "1"):
        # a group that joined before the broker listed a new topic gets none of its
        # partitions until its metadata ages out: say so rather than wait for minutes
        assert time.monotonic() < deadline, f"{layout}: the set-up was not consumed in 60 s"
        time.sleep(0.05)
    if procs:
        time.sleep(3.0)  # the group's partitions settled (a second member's join rebalances)
    n = int(rate * seconds)
    for i in range(n):
        p.send("engagements", comment(2, 1, f"so good {i}"), partition=i % partitions)
        p.producer.flush()
        time.sleep(1 / rate)
    deadline = time.monotonic() + 30
    while redis.llen(f"{prefix}:pushed") < n and time.monotonic() < deadline:
        time.sleep(0.1)
    if procs:
        _stop_group(redis, prefix, procs)
    else:
        stop.set()
        thread.join()
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
    parser.add_argument("--partitions", type=int, default=2, help="per topic")
    parser.add_argument("--layouts", default="single,group1,group2")
    args = parser.parse_args()
    from redis import Redis

    settings = get_settings()  # else the ports of scripts/services
    bootstrap = settings.kafka_bootstrap_servers or "127.0.0.1:19092"
    redis_url = settings.redis_url or "redis://127.0.0.1:16379/0"
    redis = Redis.from_url(redis_url)
    layouts = [name for name in args.layouts.split(",") if name]
    run = uuid.uuid4().hex[:8]
    topics = topics_for(f"bench-{run}")
    create_topics(bootstrap, list(topics.values()), partitions=args.partitions)
    p = Producer(bootstrap, topics)
    total = _produce_workload(p, args.events)
    p.close()
    names = list(topics.values())
    print(f"load average before: {os.getloadavg()}")
    prefixes = [f"bench-notify-{run}-{layout}" for layout in layouts]
    try:
        base = bare_loop(bootstrap, names, total)
        rates = {}
        for layout, prefix in zip(layouts, prefixes, strict=True):
            if layout == "single":
                rates[layout] = worker_throughput(bootstrap, redis, prefix, names, total)
            else:
                n = int(layout.removeprefix("group"))
                rates[layout] = group_throughput(
                    n, bootstrap, redis, redis_url, prefix, names, total
                )
            print(f"  {layout}: {rates[layout]:,.0f} msg/s (load {os.getloadavg()[0]:.1f})")
        base2 = bare_loop(bootstrap, names, total)
        mean = statistics.mean([base, base2])
        print(
            f"events: {total} (2,000 sign-ups, 5,000 posts, then 9 likes : 1 comment), "
            f"{args.partitions} partitions per topic"
        )
        print(f"bare consume loop: {base:,.0f} msg/s, again after the workers: {base2:,.0f} msg/s")
        for layout, rate in rates.items():
            print(f"worker {layout:7s}: {rate:,.0f} msg/s -> {rate / mean:.2f}x")
        print(f"load average after throughput: {os.getloadavg()}")
        for layout in layouts:
            lat = sorted(
                latency(
                    bootstrap,
                    redis,
                    redis_url,
                    run,
                    args.rate,
                    args.seconds,
                    layout,
                    args.partitions,
                )
            )
            if lat:
                p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
                print(
                    f"urgent latency {layout} (produce -> provider called) over {len(lat)} "
                    f"comments at {args.rate:.0f}/s: p50 {statistics.median(lat) * 1000:.0f} ms, "
                    f"p99 {p99 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
                )
        print(f"load average after: {os.getloadavg()}")
    finally:
        for prefix in prefixes:
            delete_prefix(redis, prefix)
        redis.close()


if __name__ == "__main__":
    main()
