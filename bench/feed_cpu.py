"""CPU per uncached home feed, in process, per stage: the endpoint's code path without HTTP.

Wall-clock figures on a shared machine follow its load; the thread CPU time of a build does
much less. This builds the feeds of `--users` distinct users (the bench's most-followed, as
`bench.serving_load` asks for them) the way `GET /v1/users/{id}/feed` does on a cache miss:
`FeedService.build` (candidates, visibility, features, preprocessing, scoring, rules), the first
page, and its JSON. One warm-up pass fills the decoded feature cache, as a running server has;
then `--rounds` passes are timed with `time.thread_time`, and the per-stage histograms
(`serving.stages`) are read in thread CPU too. BLAS runs on one thread, as the server sets it.

`--first-visit` times that first pass too (after 100 other users' feeds, so posts and authors
are mostly cached and what a first visit adds is its viewer's rows and (author, viewer) pairs):
most requests of the HTTP bench are a viewer's first feed since the store last changed.
`--first-out` writes those first feeds for `--compare`, as `--out` does the warm ones.

The request time is the data's watermark for every build, so two runs on the same data (this
code and a baseline checkout) rank the same feeds and `--compare` can check them equal:

    uv run python -m bench.feed_cpu --data-dir /tmp/sl --out /tmp/new.npz
    git archive <commit> | tar -x -C /tmp/base && cp bench/feed_cpu.py /tmp/base/bench/
    (cd /tmp/base && PYTHONPATH=/tmp/base $PWD/.venv/bin/python -m bench.feed_cpu \
        --data-dir /tmp/sl --out /tmp/old.npz)
    uv run python -m bench.feed_cpu --compare /tmp/old.npz /tmp/new.npz

The baseline runs from its own directory (`-m` puts the working directory first on sys.path)
with this environment. The data directory comes from `bench.serving_load`, which builds it when
empty. chDB opens a directory from one process at a time: to run both at once (the machine's
load then hits both alike), start the second once the first prints its warm-up line, both with
the same `--start-at` so their timed rounds overlap.
"""

import argparse
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# as bench.serving_load's uncached server: every request a cache miss, ~1,000 candidates
SERVER_ENV = {
    "SERVING_CACHE_TTL_SECONDS": "0.000001",
    "SERVING_PUSHED_CANDIDATES": "800",
    "SERVING_EXPLORE_CANDIDATES": "200",
    "SERVING_SNAPSHOT_REFRESH_SECONDS": "0",
}
FIRST_VISIT_WARMUP = 100  # other users built before the timed first visits
FIRST_VISIT_GAP = 10.0  # s after --start-at when side-by-side runs start their warm rounds


def stage_sums(histogram: Any) -> dict[str, float]:
    """Seconds observed so far per stage of the feed endpoint."""
    out: dict[str, float] = {}
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_sum") and sample.labels["endpoint"] == "feed":
                out[sample.labels["stage"]] = sample.value
    return out


def measure(
    data_dir: Path,
    users: int,
    rounds: int,
    out: Path | None,
    start_at: float | None = None,
    first_visit: bool = False,
    first_out: Path | None = None,
) -> None:
    os.environ.update(SERVER_ENV)
    for name in ("REDIS_URL", "FEED_STORE_URL", "MLFLOW_TRACKING_URI", "METADATA_DB_URL"):
        os.environ.pop(name, None)
    import orjson
    from threadpoolctl import threadpool_limits

    import serving.stages as stages
    from bench.serving_feed import bench_users, platform
    from serving.routers.feed import feed_response
    from serving.settings import ServingSettings
    from serving.state import ServingState

    print(f"serving code: {Path(stages.__file__).parent}", flush=True)
    settings = platform(data_dir)
    threadpool_limits(1, user_api="blas")
    state = ServingState.create(settings, ServingSettings())
    state.load()
    gc.freeze()  # as the server's lifespan does
    everyone = bench_users(settings, 1000)
    ids, others = everyone[:users], everyone[users : users + FIRST_VISIT_WARMUP]
    snapshot, service, router = state.snapshot, state.home_feed, state.experiments
    assert snapshot is not None and service is not None and router is not None
    watermark = snapshot.clock.watermark
    snapshot.clock.now = lambda: watermark  # type: ignore[method-assign]

    def one(user: int) -> tuple[Any, bytes]:
        built = service.build(snapshot, user, router.route("home_feed", user))
        page = service.page(built, 0, 20, cached=False, snapshot=snapshot)
        with stages.stage("feed", "serialization"):
            body = orjson.dumps(feed_response(page, None))
        return built, body

    thread_clock = type("ThreadClock", (), {"perf_counter": staticmethod(time.thread_time)})
    wall_clock = stages.time
    if first_visit:
        if len(others) < FIRST_VISIT_WARMUP:
            raise SystemExit(f"--first-visit needs {users + FIRST_VISIT_WARMUP} bench users")
        for user in others:
            one(user)
        print(f"first visits: {len(others)} other users built first", flush=True)
        if start_at is not None:
            time.sleep(max(0.0, start_at - time.time()))
        stages.time = thread_clock  # type: ignore[assignment]
        before = stage_sums(stages.STAGE_SECONDS)
        started = time.thread_time()
        firsts = {user: one(user) for user in ids}
        spent = (time.thread_time() - started) / len(ids) * 1e3
        after = stage_sums(stages.STAGE_SECONDS)
        stages.time = wall_clock
        print(f"CPU ms per first-visit feed: {spent:.2f} (load average {os.getloadavg()[0]:.1f})")
        for name in stages.STAGES:
            print(
                f"  {name:14s} {(after.get(name, 0.0) - before.get(name, 0.0)) / len(ids) * 1e3:.3f} ms"
            )
        if first_out is not None:
            save(firsts, first_out)
    else:
        for user in ids:
            one(user)
    print(f"warm: {len(ids)} users built once", flush=True)
    if start_at is not None:  # two runs (old code, new code) time their rounds side by side
        time.sleep(max(0.0, start_at - time.time() + (FIRST_VISIT_GAP if first_visit else 0.0)))
    stages.time = thread_clock  # type: ignore[assignment]
    totals, per_stage = [], []
    for _ in range(rounds):
        before = stage_sums(stages.STAGE_SECONDS)
        started = time.thread_time()
        for user in ids:
            one(user)
        totals.append((time.thread_time() - started) / len(ids) * 1e3)
        after = stage_sums(stages.STAGE_SECONDS)
        per_stage.append({k: (v - before.get(k, 0.0)) / len(ids) * 1e3 for k, v in after.items()})
    print("CPU ms per uncached feed, per round: " + " ".join(f"{t:.2f}" for t in totals))
    print(f"median {np.median(totals):.2f} ms (load average {os.getloadavg()[0]:.1f})")
    for name in stages.STAGES:
        print(f"  {name:14s} {np.median([s.get(name, 0.0) for s in per_stage]):.3f} ms")
    if out is not None:
        save({user: one(user) for user in ids}, out)


def save(feeds: dict[int, tuple[Any, bytes]], out: Path) -> None:
    """Each user's built feed (posts, scores, sources, counts) and first page, for `compare`."""
    import orjson

    saved: dict[str, np.ndarray] = {}
    for user, (built, body) in feeds.items():
        page = orjson.loads(body)
        saved[f"{user}_post"] = built.post_ids
        saved[f"{user}_score"] = np.asarray(built.scores, dtype="float64")
        saved[f"{user}_source"] = built.sources.astype(str)
        saved[f"{user}_counts"] = np.array([built.candidates, built.ranked, built.degraded])
        saved[f"{user}_page"] = np.array([item["post_id"] for item in page["items"]])
    np.savez(out, **saved)  # type: ignore[arg-type]
    print(f"feeds of {len(feeds)} users written to {out}")


def compare(old: Path, new: Path, tolerance: float = 1e-9) -> bool:
    """Same users, post ids in the same order, sources, counts and first pages; scores within
    `tolerance`. Prints the verdict."""
    a, b = np.load(old), np.load(new)
    if set(a.files) != set(b.files):
        print("different users or fields")
        return False
    worst = 0.0
    for key in a.files:
        if key.endswith("_score"):
            worst = max(worst, float(np.max(np.abs(a[key] - b[key]), initial=0.0)))
        elif not np.array_equal(a[key], b[key]):
            print(f"differs: {key}")
            return False
    users = len(a.files) // 5
    print(f"{users} users: same posts, order, sources, counts, pages; max |score diff| {worst:.3g}")
    return worst <= tolerance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="a bench.serving_load data directory")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the feeds here (.npz) for --compare")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("OLD", "NEW"))
    parser.add_argument(
        "--start-at", type=float, help="Unix time to start the timed rounds (after warm-up)"
    )
    parser.add_argument(
        "--first-visit", action="store_true", help="also time each user's first feed"
    )
    parser.add_argument("--first-out", type=Path, help="write the first feeds here (.npz)")
    args = parser.parse_args()
    if args.compare:
        sys.exit(0 if compare(*args.compare) else 1)
    if args.data_dir is None:
        parser.error("--data-dir is required unless --compare")
    if args.first_out is not None and not args.first_visit:
        parser.error("--first-out needs --first-visit")
    measure(
        args.data_dir,
        args.users,
        args.rounds,
        args.out,
        args.start_at,
        first_visit=args.first_visit,
        first_out=args.first_out,
    )


if __name__ == "__main__":
    main()
