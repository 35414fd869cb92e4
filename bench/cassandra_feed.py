"""Feeds on Cassandra: fan-out writes/s beside a bare driver loop of the same inserts, and feed
read latency from Cassandra and through the Redis cache, all in one run.

Writes (a synthetic follow graph with log-normal follower counts, like `bench.fanout`; fresh post
ids per path, so every entry is new):
- bare loop: the same rows as single prepared INSERTs through `execute_concurrent_with_args`
  (64 in flight): no existence read, no version, no batching. The baseline (`cassandra-stress` is
  not published on Maven Central, so the bare loop stands in for it);
- Cassandra store: `CassandraFeedStore.push_posts` per consumer poll (a slice read per user for
  idempotency, one unlogged batch per user, a counter bump, lazy trim to the cap);
- Cassandra + Redis: `CachedFeedStore.push_posts` (the services profile's fan-out: the above,
  then the cached feeds in Redis).
Each repeat runs the bare loop first and the stores right after; ratios are per repeat and the
median is reported (the machine is shared: the load average is printed).

Reads (`--read-users` feeds replaced to the cap, read whole, as the API reads them):
- Redis only: `RedisFeedStore.read` (the Redis-only design, for comparison);
- cached hit: `CachedFeedStore.read` of a cached feed;
- miss: the cached feed dropped before each read, so it is read from Cassandra (the fill runs
  on the cache's background thread, off the read path);
- Redis down: the cache tier's breaker open, so the read goes to Cassandra alone;
- Cassandra: `CassandraFeedStore.read`.

    uv run python -m bench.cassandra_feed [--cassandra 127.0.0.1:19042] [--redis-url ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import redis
from rich.console import Console
from rich.table import Table

from bench.fanout import synthetic_graph
from fanout.cached_store import CachedFeedStore
from fanout.cassandra_store import CONCURRENCY, CassandraFeedStore
from fanout.fanout import FanOut, NewPost
from fanout.redis_store import RedisFeedStore
from fanout.store import FeedEntry

console = Console()


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    values = np.asarray(samples_ms)
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def timed_reads(
    users: list[int], read: Callable[[int], Any], before: Callable[[int], Any]
) -> tuple[list[float], list[float]]:
    """Wall ms and the reading thread's CPU ms per read (on a loaded machine the wall time is
    mostly waiting for a core; the CPU time is what the read costs)."""
    samples, cpu = [], []
    for user in users:
        before(user)
        cpu_started = time.thread_time()
        started = time.perf_counter()
        read(user)
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - cpu_started) * 1000)
    return samples, cpu


def profile(timed: tuple[list[float], list[float]]) -> tuple[float, float, float]:
    """p50, p99 wall ms and mean CPU ms of the reading thread."""
    wall_ms, cpu_ms = timed
    p50, p99 = percentiles(wall_ms)
    return p50, p99, float(np.mean(cpu_ms))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cassandra", default="127.0.0.1:19042")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:16379/0")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--authors", type=int, default=2_000)
    parser.add_argument("--mean-followers", type=float, default=50.0)
    parser.add_argument("--posts", type=int, default=2_000)
    parser.add_argument("--poll", type=int, default=1_000, help="posts per consumer poll")
    parser.add_argument("--cap", type=int, default=800)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--read-users", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    keyspace = f"bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench-cassandra-{uuid.uuid4().hex[:8]}:"
    graph, authors = synthetic_graph(args.users, args.authors, args.mean_followers, args.seed)
    posters = np.random.default_rng(args.seed + 1).choice(authors, size=args.posts).tolist()
    durable = CassandraFeedStore(args.cassandra, keyspace, max_length=args.cap, timeout=30)
    durable.ping()  # creates the keyspace
    cached = CachedFeedStore(
        CassandraFeedStore(args.cassandra, keyspace, max_length=args.cap, timeout=30),
        args.redis_url,
        prefix=prefix,
    )
    redis_only = RedisFeedStore(args.redis_url, max_length=args.cap, prefix=f"{prefix}only:")
    fanout = FanOut(durable, graph, celebrities=())
    session = durable._connect()
    insert = durable._insert()
    serial = iter(range(1, 1 << 40))

    def polls() -> list[list[tuple[int, int, int, list[int]]]]:
        base = next(serial) * 10_000_000
        posts = [
            NewPost(base + i, int(a), 1_700_000_000_000 + base + i) for i, a in enumerate(posters)
        ]
        return [
            fanout.plan_posts(posts[s : s + args.poll])[0] for s in range(0, len(posts), args.poll)
        ]

    def bare(planned: list[list[tuple[int, int, int, list[int]]]]) -> int:
        from cassandra.concurrent import execute_concurrent_with_args

        total = 0
        for groups in planned:
            rows = [
                (user, created, f"{post}:{author}", post, author)
                for post, author, created, users in groups
                for user in users
            ]
            execute_concurrent_with_args(
                session, insert, rows, concurrency=CONCURRENCY, raise_on_first_error=True
            )
            total += len(rows)
        return total

    def through(store: Any) -> Callable[[list[list[tuple[int, int, int, list[int]]]]], int]:
        return lambda planned: sum(store.push_posts(groups) for groups in planned)

    paths: list[tuple[str, Callable[[list[list[tuple[int, int, int, list[int]]]]], int]]] = [
        ("bare driver loop (single INSERTs, 64 in flight)", bare),
        ("Cassandra store (push_posts)", through(durable)),
        ("Cassandra + Redis cache (push_posts)", through(cached)),
    ]
    rates: dict[str, list[float]] = {name: [] for name, _ in paths}
    ratios: dict[str, list[float]] = {name: [] for name, _ in paths}
    loads: list[float] = []
    entries = 0
    reads: dict[str, tuple[float, float, float]] = {}
    try:
        for repeat in range(args.repeat):
            loads.append(os.getloadavg()[0])
            baseline = 0.0
            for name, run in paths:
                planned = polls()
                started = time.perf_counter()
                written = run(planned)
                seconds = time.perf_counter() - started
                entries = sum(len(users) for groups in planned for *_, users in groups)
                if written != entries:
                    raise SystemExit(f"{name}: wrote {written} of {entries} entries")
                rate = entries / seconds
                baseline = baseline or rate
                rates[name].append(rate)
                ratios[name].append(rate / baseline)
            console.print(
                f"repeat {repeat + 1}: "
                + ", ".join(f"{n}: {r[-1]:,.0f}/s" for n, r in rates.items())
            )

        # reads: feeds at the cap
        rng = np.random.default_rng(args.seed + 3)
        users = [
            int(u)
            for u in rng.choice(np.arange(10_000_000, 20_000_000), args.read_users, replace=False)
        ]
        feeds = {
            u: [FeedEntry(u * 1_000 + i, 7, 1_600_000_000_000 + i) for i in range(args.cap)]
            for u in users
        }
        cached.replace_many(feeds)
        redis_only.replace_many(feeds)
        plain = redis.Redis.from_url(args.redis_url)
        nothing: Callable[[int], Any] = lambda user: None  # noqa: E731
        drop = lambda user: plain.delete(f"{prefix}feed:{user}")  # noqa: E731
        for user in users[:20]:  # warm connections and prepared statements
            durable.read(user, args.cap)
            cached.read(user, args.cap)
            redis_only.read(user, args.cap)
        loads.append(os.getloadavg()[0])
        reads["Redis only (RedisFeedStore, the Redis-only design)"] = profile(
            timed_reads(users, lambda u: redis_only.read(u, args.cap), nothing)
        )
        timed_reads(users, lambda u: cached.read(u, args.cap), nothing)  # fill every feed
        cached.wait_for_fills()
        hits_before = cached.stats["hits"]
        reads["cached hit (CachedFeedStore)"] = profile(
            timed_reads(users, lambda u: cached.read(u, args.cap), nothing)
        )
        if cached.stats["hits"] - hits_before != len(users):
            raise SystemExit("cached reads were not all hits")
        misses_before = cached.stats["misses"]
        reads["miss: read from Cassandra + fill Redis"] = profile(
            timed_reads(users, lambda u: cached.read(u, args.cap), drop)
        )
        if cached.stats["misses"] - misses_before != len(users):
            raise SystemExit("dropped feeds were not all misses")
        cached.wait_for_fills()

        def breaker_open(user: int) -> None:
            cached._down_until = time.monotonic() + 60  # as after a failed Redis call
            cached._down_reason = "benchmark: Redis treated as down"

        reads["Redis down: served from Cassandra"] = profile(
            timed_reads(users, lambda u: cached.read(u, args.cap), breaker_open)
        )
        cached._down_until = 0.0
        reads["Cassandra (CassandraFeedStore)"] = profile(
            timed_reads(users, lambda u: durable.read(u, args.cap), nothing)
        )
        plain.close()
    finally:
        cached.clear_cache()
        redis_only.clear()
        durable.drop_keyspace()
        cached.close()
        durable.close()
        redis_only.close()

    table = Table(
        title=f"fan-out writes/s into Cassandra feeds: {entries:,} entries per run, "
        f"{args.users:,} users, {args.poll}-post polls, cap {args.cap}, median of {args.repeat}; "
        f"load average {', '.join(f'{n:.1f}' for n in loads)}"
    )
    for column in ("path", "entries/s", "vs bare loop", "runs"):
        table.add_column(column)
    for name, _ in paths:
        table.add_row(
            name,
            f"{statistics.median(rates[name]):,.0f}",
            f"{statistics.median(ratios[name]):.2f}",
            ", ".join(f"{r:,.0f}" for r in rates[name]),
        )
    console.print(table)
    reads_table = Table(title=f"feed reads of {args.cap} entries, {len(users)} users each")
    for column in ("path", "p50 ms", "p99 ms", "CPU ms/read"):
        reads_table.add_column(column)
    for name, (p50, p99, cpu) in reads.items():
        reads_table.add_row(name, f"{p50:.2f}", f"{p99:.2f}", f"{cpu:.2f}")
    console.print(reads_table)
    store_ratio = statistics.median(ratios["Cassandra store (push_posts)"])
    cached_ratio = statistics.median(ratios["Cassandra + Redis cache (push_posts)"])
    hit = reads["cached hit (CachedFeedStore)"][1]
    miss = reads["miss: read from Cassandra + fill Redis"][1]
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    console.print(
        f"fan-out (Cassandra store) / bare loop = {store_ratio:.2f}; target >= 0.50: {verdict(store_ratio >= 0.5)}"
    )
    console.print(
        f"fan-out (Cassandra + Redis) / bare loop = {cached_ratio:.2f}; target >= 0.50: {verdict(cached_ratio >= 0.5)}"
    )
    console.print(f"cached read p99 = {hit:.2f} ms; target <= 10 ms: {verdict(hit <= 10)}")
    console.print(
        f"miss served from Cassandra p99 = {miss:.2f} ms; target <= 20 ms: {verdict(miss <= 20)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
