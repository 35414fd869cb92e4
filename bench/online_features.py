"""Online feature reads: our bulk reader beside Feast's SDK and `feast serve`, same store, same run.

Shapes: 1 user x 50 features; 1,000 posts x 20 features; and the whole `feed_ranker_v1` request
(1 user + 1,000 candidate posts with their authors and viewer x author pairs, on-demand views
included). Paths:

- ours: `featurestore.online.OnlineFeatureReader` (one SQLite query / one Redis MGET of the
  per-entity vectors the platform's online stores write beside Feast's rows, numpy decode);
- Feast SDK: `FeatureStore.get_online_features(...).to_dict()` in process;
- feast serve: `POST /get-online-features` to `feast serve` on loopback (JSON both ways).

Also materialization rows/s into a fresh store, for Feast's stock online store and ours (which
writes the vectors too). The marts come from a generated workload (`--users`, `--days`) loaded
and built with `dbt run` in a temp directory, or from `--data-dir` (a PLATFORM_DATA_DIR whose
marts are built). Redis is measured when `--redis-url` (or REDIS_URL) is given.

    uv run python -m bench.online_features [--users 1000 --days 3] [--redis-url redis://...]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import requests
from feast import FeatureStore

from appconfig import Settings, get_settings
from featurestore.config import close_offline_client, feature_store, render_config, write_repo
from featurestore.materialize import data_watermark, materialize_online
from featurestore.online import OnlineFeatureReader
from featurestore.registry import apply_definitions
from warehouse import clickhouse_client

POST_FEATURES = [
    *(
        f"post_attributes:{f}"
        for f in (
            "media_type",
            "media_count",
            "first_media_width",
            "first_media_height",
            "aspect_ratio",
            "first_media_pixels",
            "has_video",
            "total_duration_ms",
            "hashtag_count",
            "caption_length",
        )
    ),
    *(
        f"post_engagement:{f}"
        for f in (
            "likes_1h",
            "engagements_1h",
            "impressions_1h",
            "likes_24h",
            "engagements_24h",
            "impressions_24h",
            "likes_total",
            "engagements_total",
            "impressions_total",
            "engagements_per_impression_24h",
        )
    ),
]
USER_VIEWS = ("user_activity", "user_content_preferences", "user_profile", "user_follows")


def build_marts(data_dir: Path, users: int, days: int, seed: int) -> Settings:
    """Generate a workload, load it into embedded ClickHouse and `dbt run` the models."""
    from ingestion.landing_source import landing_batches
    from ingestion.loader import load_records
    from objectstore import store_from_settings
    from orchestration.analytics.dbt_env import PROJECT_DIR, dbt_env, dbt_executable
    from warehouse import ensure_raw_tables
    from workload.config import WorkloadConfig
    from workload.generator import generate
    from workload.writer import write_workload

    settings = Settings(PLATFORM_DATA_DIR=data_dir, CLICKHOUSE_URL="", REDIS_URL=None)
    started = time.perf_counter()
    workload = generate(WorkloadConfig(users=users, days=days, seed=seed))
    store = store_from_settings(settings)
    partitions = sorted(write_workload(store, settings.landing_prefix, workload).partitions)
    with clickhouse_client(settings.clickhouse_url) as client:
        ensure_raw_tables(client, settings.clickhouse_raw_database)
        for _, records in landing_batches(store, settings.landing_prefix, partitions):
            load_records(client, settings.clickhouse_raw_database, records)
    work = data_dir / "dbt"
    done = subprocess.run(
        [
            dbt_executable(),
            "run",
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
        ],
        env={**os.environ, **dbt_env(settings), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"dbt run failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    print(f"marts: {len(workload.records):,} events built in {time.perf_counter() - started:.0f} s")
    return settings


def percentiles(fn: Callable[[], Any], iterations: int, warmup: int = 3) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    p50, p99 = np.percentile(times, [50, 99]) * 1000
    return float(p50), float(p99)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FeastServer:
    """`feast serve` on loopback, on the same repo (registry and online store)."""

    def __init__(self, repo: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        feast = Path(sys.executable).with_name("feast")
        self.process = subprocess.Popen(
            [str(feast), "-c", str(repo), "serve", "-p", str(self.port), "--no-access-log"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"feast serve exited: {self.process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                if self.session.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.5)
        raise RuntimeError("feast serve did not start in 120 s")

    def get(self, features: list[str], entities: dict[str, list[Any]]) -> dict:
        body = orjson.dumps(
            {"features": features, "entities": entities, "full_feature_names": True},
            option=orjson.OPT_PASSTHROUGH_DATETIME,
            default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
        )
        response = self.session.post(
            f"{self.url}/get-online-features",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        response.raise_for_status()
        return orjson.loads(response.content)

    def close(self) -> None:
        self.session.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def materialization_rate(settings: Settings, stock: bool) -> tuple[int, float]:
    """Rows and seconds to materialize every view into a fresh store (Feast's stock online store
    type, or the platform's, which also writes vectors)."""
    project = f"bench_{uuid.uuid4().hex[:8]}"
    store = feature_store(settings, project=project)
    if stock:
        from feast.repo_config import RepoConfig

        config, _ = render_config(settings, project)
        online = config["online_store"]
        if "Redis" in online["type"]:
            online["type"] = "redis"
        else:
            online.update(type="sqlite", path=str(Path(online["path"]).with_name("stock.db")))
        store = FeatureStore(config=RepoConfig(repo_path=store.repo_path, **config))
    apply_definitions(store, settings)
    end = data_watermark(store, settings)
    assert end is not None
    result = materialize_online(store, end)
    if "redis" in store.config.online_store.type.lower():
        store.teardown()
    return result.total_rows, result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--data-dir", type=Path, help="reuse built marts (a PLATFORM_DATA_DIR)")
    parser.add_argument("--redis-url", default=get_settings().redis_url)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--no-serve", action="store_true", help="skip `feast serve`")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.data_dir:
            base = Settings(PLATFORM_DATA_DIR=args.data_dir, CLICKHOUSE_URL="", REDIS_URL=None)
        else:
            base = build_marts(Path(tmp) / "data", args.users, args.days, args.seed)
        with clickhouse_client(base.clickhouse_url) as client:
            candidates = client.query_df(
                f"select post_id, author_id from {base.marts_database}.dim_posts"
            )
            users = [
                int(u)
                for (u,) in client.query(
                    f"select user_id from {base.marts_database}.dim_users"
                ).result_rows
            ]
        stores = [("sqlite", None)] + ([("redis", args.redis_url)] if args.redis_url else [])
        rows: list[tuple[str, ...]] = []
        for kind, redis_url in stores:
            settings = Settings(
                PLATFORM_DATA_DIR=Path(tmp) / f"feast_{kind}",
                CLICKHOUSE_URL=base.clickhouse_url,
                REDIS_URL=redis_url,
            )
            for stock in (True, False):
                n, seconds = materialization_rate(settings, stock)
                label = "Feast stock store" if stock else "platform store (+ vectors)"
                print(
                    f"[{kind}] materialize, {label}: {n:,} rows in {seconds:.2f} s = {n / seconds:,.0f} rows/s"
                )
                rows.append(
                    (
                        kind,
                        f"materialize ({label})",
                        f"{n:,} rows",
                        f"{n / seconds:,.0f} rows/s",
                        "",
                    )
                )
            project = f"bench_{uuid.uuid4().hex[:8]}"
            store = feature_store(settings, project=project)
            apply_definitions(store, settings)
            end = data_watermark(store, settings)
            assert end is not None
            materialize_online(store, end, count_rows=False)
            close_offline_client()
            rows += measure(kind, store, settings, candidates, users, end, args)
            if redis_url:
                store.teardown()
        print()
        print("| store | shape | path | p50 (ms) | p99 (ms) |")
        print("| --- | --- | --- | --- | --- |")
        for row in rows:
            if row[1].startswith("materialize"):
                print(f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} | |")
            else:
                print(f"| {' | '.join(row)} |")


def measure(
    kind: str,
    store: FeatureStore,
    settings: Settings,
    candidates: Any,
    users: list[int],
    end: datetime,
    args: argparse.Namespace,
) -> list[tuple[str, ...]]:
    rng = random.Random(1)
    n = args.iterations
    user_refs = [f"{v}:{f.name}" for v in USER_VIEWS for f in store.get_feature_view(v).features][
        :50
    ]
    samples = [candidates.sample(1000, random_state=i) for i in range(8)]
    post_sets = [list(map(int, s["post_id"])) for s in samples]
    author_sets = [list(map(int, s["author_id"])) for s in samples]
    service = store.get_feature_service("feed_ranker_v1")

    user_reader = OnlineFeatureReader(store, user_refs)
    post_reader = OnlineFeatureReader(store, POST_FEATURES)
    feed_reader = OnlineFeatureReader(store, "feed_ranker_v1")
    counter = iter(range(10**9))

    def pick() -> int:
        return next(counter) % len(post_sets)

    shapes: dict[str, dict[str, Callable[[], Any]]] = {
        "1 user x 50 features": {
            "ours": lambda: user_reader.read(user_id=rng.choice(users), request_at=end),
            "Feast SDK": lambda: store.get_online_features(
                features=user_refs,
                entity_rows=[{"user_id": rng.choice(users)}],
                full_feature_names=True,
            ).to_dict(),
        },
        "1,000 posts x 20 features": {
            "ours": lambda: post_reader.read(post_ids=post_sets[pick()], request_at=end),
            "Feast SDK": lambda: store.get_online_features(
                features=POST_FEATURES,
                entity_rows=[{"post_id": p} for p in post_sets[pick()]],
                full_feature_names=True,
            ).to_dict(),
        },
    }

    def feed_ours() -> Any:
        i = pick()
        return feed_reader.read(
            user_id=rng.choice(users),
            post_ids=post_sets[i],
            author_ids=author_sets[i],
            request_at=end,
        )

    def feed_sdk() -> Any:
        i = pick()
        user = rng.choice(users)
        return store.get_online_features(
            features=service,
            entity_rows=[
                {"user_id": user, "post_id": p, "author_id": a, "request_at": end}
                for p, a in zip(post_sets[i], author_sets[i], strict=True)
            ],
            full_feature_names=True,
        ).to_dict()

    shapes["feed_ranker_v1: 1 user + 1,000 candidates"] = {"ours": feed_ours, "Feast SDK": feed_sdk}

    server = None
    if not args.no_serve:
        env = {**os.environ, "PLATFORM_DATA_DIR": str(settings.data_dir)}
        env.pop("REDIS_URL", None)
        server = FeastServer(write_repo(settings, store.project), env)
        shapes["1 user x 50 features"]["feast serve"] = lambda: server.get(
            user_refs, {"user_id": [rng.choice(users)]}
        )
        shapes["1,000 posts x 20 features"]["feast serve"] = lambda: server.get(
            POST_FEATURES, {"post_id": post_sets[pick()]}
        )
    results: list[tuple[str, ...]] = []
    try:
        for shape, paths in shapes.items():
            figures = {}
            for path, fn in paths.items():
                iterations = n if "user x" in shape or path == "ours" else max(20, n // 3)
                p50, p99 = percentiles(fn, iterations)
                figures[path] = (p50, p99)
                print(f"[{kind}] {shape:45s} {path:12s} p50 {p50:8.2f} ms  p99 {p99:8.2f} ms")
                results.append((kind, shape, path, f"{p50:.2f}", f"{p99:.2f}"))
            ours = figures["ours"][1]
            for path, (_, p99) in figures.items():
                if path != "ours":
                    print(f"[{kind}] {shape}: p99 {path} / ours = {p99 / ours:.1f}x")
        check_agreement(store, post_reader, post_sets[0], end)
    finally:
        if server:
            server.close()
        for reader in (user_reader, post_reader, feed_reader):
            reader.close()
    return results


def check_agreement(
    store: FeatureStore, reader: OnlineFeatureReader, posts: list[int], end: datetime
) -> None:
    """The paths return the same values (a benchmark of wrong answers is worthless)."""
    ours = reader.read(post_ids=posts, request_at=end).candidates
    sdk = store.get_online_features(
        features=POST_FEATURES, entity_rows=[{"post_id": p} for p in posts], full_feature_names=True
    ).to_dict()
    for column in ours.columns:
        if column == "post_id":
            continue
        mine = [None if pd.isna(v) else v for v in ours[column].astype(object)]
        theirs = [None if pd.isna(v) else v for v in sdk[column]]
        assert mine == theirs, f"{column} differs between our reader and the Feast SDK"


if __name__ == "__main__":
    main()
