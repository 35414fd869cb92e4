"""Fan-out writes/s into Redis feeds, beside a pipelined `redis-benchmark` ZADD in the same run.

A synthetic follow graph (power-law follower counts) and a stream of new posts; measured:
- store: `RedisFeedStore.push_posts` of pre-planned (post, recipients) per poll (what the
  streaming consumer writes): one ZADD per user, then trim to the cap and version bump for the
  users that got something new;
- fan-out: `FanOut.publish` end to end (followers, privacy checks, celebrity skip, then the store);
- push_many: the same entries one by one, `RedisFeedStore.push_many` (grouped per user);
- redis-py: a plain redis-py pipeline of one ZADD per entry (no cap, no version), for reference;
- baseline: `redis-benchmark -P 16 -t zadd` (50 clients, 16 commands per round trip), the
  server's own ceiling for single-member ZADDs. It re-adds one member to one key (no insert);
  the same command with `-r 1000000` (random members, so each ZADD inserts) is shown beside it.
Each repeat runs the baseline first and the store right after it; ratios are taken per repeat
(against both baselines) and the median reported (the machine is shared, so rates drift between
repeats; the load average is printed). The target is store (full 5000-post polls) >= 0.50 of the
re-adding baseline. Feeds grow by about 40 entries per user per repeat (four paths write them);
the table names the mean feed length the headline path wrote into and the server's
`zset-max-listpack-entries` (feeds below it are listpacks, whose inserts scan the list).
`--prefill N` starts every feed at N entries (memory: about 40 bytes per entry in a listpack,
125 in a skiplist). Keys live under a unique prefix in `--db`, deleted at the end.

    uv run python -m bench.fanout [--redis-url redis://127.0.0.1:16379/0] [--db 14] [--prefill 0]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np
import redis
from rich.console import Console
from rich.progress import track
from rich.table import Table

from fanout.fanout import FanOut, NewPost
from fanout.redis_store import RedisFeedStore
from fanout.store import FeedEntry, Push
from visibility import VisibilityGraph

console = Console()


def synthetic_graph(
    users: int, authors: int, mean_followers: float, seed: int
) -> tuple[VisibilityGraph, np.ndarray]:
    """Authors with log-normal follower counts (a few large, most small) and some blocks."""
    rng = np.random.default_rng(seed)
    counts = np.minimum(
        rng.lognormal(np.log(mean_followers) - 0.5, 1.0, size=authors).astype(int) + 1, users - 1
    )
    author_ids = np.arange(1, authors + 1) * 1_000_003  # not follower ids
    follows = []
    for author, count in zip(author_ids.tolist(), counts.tolist(), strict=True):
        follows += [(int(f), author) for f in rng.choice(users, size=count, replace=False) + 1]
    blocks = [(int(rng.integers(1, users + 1)), int(a)) for a in rng.choice(author_ids, authors)]
    return VisibilityGraph.from_edges(follows=follows, blocks=blocks), author_ids


def baseline_rps(url: str, db: int, requests: int, *extra: str) -> float:
    """`redis-benchmark -P 16 -t zadd` against the same server: ZADD commands per second."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        raise SystemExit("redis-benchmark not found (Debian: apt-get install redis-tools)")
    parsed = urlparse(url)
    command = [
        binary, "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379),
        "--dbnum", str(db), "-P", "16", "-t", "zadd", "-n", str(requests), "-q", "--csv", *extra,
    ]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    return float(rows[0]["rps"])


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    entries = fn()
    return entries, time.perf_counter() - started


PUSH_COMMANDS = ("zadd", "zremrangebyrank", "incr")


def server_usec(client: redis.Redis, commands: tuple[str, ...]) -> int:
    """Microseconds the server spent executing these commands so far (INFO commandstats,
    server-wide; excludes parsing the protocol)."""
    info: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
    return sum(int(info.get(f"cmdstat_{c}", {}).get("usec", 0)) for c in commands)


@dataclass
class Measure:
    rates: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # vs the baseline of the same repeat
    insert_ratios: list[float] = field(default_factory=list)  # vs the inserting (-r) baseline
    server_us: list[float] = field(default_factory=list)  # server time per entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:16379/0")
    parser.add_argument("--db", type=int, default=14, help="a Redis database for the benchmark")
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--authors", type=int, default=5_000)
    parser.add_argument("--mean-followers", type=float, default=100.0)
    parser.add_argument("--posts", type=int, default=5_000)
    parser.add_argument(
        "--polls", default="5000,200", help="posts per consumer poll to measure (comma list)"
    )
    parser.add_argument("--cap", type=int, default=800)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--prefill", type=int, default=0, help="entries per feed written before the first repeat"
    )
    args = parser.parse_args(argv)
    polls = [int(p) for p in args.polls.split(",")]

    parsed = urlparse(args.redis_url)
    url = parsed._replace(path=f"/{args.db}").geturl()
    prefix = f"bench-fanout-{uuid.uuid4().hex[:8]}:"
    graph, authors = synthetic_graph(args.users, args.authors, args.mean_followers, args.seed)
    posters = np.random.default_rng(args.seed + 1).choice(authors, size=args.posts).tolist()
    store = RedisFeedStore(url, max_length=args.cap, prefix=prefix)
    store.ping()
    fanout = FanOut(store, graph, celebrities=())
    plain = redis.Redis.from_url(url)
    serial = iter(range(1, 1 << 40))
    config: dict[str, str] = plain.config_get("zset-max-listpack-entries")  # type: ignore[assignment]
    listpack_entries = config.get("zset-max-listpack-entries", "?")
    sample_users = np.random.default_rng(args.seed + 2).choice(args.users, 500) + 1

    def mean_feed_length() -> float:
        pipe = plain.pipeline(transaction=False)
        for user in sample_users.tolist():
            pipe.zcard(store.feed_key(user))
        return float(np.mean(pipe.execute()))

    def prefill(entries: int) -> None:
        """Old posts (scores below every measured post) so pushes land at the top."""
        for start in track(range(1, args.users + 1, 2_000), description="prefill", console=console):
            users = range(start, min(start + 2_000, args.users + 1))
            store.replace_many(
                {
                    u: [FeedEntry(u * 1_000 + i, 1, 1_600_000_000_000 + i) for i in range(entries)]
                    for u in users
                }
            )

    def batches(poll: int) -> list[list[NewPost]]:
        """Every post once, with fresh ids (a re-push would be a no-op, not a write)."""
        base = next(serial) * 10_000_000
        posts = [
            NewPost(base + i, int(a), 1_700_000_000_000 + base + i) for i, a in enumerate(posters)
        ]
        return [posts[s : s + poll] for s in range(0, len(posts), poll)]

    def run_store(poll: int) -> Callable[[], int]:
        planned = [fanout.plan_posts(batch)[0] for batch in batches(poll)]
        return lambda: sum(store.push_posts(groups) for groups in planned)

    def run_fanout(poll: int) -> Callable[[], int]:
        planned = batches(poll)
        return lambda: sum(fanout.publish(batch).pushed_entries for batch in planned)

    def run_plain(poll: int) -> Callable[[], int]:
        planned: list[list[Push]] = [fanout.plan(batch)[0] for batch in batches(poll)]

        def run() -> int:
            total = 0
            for pushes in planned:
                pipe = plain.pipeline(transaction=False)
                for user, post, author, ms in pushes:
                    pipe.zadd(f"{prefix}plain:{user}", {f"{post}:{author}": ms})
                total += sum(pipe.execute())
            return total

        return run

    paths: list[tuple[str, Callable[[int], Callable[[], int]], int, tuple[str, ...]]] = [
        *((f"store, {p}-post polls", run_store, p, PUSH_COMMANDS) for p in polls),
        *((f"fan-out, {p}-post polls", run_fanout, p, PUSH_COMMANDS) for p in polls),
        (f"redis-py ZADD pipeline, {polls[0]}-post polls", run_plain, polls[0], ("zadd",)),
    ]
    measures = {name: Measure() for name, *_ in paths}
    baseline, inserts = Measure(), Measure()
    entries_per_run = 0
    lengths: list[float] = []  # mean feed length before the headline path, per repeat
    loads: list[float] = []
    try:
        if args.prefill:
            prefill(args.prefill)
        for _ in track(range(args.repeat), description="fan-out benchmark", console=console):
            loads.append(os.getloadavg()[0])
            lengths.append(mean_feed_length())
            before = server_usec(plain, ("zadd",))
            rps = baseline_rps(url, args.db, 1_000_000)
            baseline.rates.append(rps)
            baseline.ratios.append(1.0)
            baseline.server_us.append((server_usec(plain, ("zadd",)) - before) / 1_000_000)
            for name, make, poll, command in paths:
                run = make(poll)
                before = server_usec(plain, command)
                entries, seconds = timed(run)
                spent = server_usec(plain, command) - before
                entries_per_run = entries
                measure = measures[name]
                measure.rates.append(entries / seconds)
                measure.ratios.append(entries / seconds / rps)
                measure.server_us.append(spent / max(entries, 1))
            # the same command with random members: each ZADD inserts, as a feed push does
            before = server_usec(plain, ("zadd",))
            inserts.rates.append(baseline_rps(url, args.db, 1_000_000, "-r", "1000000"))
            inserts.ratios.append(inserts.rates[-1] / rps)
            inserts.server_us.append((server_usec(plain, ("zadd",)) - before) / 1_000_000)
            for measure in (baseline, inserts, *measures.values()):
                measure.insert_ratios.append(measure.rates[-1] / inserts.rates[-1])
    finally:
        store.clear()
        for key in plain.scan_iter(match="myzset*"):
            plain.delete(key)
        plain.close()
        store.close()

    table = Table(
        title=f"fan-out writes/s: {entries_per_run:,} entries per run, {args.users:,} users, "
        f"cap {args.cap}, median of {args.repeat}; zset-max-listpack-entries {listpack_entries}; "
        f"mean feed length before each repeat {', '.join(f'{n:.0f}' for n in lengths)}; "
        f"load average {', '.join(f'{n:.1f}' for n in loads)}"
    )
    for column in ("path", "entries/s", "vs -P 16 zadd", "vs ... -r", "server us/entry", "runs"):
        table.add_column(column)
    rows = [
        ("redis-benchmark -P 16 -t zadd", baseline),
        ("redis-benchmark -P 16 -t zadd -r 1000000", inserts),
        *measures.items(),
    ]
    for name, measure in rows:
        table.add_row(
            name,
            f"{statistics.median(measure.rates):,.0f}",
            f"{statistics.median(measure.ratios):.2f}",
            f"{statistics.median(measure.insert_ratios):.2f}",
            f"{statistics.median(measure.server_us):.2f}",
            ", ".join(f"{r:,.0f}" for r in measure.rates),
        )
    console.print(table)
    headline = measures[f"store, {polls[0]}-post polls"]
    ratio = statistics.median(headline.ratios)
    verdict = "met" if ratio >= 0.5 else "NOT met"
    console.print(
        f"store ({polls[0]}-post polls) / redis-benchmark -P 16 ZADD = {ratio:.2f} "
        f"(per repeat {', '.join(f'{r:.2f}' for r in headline.ratios)}; target >= 0.50: {verdict})"
    )
    console.print(
        f"store ({polls[0]}-post polls) / redis-benchmark -P 16 ZADD -r 1000000 (inserting) = "
        f"{statistics.median(headline.insert_ratios):.2f} "
        f"(per repeat {', '.join(f'{r:.2f}' for r in headline.insert_ratios)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
