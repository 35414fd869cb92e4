"""The closed loop against one API worker: simulated sessions per second, with an experiment
routing half the users to a challenger and, as the same-run baseline, with it stopped.

Builds (or reuses, `--data-dir`) the platform `bench.serving_feed` builds (marts, Feast, feeds,
a ranker trained on the marts' training set and published through the promotion gate), trains
and publishes a second one with another seed (`@challenger`), writes an experiment config
(control: the first ranker if the gate made it champion, else the baseline that then serves;
treatment: the challenger; 50/50, pinned to versions) and starts
`python -m serving` (one uvicorn worker, access log off). Then `workload.loop` runs
`--sessions` sessions over HTTP (keep-alive httpx client, one at a time), stops the experiment
through `POST /admin/experiments/{name}/stop` and runs as many again on the champion alone, then
once more with the loop's other surfaces (Explore, stories, who to follow) off.

`--kind interleaving` merges champion and challenger in every feed instead.

    uv run python -m bench.closed_loop [--users 300 --days 2 --sessions 1000] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import orjson

from appconfig import Settings
from ml.ranking import BASELINE_ALIAS
from workload.loop import LoopConfig, run_loop, start_api

if TYPE_CHECKING:
    from ml.ranking.model import RankerParams

EXPERIMENT = "bench-challenger"
CHALLENGER = "challenger"
ARMS_FILE = "closed-loop-arms.json"  # written last: the platform under `--data-dir` is ready


def prepare(
    data_dir: Path,
    users: int,
    days: int,
    seed: int,
    params: RankerParams | None = None,
    challenger_seed: int = 8,
) -> dict[str, str]:
    """The platform of `bench.serving_feed` (its trained ranker published through the gate), a
    second ranker trained on the same set with another seed (`@challenger`, also through the
    gate), and the experiment's arms pinned to versions: control is what served before the
    challenger existed (the first ranker if the gate made it champion, else the baseline the
    platform falls back to), treatment the challenger."""
    from bench.serving_feed import prepare
    from bench.trained_ranker import register_ranker
    from featurestore.config import close_offline_client, feature_store
    from featurestore.materialize import data_watermark
    from featurestore.training import build_training_set
    from ml.ranking import MODEL_NAME
    from ml.ranking.model import RankerParams
    from ml.registry import TrainingLineage, champion_version, set_alias
    from ml.tracking import tracking_uri
    from objectstore import store_from_settings
    from orchestration.models.ranker import ground_truth_impressions

    marker = data_dir / ARMS_FILE
    if marker.exists():
        return orjson.loads(marker.read_bytes())
    params = params or RankerParams()
    settings = prepare(data_dir, users, days, seed, params, serve_refused=False)
    uri = tracking_uri(settings)
    first = champion_version(uri, MODEL_NAME)
    store = feature_store(settings)
    try:
        watermark = data_watermark(store, settings)
        training = build_training_set(store, settings, as_of=watermark)
    finally:
        close_offline_client()
    challenger = register_ranker(
        uri,
        training.frame,
        data_dir / "challenger",
        replace(params, seed=challenger_seed),
        truth_impressions=ground_truth_impressions(store_from_settings(settings)),
        lineage=TrainingLineage(training.service, training.version, "bench"),
        run_name="bench challenger",
    )
    set_alias(uri, MODEL_NAME, CHALLENGER, challenger.version)
    arms = {
        "control": f"{MODEL_NAME}/{first}" if first else f"{MODEL_NAME}@{BASELINE_ALIAS}",
        "treatment": f"{MODEL_NAME}/{challenger.version}",
    }
    marker.write_bytes(orjson.dumps(arms))
    return arms


def write_experiment(folder: Path, arms: dict[str, str], kind: str = "ab") -> None:
    """50/50 A/B of the `control` and `treatment` models, or (`kind="interleaving"`) both
    merged by team draft in every feed."""
    folder.mkdir(parents=True, exist_ok=True)
    config: dict = {
        "name": EXPERIMENT,
        "salt": "bench-challenger-1",
        "surface": "home_feed",
        "start": "2020-01-01T00:00:00Z",
        "end": "2100-01-01T00:00:00Z",
        "arms": [
            {"name": "control", "model": arms["control"], "traffic": [0.0, 0.5]},
            {"name": "treatment", "model": arms["treatment"], "traffic": [0.5, 1.0]},
        ],
    }
    if kind == "interleaving":
        config["kind"] = kind
        config["arms"] = [{k: a[k] for k in ("name", "model")} for a in config["arms"]]
    (folder / f"{EXPERIMENT}.json").write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))


def world_arguments(parser: argparse.ArgumentParser) -> None:
    """The loop's world: its generator's size and seed. The benches that read a loop's data dir
    after it (`explored_training`, `versions_vs_truth`) take the same, to rebuild its truth."""
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)


def embedded_environment(data_dir: Path) -> str:
    """This process's environment (which the API process and the Dagster jobs it runs inherit)
    pointed at the embedded platform under `data_dir`, whatever the shell said; the serving
    admin token it sets is returned."""
    for name in (
        "REDIS_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "FEED_STORE_URL",
        "CLICKHOUSE_URL",
        "MLFLOW_TRACKING_URI",
        "OBJECT_STORE_URL",
        "EXPERIMENTS_DIR",
        "CASSANDRA_HOSTS",
    ):
        os.environ.pop(name, None)
    os.environ.update(PLATFORM_PROFILE="embedded", PLATFORM_DATA_DIR=str(data_dir))
    admin = secrets.token_urlsafe(16)
    os.environ["SERVING_ADMIN_TOKENS"] = admin
    os.environ["SERVING_FOLLOW_CHANGES"] = "false"
    return admin


def main() -> None:
    from objectstore import store_from_settings
    from workload.config import WorkloadConfig, default_start
    from workload.generator import generate
    from workload.truth_oracle import TruthOracle

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    world_arguments(parser)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--kind", choices=("ab", "interleaving"), default="ab")
    parser.add_argument(
        "--epochs", type=int, default=60, help="the rankers' epoch bound (early stopping decides)"
    )
    parser.add_argument("--challenger-seed", type=int, default=8)
    parser.add_argument(
        "--gap-seconds",
        type=float,
        default=LoopConfig.gap_seconds,
        help="mean simulated seconds between sessions (over 24 h in all lets labels finalise)",
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="then ingest the loop's events and run marts, features, models and feeds (Dagster)",
    )
    args = parser.parse_args()
    data_dir = (args.data_dir or Path(tempfile.mkdtemp(prefix="closed-loop-"))).resolve()
    started = time.perf_counter()
    from ml.ranking.model import RankerParams

    arms = prepare(
        data_dir,
        args.users,
        args.days,
        args.seed,
        RankerParams(epochs=args.epochs),
        args.challenger_seed,
    )
    print(f"platform ready in {time.perf_counter() - started:.0f} s under {data_dir}: {arms}")
    write_experiment(data_dir / "experiments", arms, args.kind)

    admin = embedded_environment(data_dir)
    from bench.serving_feed import platform

    settings = platform(data_dir)
    workload = generate(WorkloadConfig(users=args.users, days=args.days, seed=args.seed))
    oracle = TruthOracle.of(workload)
    start = default_start(args.days) + timedelta(days=args.days)
    token = secrets.token_urlsafe(16)
    process, base = start_api(token)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
            store = store_from_settings(settings)
            runs = {}
            for label, seed in (
                ("experiment on", 1),
                ("experiment stopped", 2),
                ("experiment stopped, home feed only", 3),
            ):
                if label == "experiment stopped":
                    stopped = http.post(
                        f"/admin/experiments/{EXPERIMENT}/stop",
                        headers={"Authorization": f"Bearer {admin}"},
                    )
                    stopped.raise_for_status()
                config = LoopConfig(
                    sessions=args.sessions,
                    seed=seed,
                    batch_id=f"bench-{seed}",
                    gap_seconds=args.gap_seconds,
                )
                if label.endswith("home feed only"):  # the loop before it opened other surfaces
                    config = replace(
                        config,
                        explore_probability=0.0,
                        stories_probability=0.0,
                        suggestions_probability=0.0,
                    )
                runs[label] = report = run_loop(
                    http, oracle, store, settings.landing_prefix, start, config
                )
                print(
                    f"{label}: {report.sessions} sessions in {report.seconds:.1f} s = "
                    f"{report.sessions_per_second:.1f} sessions/s, {report.impressions} "
                    f"impressions, HTTP errors {dict(report.http_errors)}"
                )
                for (experiment, arm), t in sorted(report.arms.items(), key=str):
                    print(
                        f"  {experiment or '-'}/{arm or '-'}: {t.sessions} sessions, "
                        f"engagement/impression {t.engagements / max(t.impressions, 1):.4f} "
                        f"(true expected {t.expected_engagements / max(t.impressions, 1):.4f})"
                    )
                for surface, t in report.surfaces.items():
                    truth = (  # story views follow the served order, with no truth model
                        "views in tray order"
                        if surface == "stories"
                        else f"sum of true p {t.expected_engagements:.1f}"
                    )
                    print(
                        f"  {surface}: opened in {t.sessions} sessions, {t.impressions} shown, "
                        f"{t.engagements} engaged ({truth})"
                    )
    finally:
        process.terminate()
        process.wait(timeout=30)
    if args.retrain:
        partitions = sorted(set().union(*(r.partitions for r in runs.values())))
        retrain(settings, partitions, start)
        from bench.versions_vs_truth import versions_vs_truth

        print("every version on the retrained holdout, against the labels and the truth:")
        versions_vs_truth(data_dir, args.users, args.days, args.seed)


def retrain(settings: Settings, partitions: list[str], loop_start: datetime) -> None:
    """The platform's own jobs on what the loop produced: ingest its partitions, then marts,
    features, models (with the promotion gate) and feeds; how much of the next training set
    the loop wrote."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from ml.tracking import tracking_uri
    from orchestration.runs import build_everything, ingest_partition_range
    from warehouse import clickhouse_client

    started = time.perf_counter()
    if not ingest_partition_range(partitions[0], partitions[-1], settings):
        raise SystemExit("ingesting the loop's events failed (see the Dagster run)")
    print(f"ingested {len(partitions)} loop partitions in {time.perf_counter() - started:.0f} s")
    for outcome in build_everything(settings):
        print(
            f"{outcome.name}: {'ok' if outcome.success else 'FAILED'}, {len(outcome.built)} built"
        )
        for asset, reason in outcome.skipped.items():
            print(f"  skipped {asset}: {reason}")
    with clickhouse_client(settings.clickhouse_url) as client:
        rows = client.query(
            f"select countIf(impressed_at >= %(t)s), countIf(impressed_at >= %(t)s"
            f" and label_window_ends_at <= (select max(impressed_at) from"
            f" {settings.marts_database}.fct_training_impressions)), count()"
            f" from {settings.marts_database}.fct_training_impressions",
            parameters={"t": loop_start.replace(tzinfo=None)},
        ).result_rows[0]
    print(
        f"fct_training_impressions: {rows[2]:,} rows, {rows[0]:,} written by the loop, of which "
        f"{rows[1]:,} have a final label"
    )
    registry = MlflowClient(tracking_uri(settings))
    try:
        champion = registry.get_model_version_by_alias("feed-ranker", "champion").version
        print(f"feed-ranker@champion is v{champion}")
    except MlflowException:  # the gate demoted it and nothing beat the baseline
        print("feed-ranker has no champion: the logistic regression baseline serves")
    for version in sorted(
        registry.search_model_versions("name='feed-ranker'"), key=lambda v: int(v.version)
    ):
        tags = dict(version.tags or {})
        print(
            f"feed-ranker v{version.version}: promoted {tags.get('promotion.promoted', '-')} "
            f"{tags.get('promotion.reason', '')}"
        )
        metrics = registry.get_run(version.run_id).data.metrics if version.run_id else {}
        aucs = {k: round(v, 4) for k, v in sorted(metrics.items()) if k.endswith("_auc")}
        if aucs:
            print(f"  holdout AUC: {aucs}")
    print(f"retrained in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
