"""`generate(config)`: the whole seeded workload as the records an S3 sink connector would write.

Graph, content and sessions are simulated column-wise, then every event gets a seeded UUID and is
serialized once with orjson; bad records are mixed in and the stream is ordered by produced time.
The same config (seed included) gives byte-identical records.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from contracts.catalog import CONTRACTS, CONTRACTS_BY_TYPE, FAMILIES
from workload.config import BAD_KINDS, WorkloadConfig
from workload.content import build_content
from workload.engagement import simulate_engagement
from workload.events import EventBatch, ms_to_datetime, random_uuids, serialize
from workload.faults import BadRecord, inject_faults
from workload.graph import build_graph
from workload.ground_truth import GroundTruth
from workload.notifications import notification_batches

STAGES = (
    "users & graph",
    "posts & stories",
    "sessions & engagement",
    "serialize",
    "faults",
    "order",
)


class LandingRecord(NamedTuple):
    """One record as the sink connector receives it (immutable).

    produced_at: when it reached the sink (aware UTC); it picks the landing hour partition.
    event_type: the type it is filed under (`_unparsed` for a line without one).
    line: the serialized event, one JSON object, no trailing newline.
    bad_detail: for a bad record, what is wrong (a field name, or how the line is broken).
    """

    produced_at: datetime
    event_type: str
    line: bytes
    is_bad: bool = False
    bad_kind: str | None = None
    bad_detail: str | None = None


@dataclass
class Workload:
    """The records in produced order, the hidden truth behind them and a manifest of counts."""

    config: WorkloadConfig
    records: list[LandingRecord]
    ground_truth: GroundTruth
    manifest: dict[str, Any]
    elapsed_seconds: float

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    @property
    def events_per_second(self) -> float:
        return len(self.records) / self.elapsed_seconds if self.elapsed_seconds else 0.0


def generate(config: WorkloadConfig, *, progress: bool = False) -> Workload:
    """Simulate the app for `config.days` from `config.start` and return its landing records."""
    started = time.perf_counter()
    graph_rng, content_rng, engagement_rng, id_rng, fault_rng, notify_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(6)
    )
    with _stages(progress) as step:
        graph = build_graph(config, graph_rng)
        step()
        content = build_content(config, graph, content_rng)
        step()
        engagement = simulate_engagement(config, graph, content, engagement_rng)
        step()

        batches = [*graph.batches, *content.batches, *engagement.batches]
        for batch in batches:
            batch.event_ids = random_uuids(id_rng, len(batch))
        impressions = next(b for b in batches if b.event_type == "impression")
        engagement.impressions["event_id"] = impressions.event_ids
        lines = [line for batch in batches for line in serialize(batch)]
        produced_ms = np.concatenate([b.produced_ms for b in batches])
        step()

        # notification-only events draw from their own stream: the other events stay unchanged
        views = next(b for b in batches if b.event_type == "story_view")
        extra = notification_batches(config, notify_rng, graph, content, views)
        for batch in extra:
            batch.event_ids = random_uuids(notify_rng, len(batch))
        batches += extra
        lines += [line for batch in extra for line in serialize(batch)]
        produced_ms = np.concatenate([produced_ms, *(b.produced_ms for b in extra)])
        step()

        bad = inject_faults(config, fault_rng, lines, produced_ms)

        records = _ordered_records(batches, lines, produced_ms, bad)
        step()
    _check_window(config, produced_ms, bad)

    ground_truth = GroundTruth(
        impressions=engagement.impressions.reset_index(drop=True),
        affinity=engagement.affinity,
        content_preference=engagement.content_preference,
        post_quality=pd.DataFrame(
            {
                "post_id": content.posts["post_id"],
                "quality": content.posts["quality"],
                "visible_quality": content.posts["visible_quality"],
            }
        ),
        parameters=_parameters(config, graph.users, content.trends),
    )
    manifest = _manifest(config, batches, bad)
    return Workload(config, records, ground_truth, manifest, time.perf_counter() - started)


def _ordered_records(
    batches: list[EventBatch], lines: list[bytes], produced_ms: np.ndarray, bad: list[BadRecord]
) -> list[LandingRecord]:
    types = [b.event_type for b in batches for _ in range(len(b))]
    all_ms = np.concatenate([produced_ms, np.array([b.produced_ms for b in bad], dtype=np.int64)])
    order = np.argsort(all_ms, kind="stable")
    n_valid = len(lines)
    records = []
    for i, ms in zip(order.tolist(), all_ms[order].tolist(), strict=True):
        at = datetime.fromtimestamp(ms / 1000, UTC)  # exact to the millisecond
        if i < n_valid:
            records.append(LandingRecord(at, types[i], lines[i]))
        else:
            b = bad[i - n_valid]
            records.append(LandingRecord(at, b.event_type, b.line, True, b.kind, b.detail))
    return records


def _check_window(config: WorkloadConfig, produced_ms: np.ndarray, bad: list[BadRecord]) -> None:
    bad_ms = np.array([b.produced_ms for b in bad], dtype=np.int64)
    for ms in (produced_ms, bad_ms):
        if len(ms) and (ms.min() < config.start_ms or ms.max() >= config.end_ms):
            raise AssertionError("a record was produced outside the window")


def _parameters(config: WorkloadConfig, users: pd.DataFrame, trends: list[Any]) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "truth_model": asdict(config.truth),
        "formula": (
            "p = sigmoid(b0 + affinity[viewer, author] + content_pref[viewer, media_type]"
            " + quality[post] + interest * interest_match"
            " + interest_quality * interest_match * visible_quality[post]"
            " + location_city * same_city + location_country * same_country"
            " - location_distance * log1p(distance_km / 100)"
            " + velocity * log1p(engagements_before) + repeat * log1p(pair_engagements_before)"
            " - recency_<media_type> * log1p(age_hours) - position * log1p(position)),"
            " affinity = structural_affinity(follows, followed_by, topic_overlap, same_city,"
            " common_follows) + latent"
        ),
        "celebrities": users.loc[users["is_celebrity"], "user_id"].astype(int).tolist(),
        "private_users": users.loc[users["is_private"], "user_id"].astype(int).tolist(),
        "trending": [
            {
                "hashtag": t.hashtag,
                "start": ms_to_datetime(t.start_ms).isoformat(),
                "end": ms_to_datetime(t.end_ms).isoformat(),
                "boost": t.boost,
            }
            for t in trends
        ],
    }


def _manifest(
    config: WorkloadConfig, batches: list[EventBatch], bad: list[BadRecord]
) -> dict[str, Any]:
    by_type = Counter({b.event_type: len(b) for b in batches})
    valid_by_type = {c.event_type: by_type.get(c.event_type, 0) for c in CONTRACTS}
    valid_by_family = dict.fromkeys(FAMILIES, 0)
    for event_type, count in valid_by_type.items():
        valid_by_family[CONTRACTS_BY_TYPE[event_type].family] += count
    bad_by_kind = Counter(b.kind for b in bad)
    return {
        "run_id": config.run_id,
        "seed": config.seed,
        "config": config.to_dict(),
        "window": {
            "start": config.window_start.isoformat(),
            "end": config.window_end.isoformat(),
        },
        "records": sum(valid_by_type.values()) + len(bad),
        "valid_events": sum(valid_by_type.values()),
        "valid_by_type": valid_by_type,
        "valid_by_family": valid_by_family,
        "bad_events": len(bad),
        "bad_by_kind": {kind: bad_by_kind.get(kind, 0) for kind in BAD_KINDS},
    }


@contextmanager
def _stages(enabled: bool) -> Iterator[Any]:
    with Progress(
        TextColumn("[bold]workload[/] {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=True,
    ) as bar:
        task = bar.add_task(STAGES[0], total=len(STAGES))
        done = 0

        def step() -> None:
            nonlocal done
            done += 1
            bar.update(task, advance=1, description=STAGES[min(done, len(STAGES) - 1)])

        yield step
