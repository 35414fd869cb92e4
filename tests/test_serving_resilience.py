"""The serving API when things break or change underneath it: Redis unreachable or killed
mid-traffic (real redis-server processes), the shared Redis as the feed store, and a new
champion registered in a real (temporary) MLflow registry while the service runs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from platform_support import BuiltPlatform, platform_settings

from appconfig import Settings
from fanout import open_feed_store
from fanout.precompute import load_snapshot as load_feed_snapshot
from fanout.precompute import write_feeds
from ml.ranking.model import RankerParams, build_model
from ml.ranking.preprocessing import Preprocessing, feature_columns
from ml.ranking.pyfunc import PIP_REQUIREMENTS, SCORER_ARTIFACT, RankerPyfunc
from ml.ranking.scorer import RankerScorer
from ml.registry import PyfuncModel, TrainingLineage, client, log_training_run, register
from serving.app import create_app
from serving.model_loading import mlflow_holder
from serving.settings import ServingSettings
from warehouse import clickhouse_client

TOKEN = "resilience-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def following_users(settings: Settings, count: int) -> list[int]:
    with clickhouse_client(settings.clickhouse_url) as ch:
        rows = ch.query(
            f"select follower_id from {settings.intermediate_database}.int_follow_graph"
            f" group by follower_id having count() >= 3 order by count() desc limit {count}"
        ).result_rows
    return [int(r[0]) for r in rows]


def precompute(settings: Settings, prefix: str = "feeds:") -> None:
    with clickhouse_client(settings.clickhouse_url) as ch:
        snapshot = load_feed_snapshot(ch, settings)
    with open_feed_store(settings, prefix=prefix) as store:
        write_feeds(store, snapshot)


@contextmanager
def redis_server(port: int, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A private redis-server of our own (never the shared one): we may kill it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def serving_settings(**values: object) -> ServingSettings:
    return ServingSettings(tokens=TOKEN, snapshot_refresh_seconds=0, **values)  # type: ignore[arg-type]


def test_feed_store_unreachable_answers_degraded(
    built_platform: BuiltPlatform, tmp_path: Path
) -> None:
    settings = platform_settings(
        built_platform.work,
        FEED_STORE_URL=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    users = following_users(settings, 5)
    app = create_app(settings, serving_settings(), background=False)
    with TestClient(app) as http:
        for user in users:
            response = http.get(f"/v1/users/{user}/feed", headers=AUTH)
            assert response.status_code == 200
            body = response.json()
            assert body["degraded"] is True
            assert "feed store unavailable" in body["reason"]
            assert body["items"], "the pull-only fallback still gives a feed"
            assert {i["source"] for i in body["items"]} <= {"pulled", "explore"}
        assert http.get("/readyz").json()["feed_store"].startswith("unavailable")


def test_redis_killed_during_requests(built_platform: BuiltPlatform, tmp_path: Path) -> None:
    port = free_port()
    settings = platform_settings(
        built_platform.work,
        FEED_STORE_URL=f"redis://127.0.0.1:{port}/0",
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    users = following_users(settings, 8)
    with redis_server(port, tmp_path) as redis_process:
        precompute(settings)
        app = create_app(settings, serving_settings(feed_store_retry_seconds=0.5), background=False)
        with TestClient(app) as http:
            before = [http.get(f"/v1/users/{u}/feed", headers=AUTH).json() for u in users[:4]]
            assert not any(b["degraded"] for b in before)
            assert any(i["source"] == "pushed" for b in before for i in b["items"])

            redis_process.kill()
            redis_process.wait(10)
            started = time.perf_counter()
            for user in users:  # cached and uncached users alike
                response = http.get(f"/v1/users/{user}/feed", headers=AUTH)
                assert response.status_code == 200, response.text
                assert response.json()["degraded"] is True
                assert response.json()["items"]
            assert time.perf_counter() - started < 10, "a dead Redis must fail fast"
            ready = http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["feed_store"].startswith("unavailable")

            with redis_server(port, tmp_path):  # Redis is back (empty): answers recover
                time.sleep(0.6)  # the circuit breaker's retry interval
                body = http.get(f"/v1/users/{users[0]}/feed", headers=AUTH).json()
                assert body["degraded"] is False


def test_feed_from_the_shared_redis(
    built_platform: BuiltPlatform, redis_url: str, tmp_path: Path
) -> None:
    prefix = f"serving-test-{uuid.uuid4().hex[:8]}:"
    settings = platform_settings(
        built_platform.work,
        FEED_STORE_URL=redis_url,
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    precompute(settings, prefix)
    try:
        app = create_app(settings, serving_settings(feed_store_prefix=prefix), background=False)
        with TestClient(app) as http:
            user = following_users(settings, 1)[0]
            body = http.get(f"/v1/users/{user}/feed", params={"limit": 50}, headers=AUTH).json()
            assert not body["degraded"]
            assert any(i["source"] == "pushed" for i in body["items"])
            assert http.get(f"/v1/users/{user}/feed", headers=AUTH).json()["cached"] is True
    finally:
        with open_feed_store(settings, prefix=prefix) as store:
            store.clear()  # type: ignore[attr-defined]


# --- model hot reload ------------------------------------------------------------------------


def example_rows(frame: pd.DataFrame, spec: Preprocessing) -> pd.DataFrame:
    """Five rows of the ranker's input columns, numeric as float64 and categoricals as text."""
    example = frame.reindex(columns=spec.feature_names).head(5).reset_index(drop=True)
    categorical = {c.name for c in spec.categorical}
    for name in example.columns:
        if name in categorical:
            example[name] = [v if isinstance(v, str) else "" for v in example[name].astype(object)]
        else:
            example[name] = pd.to_numeric(example[name], errors="coerce").astype("float64")
    return example


def register_ranker(
    uri: str, built: BuiltPlatform, work: Path, seed: int, *, broken: bool = False
) -> str:
    """Log and register a (tiny, untrained) Keras ranker; `broken` leaves out its scorer."""
    frame = built.training_set.frame
    spec = Preprocessing.fit(frame, feature_columns(frame))
    scorer = RankerScorer(spec, build_model(spec, RankerParams(hidden=(8,), seed=seed)))
    # MLflow names an artifact directory after its basename: the scorer must be in `scorer/`
    directory = work / f"ranker-{seed}" / ("broken" if broken else SCORER_ARTIFACT)
    scorer.save(directory)
    logged = log_training_run(
        uri,
        "feed-ranker",
        f"serving-test-{seed}",
        model=PyfuncModel(
            RankerPyfunc(scorer),
            {directory.name: str(directory)},
            example_rows(frame, spec),
            pip_requirements=PIP_REQUIREMENTS,
        ),
        params={"seed": seed},
        metrics={},
        training=TrainingLineage("feed_ranker_v1", "v1", "memory://test"),
        artifact_location=(work / "artifacts").as_uri(),
    )
    version = register(uri, "feed-ranker", logged)
    client(uri).set_registered_model_alias("feed-ranker", "champion", version)
    return version


def wait_for_version(http: TestClient, version: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    ready: dict = {}
    while time.monotonic() < deadline:
        ready = http.get("/readyz").json()
        if ready["model_version"] == version:
            return ready
        time.sleep(0.2)
    raise AssertionError(f"the service never switched to {version}: {ready}")


def test_new_champion_is_served_without_restart(
    built_platform: BuiltPlatform, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = platform_settings(
        built_platform.work,
        FEED_STORE_URL=f"sqlite:///{tmp_path / 'feeds.sqlite'}",
        MLFLOW_TRACKING_URI=uri,
    )
    user = following_users(settings, 1)[0]
    app = create_app(
        settings,
        serving_settings(model_reload_seconds=0.3),
        models=mlflow_holder(uri, "feed-ranker", "champion"),
    )
    with TestClient(app) as http:
        body = http.get(f"/v1/users/{user}/feed", headers=AUTH).json()
        assert body["model_version"] == "fallback/recency-popularity"  # nothing registered yet

        first = register_ranker(uri, built_platform, tmp_path, seed=1)
        wait_for_version(http, f"feed-ranker/{first}")
        body = http.get(f"/v1/users/{user}/feed", headers=AUTH).json()
        assert body["model_version"] == f"feed-ranker/{first}" and not body["cached"]

        second = register_ranker(uri, built_platform, tmp_path, seed=2)
        wait_for_version(http, f"feed-ranker/{second}")
        body = http.get(f"/v1/users/{user}/feed", params={"explain": "true"}, headers=AUTH).json()
        assert body["model_version"] == f"feed-ranker/{second}"
        assert all(item["contributions"] for item in body["items"])

        # a champion whose artifacts cannot load: the last good model stays
        register_ranker(uri, built_platform, tmp_path, seed=3, broken=True)
        deadline = time.monotonic() + 60
        ready = http.get("/readyz").json()
        while time.monotonic() < deadline and not ready["model_reload_error"]:
            time.sleep(0.2)
            ready = http.get("/readyz").json()
        assert ready["model_reload_error"], "the failed load must be reported"
        assert ready["model_version"] == f"feed-ranker/{second}"
        response = http.get(f"/v1/users/{user}/feed", headers=AUTH)
        assert response.status_code == 200
        assert response.json()["model_version"] == f"feed-ranker/{second}"
