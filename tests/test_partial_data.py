"""Real data as it comes, end to end: a follow graph alone (hex account keys, blocks, mutes)
and posts without impressions, through import -> ingest (Dagster) -> dbt -> build_features ->
train_models (Dagster jobs) -> the API over HTTP.

Stages with nothing to learn from record a skipped materialization with the reason; who to
follow trains on follows alone and must beat popularity on edges held out of the file; no
suggestion is the user, someone they follow, muted or blocked.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from analytics_support import run_dbt
from fastapi.testclient import TestClient
from graph_support import SocialGraph, hex_key, social_graph
from typer.testing import CliRunner

from appconfig import Settings, get_settings
from importers.__main__ import app as importers_app
from importers.landing import write_landing
from objectstore import open_store
from orchestration.features.assets import TRAINING_SET
from orchestration.models.ranker import FEED_RANKER
from orchestration.models.recommenders import EXPLORE_KEY, WHO_TO_FOLLOW_KEY
from orchestration.runs import ingest_partition_range, run_job
from orchestration.skipping import SKIPPED
from serving.app import create_app
from serving.recommenders import WHO_TO_FOLLOW_BASELINE
from serving.settings import ServingSettings

RECEIVED_AT = datetime(2026, 11, 24, 5, 30, tzinfo=UTC)
PARTITION = "2026-11-24-05:00"
TOKEN = "partial-data-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
K = 10


@pytest.fixture
def platform_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The embedded profile rooted in this test's directory (Dagster home, MLflow, chDB)."""
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "REDIS_URL",
        "METADATA_DB_URL",
        "MLFLOW_TRACKING_URI",
        "FEAST_REGISTRY_URL",
        "FEED_STORE_URL",
        "S3_ENDPOINT_URL",
        "FEED_PULL_MIN_FOLLOWERS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLATFORM_PROFILE", "embedded")
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLICKHOUSE_URL", f"chdb://{tmp_path / 'clickhouse'}")
    monkeypatch.setenv("CLICKHOUSE_RAW_DATABASE", "raw")
    monkeypatch.setenv("ANALYTICS_SCHEMA", "analytics")
    monkeypatch.setenv("OBJECT_STORE_URL", f"file://{tmp_path / 'objects'}")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _build(settings: Settings, work: Path) -> dict[dg.AssetKey, dict]:
    """ingest (Dagster) -> dbt run -> build_features -> train_models; the newest metadata of
    each asset of interest."""
    assert ingest_partition_range(PARTITION, PARTITION)
    done = run_dbt(work, work / "clickhouse", "run")
    assert done.returncode == 0, done.output[-4000:]
    assert run_job("build_features")
    assert run_job("train_models")
    out = {}
    with dg.DagsterInstance.get() as instance:
        for key in (TRAINING_SET, FEED_RANKER, EXPLORE_KEY, WHO_TO_FOLLOW_KEY):
            (record,) = instance.fetch_materializations(key, limit=1).records
            materialization = record.asset_materialization
            assert materialization is not None
            out[key] = {k: v.value for k, v in materialization.metadata.items()}
    return out


def _client(settings: Settings) -> TestClient:
    return TestClient(
        create_app(settings, ServingSettings(tokens=TOKEN), background=False),
        raise_server_exceptions=True,
    )


def _write_graph(graph: SocialGraph, work: Path) -> tuple[Path, Path]:
    """Follows and blocks in one file with a relation column; mutes in another. Accounts are
    hex keys, as in real exports."""
    relations = work / "graph.csv"
    with relations.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "target", "relation"])
        writer.writerows((hex_key(a), hex_key(b), "follow") for a, b in graph.follows)
        writer.writerows((hex_key(a), hex_key(b), "block") for a, b in graph.blocks)
        writer.writerow([hex_key(1), hex_key(1), "follow"])  # a self-follow: a reject
        writer.writerow([hex_key(*graph.follows[0][:1]), hex_key(graph.follows[0][1]), "follow"])
    mutes = work / "mutes.tsv"
    mutes.write_text("".join(f"{hex_key(a)}\t{hex_key(b)}\n" for a, b in graph.mutes))
    return relations, mutes


def test_a_follow_graph_alone_gets_who_to_follow_served(
    platform_env: Settings, tmp_path: Path
) -> None:
    settings = platform_env
    graph = social_graph(users=700, seed=23)
    relations, mutes = _write_graph(graph, tmp_path)
    runner = CliRunner()
    common = ["--received-at", RECEIVED_AT.isoformat()]
    imported = runner.invoke(importers_app, ["edges", str(relations), *common, "--batch-id", "g"])
    assert imported.exit_code == 0, imported.output
    muted = runner.invoke(
        importers_app, ["edges", str(mutes), "--kind", "mutes", *common, "--batch-id", "m"]
    )
    assert muted.exit_code == 0, muted.output

    store = open_store(settings.object_store_url)
    rejects = [line for line in store.get("imports/edges-graph/g/rejects.jsonl").splitlines()]
    assert len(rejects) == 2 and b"self-follow" in rejects[0] and b"duplicate" in rejects[1]
    user_of: dict[str, int] = {}
    for name in ("imports/edges-graph/g/node_ids.csv", "imports/edges-mutes/m/node_ids.csv"):
        for row in csv.DictReader(io.StringIO(store.get(name).decode())):
            assert user_of.setdefault(row["key"], int(row["user_id"])) == int(row["user_id"])
    uid = {node: user_of[hex_key(node)] for node in range(700) if hex_key(node) in user_of}

    built = _build(settings, tmp_path)
    assert "no impressions" in built[TRAINING_SET][SKIPPED]
    assert "training_set was skipped" in built[FEED_RANKER][SKIPPED]
    assert "no posts" in built[EXPLORE_KEY][SKIPPED]
    wtf = built[WHO_TO_FOLLOW_KEY]
    assert SKIPPED not in wtf and wtf["promoted"] is True, wtf
    assert wtf["ndcg_at_20"] > wtf["popularity_ndcg_at_20"], wtf

    # what the API may never suggest, from the files (not from the platform)
    following: dict[int, set[int]] = {}
    for a, b in graph.follows:
        following.setdefault(uid[a], set()).add(uid[b])
    muted_by: dict[int, set[int]] = {}
    for a, b in graph.mutes:
        muted_by.setdefault(uid[a], set()).add(uid[b])
    blocked: dict[int, set[int]] = {}
    for a, b in graph.blocks:
        blocked.setdefault(uid[a], set()).add(uid[b])
        blocked.setdefault(uid[b], set()).add(uid[a])
    followers = graph.followers()
    popular = [uid[n] for n in sorted(followers, key=lambda n: (-followers[n], n))]

    model_recall, popularity_recall = [], []
    suggested_muted = 0
    with _client(settings) as client:
        users = sorted(u for u in graph.held_out if u in uid)
        assert len(users) > 50
        for node in users:
            user = uid[node]
            response = client.get(f"/v1/users/{user}/suggestions?limit={K}", headers=AUTH)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["model_version"] != WHO_TO_FOLLOW_BASELINE, "the gate kept popularity"
            items = [item["user_id"] for item in body["items"]]
            assert len(items) == K
            forbidden = following.get(user, set()) | blocked.get(user, set()) | {user}
            assert not set(items) & (forbidden | muted_by.get(user, set())), (user, items)
            suggested_muted += len(set(items) & muted_by.get(user, set()))
            allowed = [c for c in popular if c not in forbidden | muted_by.get(user, set())]
            relevant = {uid[n] for n in graph.held_out[node] if n in uid}
            if not relevant:
                continue
            model_recall.append(len(set(items) & relevant) / len(relevant))
            popularity_recall.append(len(set(allowed[:K]) & relevant) / len(relevant))
        # the muted accounts were plausible suggestions: ask for those users too
        for node, target in graph.mutes:
            body = client.get(f"/v1/users/{uid[node]}/suggestions?limit=50", headers=AUTH).json()
            assert uid[target] not in {item["user_id"] for item in body["items"]}
    assert suggested_muted == 0
    ours, theirs = float(np.mean(model_recall)), float(np.mean(popularity_recall))
    print(f"held-out Recall@{K} over HTTP: model {ours:.4f}, popularity {theirs:.4f}")
    assert ours > theirs * 1.2, (ours, theirs)


def test_posts_without_impressions_skip_the_ranker_and_still_serve_feeds(
    platform_env: Settings, tmp_path: Path
) -> None:
    from workload.config import WorkloadConfig
    from workload.generator import generate

    settings = platform_env
    workload = generate(
        WorkloadConfig(
            users=150, days=1, seed=5, bad_fraction=0.0, start=RECEIVED_AT - timedelta(days=2)
        )
    )
    kept = [r for r in workload.records if r.event_type != "impression"]
    assert len(kept) < len(workload.records)
    kept = [r._replace(produced_at=RECEIVED_AT) for r in kept]  # one partition
    store = open_store(settings.object_store_url)
    write_landing(store, settings.landing_prefix, kept, "no-impressions")

    built = _build(settings, tmp_path)
    assert "no impressions" in built[TRAINING_SET][SKIPPED]
    assert "training_set was skipped" in built[FEED_RANKER][SKIPPED]
    assert SKIPPED not in built[WHO_TO_FOLLOW_KEY]
    assert run_job("build_feeds")
    with _client(settings) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        state = client.app.state.serving  # type: ignore[attr-defined]
        snapshot = state.snapshot
        served = 0
        for user in [int(u) for u in snapshot.users.index][:40]:
            body = client.get(f"/v1/users/{user}/feed?limit=20", headers=AUTH)
            assert body.status_code == 200, body.text
            items = body.json()["items"]
            follows = snapshot.follows(user)
            assert all(
                item["author_id"] in follows for item in items if item["source"] != "explore"
            )
            served += len(items)
            explore = client.get(f"/v1/users/{user}/explore?limit=10", headers=AUTH)
            assert explore.status_code == 200, explore.text
        assert served > 0
