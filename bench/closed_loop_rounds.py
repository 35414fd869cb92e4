"""Rounds of serve -> engage -> retrain -> serve the retrained ranker, on the platform itself.

`bench.closed_loop --retrain` measures one round. Feedback drift (`experiments.feedback` shows
it in a synthetic world) needs several: the ranker trained on what it served serves the next
round, whose impressions train the next ranker. This bench runs that loop under one policy:

- `served`: every home-feed slot is ranked; each retrain uses every impression (the default
  training, `RankerParams.explored_rows="all"`);
- `explore`: serving randomises a share of the slots (`SERVING_FEED_EXPLORE_SHARE`, flagged
  `explored`) and each retrain learns from them by `--explored-rows` (`only`: those rows alone;
  `inverse_share`: every row, the explored ones weighted up; `ml.ranking.explored_rows`).

The platform is `bench.serving_feed`'s (marts, Feast, precomputed feeds, a ranker trained on the
generator's data and published through the gate, which serves round 0). Each round is a
`workload.loop` run of `--sessions` home-feed sessions (no Explore, stories or suggestions: the
loop under study is the home-feed ranker's) over `--round-hours` simulated hours after the
previous round, against a fresh API process serving `feed-ranker@champion`; then the platform's
own Dagster jobs ingest its events and rebuild the marts and features (`build_analytics`,
`build_features`: online store and the `feed_ranker_v1` training set, mature labels only), the
ranker is retrained on that training set (`bench.trained_ranker`, through the gate) and aliased
`champion` whatever the gate said, so the retrained model serves the next round (the gate's
verdict is reported). The precomputed candidate feeds are not rebuilt (the loop writes no posts).

Two choices make the rounds comparable. The retrain learns from the loop's impressions only
(`loop_rows`: what the rankers served; the generator's own impressions, some 12,000 rows at 300
users x 2 days, would otherwise fill the train split, and the explored rows of a round would
only reach the holdout). And serving's candidate window (`FEED_WINDOW_HOURS`, 72 h) is widened
for the API (`--feed-window-hours`): the loop writes no posts, so with 72 h the candidate pool
empties as the rounds advance in simulated time (it did: a round starting 72 h after the
generated posts served nothing) and shrinks within a round, which changes engagement and
exposure for a reason that is not the ranker.

Per round: the model that served, the true expected engagement per home-feed impression (the
`TruthOracle`'s p of what was shown: the loop's users engage with it), the Gini of home-feed
impressions over every post, and for the model retrained after it: holdout AUC (labels) and
Spearman correlation with the true p of each holdout row (`time_split`'s holdout of its own
training set), beside the logistic-regression baseline and recency on the same rows.

    uv run python -m bench.closed_loop_rounds --policy served --data-dir DIR
        [--users 300 --days 2 --seed 7 --rounds 3 --sessions 300 --round-hours 36]
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson

from bench.closed_loop import world_arguments
from experiments.feedback import gini
from ml.ranking.explored_rows import MODES

POLICIES = ("served", "explore")
HOME_FEED = "home_feed"


@dataclass(frozen=True)
class Policy:
    """What serving randomises and how the retrain reads it."""

    name: str
    explore_share: float
    explored_rows: str

    @classmethod
    def of(cls, name: str, explore_share: float, explored_rows: str) -> Policy:
        if name == "served":
            return cls(name, 0.0, "all")
        if name == "explore":
            if not 0.0 < explore_share <= 0.5:
                raise ValueError("the explore policy needs 0 < explore share <= 0.5")
            if explored_rows == "all":
                raise ValueError(
                    "the explore policy learns from the explored rows: only or inverse_share"
                )
            return cls(name, explore_share, explored_rows)
        raise ValueError(f"unknown policy {name!r}: one of {POLICIES}")


@dataclass
class RoundResult:
    round: int
    served: str  # the model serving this round's feeds
    impressions: int = 0
    explored: int = 0
    engaged_per_impression: float = 0.0
    expected_per_impression: float = 0.0  # the truth's p of what was shown, per impression
    exposure_gini: float = 0.0
    # the ranker retrained after this round (None after the last round if it was not retrained)
    retrained: str | None = None
    gate: str = ""
    train_rows: int = 0
    train_explored: int = 0
    holdout_rows: int = 0
    holdout: dict[str, tuple[float, float]] | None = None  # model -> (AUC, Spearman with true p)


def round_start(loop_start: datetime, round_index: int, round_hours: float) -> datetime:
    """Rounds follow each other in simulated time, without overlap."""
    return loop_start + timedelta(hours=round_hours * round_index)


def home_feed_exposure(lines: Iterable[bytes]) -> tuple[Counter[int], int]:
    """Home-feed impressions per post and how many were explored, from landing JSON lines."""
    counts: Counter[int] = Counter()
    explored = 0
    for line in lines:
        if not line.strip():
            continue
        event = orjson.loads(line)
        if event.get("event_type") != "impression" or event.get("surface") != HOME_FEED:
            continue
        counts[int(event["post_id"])] += 1
        explored += bool(event.get("explored"))
    return counts, explored


def exposure_gini(counts: Counter[int], posts: Iterable[int]) -> float:
    """Gini of impressions over every post of the world (never shown: 0 impressions)."""
    universe = set(posts) | set(counts)
    return gini([counts.get(p, 0) for p in sorted(universe)])


def loop_rows(frame, loop_start: datetime):
    """The training rows the loop wrote: impressions at or after its start."""
    import pandas as pd

    shown = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame.loc[shown >= pd.Timestamp(loop_start)].reset_index(drop=True)


def landing_lines(store, keys: Iterable[str]) -> Iterable[bytes]:
    for key in keys:
        if "event_type=impression/" in key:
            yield from store.get(key).splitlines()


def retrain(
    settings,
    data_dir: Path,
    partitions: list[str],
    policy: Policy,
    epochs: int,
    round_index: int,
    world: tuple[int, int, int],
    loop_start: datetime,
) -> RoundResult:
    """Ingest the round's partitions, rebuild marts and features with the platform's jobs,
    retrain on the new training set by the policy, publish through the gate, serve it."""
    from bench.explored_training import newest_training_set, rank_correlation, true_probabilities
    from bench.trained_ranker import register_ranker
    from ml.ranking import MODEL_NAME
    from ml.ranking.dataset import labels
    from ml.ranking.evaluate import safe_auc
    from ml.ranking.explored_rows import explored_flags
    from ml.ranking.model import RankerParams
    from ml.registry import CHAMPION, TrainingLineage, set_alias
    from ml.tracking import tracking_uri
    from orchestration.runs import ingest_partition_range, run_job_outcome

    started = time.perf_counter()
    if not ingest_partition_range(partitions[0], partitions[-1], settings):
        raise SystemExit("ingesting the loop's events failed (see the Dagster run)")
    for job in ("build_analytics", "build_features"):
        outcome = run_job_outcome(job, settings)
        if not outcome.success:
            raise SystemExit(f"{job} failed: {outcome.skipped}")
    key, every = newest_training_set(data_dir)
    frame = loop_rows(every, loop_start)
    print(
        f"round {round_index}: rebuilt in {time.perf_counter() - started:.0f} s; {key}: "
        f"{len(every):,} rows, {len(frame):,} written by the loop",
        flush=True,
    )
    params = RankerParams(epochs=epochs, explored_rows=policy.explored_rows)
    registered = register_ranker(
        tracking_uri(settings),
        frame,
        data_dir / f"round-{round_index}",
        params,
        lineage=TrainingLineage("feed_ranker_v1", "", "bench rounds"),
        run_name=f"bench round {round_index} {policy.name}",
    )
    set_alias(tracking_uri(settings), MODEL_NAME, CHAMPION, registered.version)
    report = registered.report
    holdout = report.splits.holdout
    y = labels(holdout)
    truth = true_probabilities(holdout, *world)
    scores = {"ranker": report.holdout_scores["ranker"], "true p": truth}
    for name in ("logistic_regression", "recency"):
        if name in report.holdout_scores:
            scores[name] = report.holdout_scores[name]
    return RoundResult(
        round=round_index,
        served="",
        retrained=f"{MODEL_NAME}/{registered.version}",
        gate=registered.published.decision.reason,
        train_rows=len(report.splits.train),
        train_explored=int(explored_flags(report.splits.train).sum()),
        holdout_rows=len(holdout),
        holdout={
            name: (safe_auc(y, s), rank_correlation(np.asarray(s), truth))
            for name, s in scores.items()
        },
    )


def served_model(settings) -> str:
    from ml.ranking import MODEL_NAME
    from ml.registry import champion_version
    from ml.tracking import tracking_uri

    version = champion_version(tracking_uri(settings), MODEL_NAME)
    return f"{MODEL_NAME}/{version}" if version else f"{MODEL_NAME}@baseline"


def print_round(r: RoundResult) -> None:
    print(
        f"round {r.round}: served {r.served}: {r.impressions:,} home-feed impressions "
        f"({r.explored:,} explored), engaged/impression {r.engaged_per_impression:.4f}, "
        f"true expected/impression {r.expected_per_impression:.4f}, exposure Gini "
        f"{r.exposure_gini:.3f}",
        flush=True,
    )
    if r.retrained:
        print(
            f"  retrained {r.retrained} on {r.train_rows:,} rows ({r.train_explored:,} explored);"
            f" gate: {r.gate}",
            flush=True,
        )
        for name, (auc, rho) in (r.holdout or {}).items():
            print(
                f"    holdout ({r.holdout_rows:,} rows) {name}: AUC {auc:.4f}, Spearman with "
                f"the true p {rho:.4f}",
                flush=True,
            )


def main() -> None:
    from bench.closed_loop import embedded_environment
    from bench.serving_feed import platform, prepare
    from ml.ranking.model import RankerParams
    from objectstore import store_from_settings
    from workload.config import WorkloadConfig, default_start
    from workload.generator import generate
    from workload.loop import LoopConfig, run_loop, start_api
    from workload.truth_oracle import TruthOracle

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    world_arguments(parser)
    parser.add_argument("--policy", choices=POLICIES, required=True)
    parser.add_argument("--explore-share", type=float, default=0.2)
    parser.add_argument(
        "--explored-rows", choices=[m for m in MODES if m != "all"], default="inverse_share"
    )
    parser.add_argument("--rounds", type=int, default=3, help="retrains (rounds served: +1)")
    parser.add_argument("--sessions", type=int, default=300, help="home-feed sessions per round")
    parser.add_argument("--round-hours", type=float, default=36.0)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--feed-window-hours", type=int, default=24 * 30)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument(
        "--reuse-platform",
        action="store_true",
        help="the data dir holds this world's prepared platform (a run that stopped before its "
        "first round): skip preparing it again",
    )
    parser.add_argument("--api-ready-within", type=float, default=300.0, help="seconds")
    args = parser.parse_args()
    policy = Policy.of(args.policy, args.explore_share, args.explored_rows)
    data_dir = (args.data_dir or Path(tempfile.mkdtemp(prefix="closed-loop-rounds-"))).resolve()
    started = time.perf_counter()
    if args.reuse_platform:
        settings = platform(data_dir)
        if served_model(settings).endswith("@baseline") or not (data_dir / "ranker").is_dir():
            raise SystemExit(f"{data_dir} holds no prepared platform with a champion ranker")
    else:
        settings = prepare(
            data_dir,
            args.users,
            args.days,
            args.seed,
            RankerParams(epochs=args.epochs),
            serve_refused=False,
        )
    print(f"platform ready in {time.perf_counter() - started:.0f} s under {data_dir}", flush=True)
    embedded_environment(data_dir)
    os.environ["SERVING_FEED_EXPLORE_SHARE"] = str(policy.explore_share)
    os.environ["FEED_WINDOW_HOURS"] = str(args.feed_window_hours)
    workload = generate(WorkloadConfig(users=args.users, days=args.days, seed=args.seed))
    oracle = TruthOracle.of(workload)
    store = store_from_settings(settings)
    loop_start = default_start(args.days) + timedelta(days=args.days)
    base = LoopConfig(
        sessions=args.sessions,
        gap_seconds=args.round_hours * 3600.0 / args.sessions,
        explore_probability=0.0,
        stories_probability=0.0,
        suggestions_probability=0.0,
    )
    import httpx

    results: list[RoundResult] = []
    for r in range(args.rounds + 1):
        served = served_model(settings)
        token = secrets.token_urlsafe(16)
        process, url = start_api(token, args.api_ready_within)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
                config = replace(base, seed=100 + r, batch_id=f"rounds-{policy.name}-{r}")
                report = run_loop(
                    http,
                    oracle,
                    store,
                    settings.landing_prefix,
                    round_start(loop_start, r, args.round_hours),
                    config,
                )
        finally:
            process.terminate()
            process.wait(timeout=30)
        if report.http_errors:
            print(f"round {r}: HTTP errors {dict(report.http_errors)}", flush=True)
        counts, explored = home_feed_exposure(landing_lines(store, report.keys))
        feed = report.surfaces[HOME_FEED]
        result = RoundResult(
            round=r,
            served=served,
            impressions=feed.impressions,
            explored=explored,
            engaged_per_impression=feed.engagements / max(feed.impressions, 1),
            expected_per_impression=feed.expected_engagements / max(feed.impressions, 1),
            exposure_gini=exposure_gini(counts, oracle.created_s),
        )
        if not report.partitions:
            raise SystemExit(f"round {r}: the loop served nothing ({dict(report.http_errors)})")
        if r < args.rounds:
            retrained = retrain(
                settings,
                data_dir,
                sorted(report.partitions),
                policy,
                args.epochs,
                r,
                (args.users, args.days, args.seed),
                loop_start,
            )
            result = replace(
                retrained,
                **{
                    k: getattr(result, k)
                    for k in (
                        "served",
                        "impressions",
                        "explored",
                        "engaged_per_impression",
                        "expected_per_impression",
                        "exposure_gini",
                    )
                },
            )
        print_round(result)
        results.append(result)
    print(f"{policy}: done in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
