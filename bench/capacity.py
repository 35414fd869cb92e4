"""Capacity model: the seed's peak load divided by the per-core rates measured in this repo.

Nothing is measured here. Every rate is a constant copied from `docs/benchmarks.md` (the section
is named beside it, with the load it was measured under), every load comes from the seed's
published figures or from a ratio of the generated workload, and the arithmetic is one line:
cores = ceil(load / rate per core). `docs/capacity.md` explains the table and its caveats; this
module exists so that the table can be recomputed when a rate is re-measured, and so that a test
can check the arithmetic instead of trusting a hand-made table.

    uv run python -m bench.capacity [--uncached-share 0.1]
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

# --- The seed's scale (Twitter's published "Timelines at Scale" figures, quoted by the seed) ---
PEAK_POSTS_PER_S = 6_000  # writes/s at peak
POSTS_PER_DAY = 100_000_000  # 100M+ posts/day
AVERAGE_POSTS_PER_S = POSTS_PER_DAY / 86_400  # 1,157/s: batch stages keep up with the day
PEAK_TIMELINE_READS_PER_S = 300_000

# --- Ratios of the generated workload (not the seed's) ---
# 1000 users x 3 days, seed 11 (workload.generator): 130,902 records, 4,010 post_created,
# 64,774 impressions, 5,566 likes, 695 comments, 411 saves, 243 shares; every post carries media.
EVENTS_PER_POST = 130_902 / 4_010  # 32.6 (follows are 6.5 of it: a 3-day graph is still growing)
IMPRESSIONS_PER_POST = 64_774 / 4_010  # 16.2
ENGAGEMENTS_PER_POST = (5_566 + 695 + 411 + 243) / 4_010  # 1.72 (ALS interactions)
NOTIFYING_EVENTS_PER_POST = (5_566 + 695) / 4_010  # 1.56 (likes + comments reach the worker)
# benchmarks.md "Online features": 48,169 entity rows materialized for 126,670 events.
FEATURE_ROWS_PER_EVENT = 48_169 / 126_670  # 0.38
# benchmarks.md "Fan-out writes": 475,361 feed entries for 5,000 posts (log-normal followers).
FOLLOWERS_PER_POST = 475_361 / 5_000  # 95.1
IMAGES_PER_POST = 1.0  # assumption: one image per post (the generator gives every post media)
RANKER_EPOCHS = 29  # benchmarks.md "Feed ranker: training speed": the measured run's epochs

# --- Per-core rates from docs/benchmarks.md (section; conditions) ---
# "Kafka -> ClickHouse", one load per poll: 15,072 events/s, one consumer process; Kafka broker
# on the same 2 cores, loopback. Pure-Python CRC32C is half of it (29k with crc32c, not pinned).
KAFKA_INGEST_PER_CORE = 15_072
# "Landing zone -> ClickHouse": loader 63,775 records/s, one process, quiet machine.
FILE_INGEST_PER_CORE = 63_775
# "dbt build on chDB": 165,728 events/s at 10M events on 2 cores shared with test runs; full
# rebuild (item 3's incremental models not built yet), so this is per event of history.
DBT_PER_CORE = 165_728 / 2
# "Online features", materialization into Redis: 9,385 rows/s, one process (Feast-bound).
MATERIALIZE_PER_CORE = 9_385
# "Feed ranker: training speed": 29,619 examples/s (x epochs) on 2 cores at load 5.5.
RANKER_TRAIN_PER_CORE = 29_619 / 2
# "Recommenders: Spark ALS": 974,269 interactions, rank 16, 12 iterations in 66.3 s on local[2]
# at load 4-9 (an upper bound on time).
ALS_PER_CORE = 974_269 / 66.3 / 2
# "Fan-out writes into Redis feeds": store median 122,770 entries/s, one client process plus
# Redis (its own core), load 7-10 on 2 cores. CPU accounting in the same section: client 0.6 us
# + Redis 0.9-2.4 us per entry, i.e. about 330,000 entries/s per core if cores were free.
FANOUT_PER_CORE = 122_770 / 2
FANOUT_PER_CORE_CPU = 1e6 / (0.6 + 2.4)
# "Serving API under load", quiet rerun (load 0.4-2): cached feed 2,546 req/s, one uvicorn
# worker (the load generator shared the 2 cores: optimistic for the server, pessimistic for it
# too). "Serving under wrk": one worker RSS 1,195 MB.
SERVING_CACHED_PER_CORE = 2_546
SERVING_WORKER_MB = 1_195
# "Serving under wrk", quiet rerun (load 1.5): uncached feed, 2 workers, 64 req/s on 2 cores;
# RSS 1,637-1,674 MB per worker.
SERVING_UNCACHED_PER_CORE = 64 / 2
SERVING_UNCACHED_WORKER_MB = 1_674
# "Media content checks": whole process_image of a 1080x1266 JPEG (renditions + NudeNet + face
# cascade) 457 ms CPU at load 17 (oversubscribed about 8x).
MEDIA_IMAGES_PER_CORE = 1 / 0.457
# "Search": batch indexing 3,049 docs/s, wall clock, one process, load 20.
SEARCH_INDEX_PER_CORE = 3_049
# "Notification worker": 1,018 msg/s (the kept version), one process, load 17-22.
NOTIFY_PER_CORE = 1_018
# Redis feed memory ("Fan-out writes", zset options): about 125 bytes per entry as a skiplist;
# a feed at the 800 cap is about 96 KB.
FEED_BYTES_AT_CAP = 96_000


@dataclass(frozen=True)
class Stage:
    """One stage: the load it must carry and the measured rate one core gives it."""

    name: str
    load: float  # units per second
    per_core: float | None  # None: not measured
    unit: str
    partitions: str = ""
    memory: str = "not measured"

    @property
    def cores(self) -> int | None:
        """Cores to carry the load at the measured rate, or None when no rate was measured."""
        if self.per_core is None:
            return None
        return math.ceil(self.load / self.per_core)


def stages(uncached_share: float = 0.1) -> list[Stage]:
    """The stages at the seed's scale; `uncached_share` of timeline reads rebuild and rank."""
    peak_events = PEAK_POSTS_PER_S * EVENTS_PER_POST
    day_events = AVERAGE_POSTS_PER_S * EVENTS_PER_POST
    fanout = PEAK_POSTS_PER_S * FOLLOWERS_PER_POST
    cached = PEAK_TIMELINE_READS_PER_S * (1 - uncached_share)
    uncached = PEAK_TIMELINE_READS_PER_S * uncached_share
    kafka = math.ceil(peak_events / KAFKA_INGEST_PER_CORE)
    notify = math.ceil(PEAK_POSTS_PER_S * NOTIFYING_EVENTS_PER_POST / NOTIFY_PER_CORE)
    fanout_pairs = math.ceil(fanout / (FANOUT_PER_CORE * 2))
    cached_workers = math.ceil(cached / SERVING_CACHED_PER_CORE)
    uncached_workers = math.ceil(uncached / SERVING_UNCACHED_PER_CORE)
    return [
        Stage(
            "Kafka -> ClickHouse ingestion (peak)",
            peak_events,
            KAFKA_INGEST_PER_CORE,
            "events/s",
            partitions=f">= {kafka} per topic (one member per core)",
        ),
        Stage("dbt build (day average, incremental assumed)", day_events, DBT_PER_CORE, "events/s"),
        Stage(
            "feature materialization (day average)",
            day_events * FEATURE_ROWS_PER_EVENT,
            MATERIALIZE_PER_CORE,
            "rows/s",
        ),
        Stage(
            f"ranker training ({RANKER_EPOCHS} epochs over each day's impressions)",
            AVERAGE_POSTS_PER_S * IMPRESSIONS_PER_POST * RANKER_EPOCHS,
            RANKER_TRAIN_PER_CORE,
            "examples/s",
        ),
        Stage(
            "ALS refit on each day's engagements",
            AVERAGE_POSTS_PER_S * ENGAGEMENTS_PER_POST,
            ALS_PER_CORE,
            "interactions/s",
        ),
        Stage(
            "fan-out into Redis feeds (peak)",
            fanout,
            FANOUT_PER_CORE,
            "entries/s",
            partitions=f">= {fanout_pairs} (one consumer + one Redis shard per pair of cores)",
            memory=f"{FEED_BYTES_AT_CAP / 1e3:.0f} KB per feed at the 800 cap = "
            f"{FEED_BYTES_AT_CAP * 1e6 / 1e9:.0f} GB per million users",
        ),
        Stage("Redis feed reads (peak)", PEAK_TIMELINE_READS_PER_S, None, "reads/s"),
        Stage(
            "serving, cached feed pages (peak)",
            cached,
            SERVING_CACHED_PER_CORE,
            "req/s",
            memory=f"{cached_workers * SERVING_WORKER_MB / 1e3:,.0f} GB "
            f"({SERVING_WORKER_MB:,} MB per worker)",
        ),
        Stage(
            "serving, uncached feed (rebuild + rank, peak)",
            uncached,
            SERVING_UNCACHED_PER_CORE,
            "req/s",
            memory=f"{uncached_workers * SERVING_UNCACHED_WORKER_MB / 1e3:,.0f} GB "
            f"({SERVING_UNCACHED_WORKER_MB:,} MB per worker)",
        ),
        Stage(
            "media: renditions + content checks (peak)",
            PEAK_POSTS_PER_S * IMAGES_PER_POST,
            MEDIA_IMAGES_PER_CORE,
            "images/s",
        ),
        Stage("search indexing (peak)", float(PEAK_POSTS_PER_S), SEARCH_INDEX_PER_CORE, "docs/s"),
        Stage("search queries", 0.0, None, "queries/s (no rate in the seed)"),
        Stage(
            "notification worker (peak)",
            PEAK_POSTS_PER_S * NOTIFYING_EVENTS_PER_POST,
            NOTIFY_PER_CORE,
            "msg/s",
            partitions=f">= {notify} (one member per core)",
        ),
    ]


def first_bottleneck(table: list[Stage]) -> Stage:
    """The stage that needs the most cores (stages without a measured rate cannot be ranked)."""
    return max((s for s in table if s.cores is not None), key=lambda s: s.cores or 0)


def crossover_uncached_share(stage_cores: int) -> float:
    """Uncached share of reads above which uncached serving needs more than `stage_cores`."""
    return stage_cores * SERVING_UNCACHED_PER_CORE / PEAK_TIMELINE_READS_PER_S


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uncached-share", type=float, default=0.1)
    args = parser.parse_args()
    table = stages(args.uncached_share)
    print("| stage | load | per core | cores | partitions | memory |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for s in table:
        rate = (
            "not measured"
            if s.per_core is None
            else f"{s.per_core:,.{2 if s.per_core < 10 else 0}f}"
        )
        cores = "not measured" if s.cores is None else f"{s.cores:,}"
        print(
            f"| {s.name} | {s.load:,.0f} {s.unit} | {rate} | {cores} | {s.partitions or '-'} "
            f"| {s.memory} |"
        )
    known = [s.cores for s in table if s.cores is not None]
    print(f"\ntotal cores of the measured stages: {sum(known):,}")
    top = first_bottleneck(table)
    print(f"first bottleneck: {top.name} ({top.cores:,} cores)")
    fanout_cpu = math.ceil(PEAK_POSTS_PER_S * FOLLOWERS_PER_POST / FANOUT_PER_CORE_CPU)
    print(f"fan-out from CPU accounting instead of wall clock: {fanout_cpu} cores")
    media = next(s for s in table if s.name.startswith("media"))
    assert media.cores is not None
    print(
        "uncached serving overtakes media above an uncached share of "
        f"{crossover_uncached_share(media.cores):.3f}"
    )


if __name__ == "__main__":
    main()
