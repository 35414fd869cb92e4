"""The rounds bench's own logic (`bench.closed_loop_rounds`): what it counts from a round's
landing files, the exposure Gini over every post of the world, the rounds' simulated times and
the policies. The round's files are written by the real `workload.loop.run_loop` (a small
generated world and its `TruthOracle`) into a local object store; the API is a fixed feed
behind an `httpx.MockTransport` (the platform rounds themselves are the bench's job)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pandas as pd
import pytest

from bench.closed_loop_rounds import (
    Policy,
    exposure_gini,
    home_feed_exposure,
    landing_lines,
    loop_rows,
    round_start,
)
from objectstore.store import LocalObjectStore
from workload.config import WorkloadConfig
from workload.generator import generate
from workload.loop import LoopConfig, run_loop
from workload.truth_oracle import TruthOracle


@pytest.fixture(scope="module")
def oracle() -> TruthOracle:
    return TruthOracle.of(generate(WorkloadConfig(users=40, days=1, seed=5)))


def test_a_round_exposure_counts_what_the_loop_logged(oracle: TruthOracle, tmp_path) -> None:
    posts = sorted(oracle.created_s)[:6]  # the feed shows the same six posts to everyone
    explored_slot = 2

    def feed(request: httpx.Request) -> httpx.Response:
        items = [
            {
                "post_id": p,
                "author_id": 1,
                "rank": i,
                **({"explored": True} if i == explored_slot else {}),
            }
            for i, p in enumerate(posts)
        ]
        return httpx.Response(200, content=orjson.dumps({"items": items, "next_cursor": None}))

    store = LocalObjectStore(tmp_path)
    config = LoopConfig(
        sessions=25,
        seed=3,
        explore_probability=0.0,
        stories_probability=0.0,
        suggestions_probability=0.0,
        gap_seconds=600.0,
    )
    with httpx.Client(transport=httpx.MockTransport(feed), base_url="http://api") as http:
        report = run_loop(http, oracle, store, "landing", datetime(2026, 1, 1, tzinfo=UTC), config)
    assert report.partitions and len(report.keys) >= 2  # impressions, likes over several hours
    counts, explored = home_feed_exposure(landing_lines(store, report.keys))
    assert dict(counts) == dict.fromkeys(posts, 25)  # one page per session, no likes counted
    assert explored == 25
    assert sum(counts.values()) == report.surfaces["home_feed"].impressions
    world = set(oracle.created_s)
    assert len(world) > 3 * len(posts)
    # every post of the world counts, the never-shown ones as 0: all exposure on 6 posts of many
    assert exposure_gini(counts, world) == pytest.approx(1 - len(posts) / len(world))
    assert exposure_gini(counts, posts) == pytest.approx(0.0)


def test_rounds_follow_each_other_and_policies_say_what_they_train_on() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert [round_start(start, r, 36.0).isoformat() for r in range(3)] == [
        "2026-01-01T00:00:00+00:00",
        "2026-01-02T12:00:00+00:00",
        "2026-01-04T00:00:00+00:00",
    ]
    assert Policy.of("served", 0.2, "only") == Policy("served", 0.0, "all")
    assert Policy.of("explore", 0.2, "only") == Policy("explore", 0.2, "only")
    with pytest.raises(ValueError):
        Policy.of("explore", 0.0, "only")  # nothing explored to learn from
    with pytest.raises(ValueError):
        Policy.of("explore", 0.2, "all")  # would be the served policy with a cost


def test_the_retrain_reads_the_loops_rows_only() -> None:
    start = datetime(2026, 1, 3, tzinfo=UTC)
    frame = pd.DataFrame(
        {
            "event_timestamp": pd.to_datetime(
                ["2026-01-02T23:59:59Z", "2026-01-03T00:00:00Z", "2026-01-04T10:00:00Z"]
            ),
            "impression_id": ["generator", "first", "later"],
        }
    )
    assert loop_rows(frame, start)["impression_id"].tolist() == ["first", "later"]
