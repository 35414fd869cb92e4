"""Online experiments end to end on a small built platform: the API routes each viewer to the
model of their arm and says so; stopping an experiment needs no restart; the closed loop drives
the real API and its events land where ingestion reads them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from platform_support import BuiltPlatform, platform_settings
from test_serving import ADMIN, ADMIN_TOKEN, AUTH, TOKEN, tiny_ranker

from experiments.assignment import assign
from experiments.config import parse_experiment
from fanout import open_feed_store
from fanout.precompute import load_snapshot as load_feed_snapshot
from fanout.precompute import write_feeds
from ml.ranking.scorer import RankerScorer
from serving.app import create_app
from serving.model_loading import ModelHolder
from serving.settings import ServingSettings
from serving.state import ServingState
from warehouse import clickhouse_client

CONFIG = {
    "name": "tiny-rankers",
    "salt": "tiny-rankers-1",
    "surface": "home_feed",
    "start": "2020-01-01T00:00:00Z",
    "end": "2100-01-01T00:00:00Z",
    "arms": [
        {"name": "control", "model": "test-ranker/1", "traffic": [0.0, 0.5]},
        {"name": "treatment", "model": "test-ranker/2", "traffic": [0.5, 1.0]},
    ],
}


@dataclass
class Online:
    client: TestClient
    state: ServingState
    built: BuiltPlatform
    experiments: Path


def fixed(scorer: RankerScorer) -> ModelHolder:
    """A holder that always has this scorer (no registry)."""
    return ModelHolder(lambda: scorer.version, lambda _: scorer, initial=scorer)


@pytest.fixture(scope="module")
def online(
    built_platform: BuiltPlatform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Online]:
    work: Path = tmp_path_factory.mktemp("online")
    folder = work / "experiments"
    folder.mkdir()
    (folder / "tiny-rankers.json").write_bytes(orjson.dumps(CONFIG))
    settings = platform_settings(
        built_platform.work,
        FEED_STORE_URL=f"sqlite:///{work / 'feeds.sqlite'}",
        MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
        EXPERIMENTS_DIR=str(folder),
        OBJECT_STORE_URL=f"file://{work / 'objects'}",
    )
    with clickhouse_client(settings.clickhouse_url) as client:
        feed_snapshot = load_feed_snapshot(client, settings)
    with open_feed_store(settings) as store:
        write_feeds(store, feed_snapshot)
    champion = tiny_ranker(built_platform, "test-ranker/0", seed=3)
    arms = {
        version: fixed(tiny_ranker(built_platform, version, seed=seed))
        for version, seed in (("test-ranker/1", 1), ("test-ranker/2", 2))
    }
    app = create_app(
        settings,
        ServingSettings(tokens=TOKEN, admin_tokens=ADMIN_TOKEN, follow_changes=False),
        models=fixed(champion),
        arm_models=arms,
        background=False,
    )
    with TestClient(app) as client:
        yield Online(client, app.state.serving, built_platform, folder)


def partition_of(key: str) -> str:
    from ingestion.landing import partition_key_of_file

    partition = partition_key_of_file(key)
    assert partition is not None, key
    return partition


def users(online: Online) -> list[int]:
    snapshot = online.state.snapshot
    assert snapshot is not None
    return [int(u) for u in snapshot.users.index if len(snapshot.follows(int(u))) >= 3]


def test_each_viewer_is_ranked_by_the_model_of_their_arm(online: Online) -> None:
    experiment = parse_experiment(CONFIG)
    seen = set()
    for user in users(online)[:40]:
        body = online.client.get(f"/v1/users/{user}/feed", headers=AUTH).json()
        arm = assign(experiment, user)
        assert (body["experiment"], body["arm"]) == ("tiny-rankers", arm.name)
        if not body["degraded"]:
            assert body["model_version"] == arm.model
            seen.add(arm.name)
        if body["next_cursor"]:  # later pages keep the arm of the first
            page = online.client.get(
                f"/v1/users/{user}/feed", params={"cursor": body["next_cursor"]}, headers=AUTH
            ).json()
            assert page["arm"] == arm.name
    assert seen == {"control", "treatment"}
    # POST /v1/rank ranks with the same arm's model
    user = users(online)[0]
    feed = online.client.get(f"/v1/users/{user}/feed", headers=AUTH).json()
    posts = [item["post_id"] for item in feed["items"]]
    if posts:
        ranked = online.client.post(
            "/v1/rank", json={"user_id": user, "post_ids": posts}, headers=AUTH
        ).json()
        assert (ranked["experiment"], ranked["arm"]) == (feed["experiment"], feed["arm"])
        assert ranked["degraded"] or ranked["model_version"] == assign(experiment, user).model


def test_an_experiment_stops_without_a_restart(online: Online) -> None:
    user = users(online)[0]
    listed = online.client.get("/admin/experiments", headers=ADMIN).json()
    assert [e["name"] for e in listed["experiments"]] == ["tiny-rankers"]
    assert online.client.post("/admin/experiments/nope/stop", headers=ADMIN).status_code == 404
    assert (
        online.client.post("/admin/experiments/tiny-rankers/stop", headers=AUTH).status_code == 403
    )
    try:
        stopped = online.client.post("/admin/experiments/tiny-rankers/stop", headers=ADMIN)
        assert stopped.json()["stopped"] is True
        body = online.client.get(f"/v1/users/{user}/feed", headers=AUTH).json()
        assert body["experiment"] is None and body["arm"] is None
        assert body["degraded"] or body["model_version"] == "test-ranker/0"
    finally:
        (online.experiments / "tiny-rankers.json").write_bytes(orjson.dumps(CONFIG))
        assert online.state.experiments is not None
        online.state.experiments.registry.refresh(force=True)


def test_a_config_naming_an_unknown_model_is_refused_and_not_served(online: Online) -> None:
    bad = dict(CONFIG, name="bad-models", surface="explore")
    bad["arms"] = [dict(a, model="test-ranker/9") for a in CONFIG["arms"]]  # type: ignore[arg-type]
    path = online.experiments / "bad-models.json"
    path.write_bytes(orjson.dumps(bad))
    try:
        refused = online.client.get("/admin/experiments", headers=ADMIN).json()["refused"]
        assert (
            "arms[0].model: unknown model version or alias 'test-ranker/9'"
            in refused["bad-models.json"]
        )
    finally:
        path.unlink()


def test_the_closed_loop_reads_served_feeds_and_lands_ingestible_events(online: Online) -> None:
    import time

    from experiments import ExperimentRegistry
    from ingestion.landing_source import read_file
    from ingestion.loader import load_records
    from objectstore import open_store
    from warehouse import ensure_raw_tables
    from workload.loop import LoopConfig, run_loop
    from workload.truth_oracle import TruthOracle

    built = online.built
    oracle = TruthOracle.of(built.workload)
    store = open_store(online.state.settings.object_store_url)
    start = built.watermark
    online.client.headers.update(AUTH)
    try:
        config = LoopConfig(sessions=80, seed=5, batch_id="first")
        started = time.perf_counter()
        report = run_loop(online.client, oracle, store, "landing/events", start, config)
        elapsed = time.perf_counter() - started
        again = run_loop(
            online.client,
            oracle,
            store,
            "landing/events",
            start,
            LoopConfig(80, 5, batch_id="again"),
        )
    finally:
        del online.client.headers["Authorization"]
    print(f"closed loop: {report.sessions_per_second:.1f} sessions/s in process ({elapsed:.1f} s)")
    assert report.sessions == 80 and not report.http_errors
    assert {arm for _, arm in report.arms} == {"control", "treatment"}
    assert report.impressions >= 80
    # the other surfaces were opened too, and their events are the platform's answers
    surfaces = report.surfaces
    assert surfaces["home_feed"].sessions == 80
    assert 10 <= surfaces["explore"].sessions <= 40 and surfaces["explore"].impressions > 0
    assert 10 <= surfaces["stories"].sessions <= 40
    assert 1 <= surfaces["suggestions"].sessions <= 20 and surfaces["suggestions"].impressions > 0
    assert surfaces["home_feed"].impressions == report.impressions
    # engagement follows the truth: the count is within 4 sd of the sum of true probabilities,
    # on the home feed and on Explore (likes), and for follows of suggested accounts
    for name in ("home_feed", "explore", "suggestions"):
        tally = surfaces[name]
        expected = tally.expected_engagements
        assert abs(tally.engagements - expected) <= 4 * expected**0.5 + 1, (name, tally)
    assert report.engagements == surfaces["home_feed"].engagements
    # seeded: the same API state and seed give the same events
    assert [store.get(k) for k in report.keys] == [store.get(k) for k in again.keys]

    registry = ExperimentRegistry(online.experiments)
    records = [r for key in report.keys for r in read_file(store, key, partition_of(key))]
    database = "loop_raw"
    from warehouse import clickhouse_client

    with clickhouse_client(online.state.settings.clickhouse_url) as client:
        try:
            ensure_raw_tables(client, database)
            loaded = load_records(client, database, records, known_arm=registry.knows_arm)
            assert loaded.dead_lettered == 0, loaded.reasons
            shown = report.impressions + surfaces["explore"].impressions
            assert loaded.loaded_by_family["views"] == shown + surfaces["stories"].engagements
            liked = report.engagements + surfaces["explore"].engagements
            assert loaded.loaded_by_family["engagements"] == liked
            follows = surfaces["suggestions"].engagements
            assert loaded.loaded_by_family.get("relationships", 0) == follows
            rows = client.query(
                f"select surface, count() from {database}.views where event_type = 'impression'"
                " group by surface"
            )
            assert {str(s): int(n) for s, n in rows.result_rows} == {
                "home_feed": report.impressions,
                "explore": surfaces["explore"].impressions,
            }
            rows = client.query(
                f"select arm, count() from {database}.views where surface = 'home_feed'"
                " group by arm"
            )
            arms = {str(arm): int(n) for arm, n in rows.result_rows}
            assert arms == {a: t.impressions for (_, a), t in report.arms.items()}
        finally:
            client.command(f"DROP DATABASE IF EXISTS {database}")


INTERLEAVED = {
    "name": "tiny-interleaved",
    "kind": "interleaving",
    "salt": "tiny-interleaved-1",
    "surface": "home_feed",
    "start": "2020-01-01T00:00:00Z",
    "end": "2100-01-01T00:00:00Z",
    "arms": [
        {"name": "control", "model": "test-ranker/1"},
        {"name": "treatment", "model": "test-ranker/2"},
    ],
}


def test_an_interleaving_experiment_merges_both_arms_and_is_analysed_from_served_impressions(
    online: Online,
) -> None:
    """Every viewer's feed is a team draft of both arms' rankings, each item names its arm, the
    closed loop logs that arm per impression, and the sign test reads the sessions back."""
    import pandas as pd

    from experiments import ExperimentRegistry
    from experiments.analysis import analyse_interleaving
    from ingestion.landing_source import read_file
    from ingestion.loader import load_records
    from objectstore import open_store
    from warehouse import ensure_raw_tables
    from workload.loop import LoopConfig, run_loop
    from workload.truth_oracle import TruthOracle

    ab = online.experiments / "tiny-rankers.json"
    path = online.experiments / "tiny-interleaved.json"
    ab.unlink()
    path.write_bytes(orjson.dumps(INTERLEAVED))
    assert online.state.experiments is not None
    online.state.experiments.registry.refresh(force=True)
    try:
        placed: dict[str, int] = {"control": 0, "treatment": 0}
        for user in users(online)[:30]:
            body = online.client.get(f"/v1/users/{user}/feed", headers=AUTH).json()
            if body["degraded"] or not body["items"]:
                continue
            assert (body["experiment"], body["arm"]) == ("tiny-interleaved", None)
            assert body["model_version"] == "test-ranker/1+test-ranker/2"
            arms = [item["arm"] for item in body["items"]]
            assert set(arms) <= {"control", "treatment"}
            for k in range(1, len(arms) + 1):  # team draft: picks stay balanced in every prefix
                assert abs(arms[:k].count("control") - arms[:k].count("treatment")) <= 1
            for arm in arms:
                placed[arm] += 1
            # POST /v1/rank interleaves the same way
            posts = [item["post_id"] for item in body["items"]]
            ranked = online.client.post(
                "/v1/rank", json={"user_id": user, "post_ids": posts}, headers=AUTH
            ).json()
            assert ranked["experiment"] == "tiny-interleaved"
            assert sorted(i["post_id"] for i in ranked["items"]) == sorted(posts)
            assert {i["arm"] for i in ranked["items"]} <= {"control", "treatment"}
        assert placed["control"] > 0 and placed["treatment"] > 0, placed

        store = open_store(online.state.settings.object_store_url)
        online.client.headers.update(AUTH)
        try:
            report = run_loop(
                online.client,
                TruthOracle.of(online.built.workload),
                store,
                "landing/interleaved",
                online.built.watermark,
                # the home feed only: the experiment's surface (likes carry no surface)
                LoopConfig(
                    sessions=60,
                    seed=11,
                    batch_id="interleaved",
                    explore_probability=0.0,
                    stories_probability=0.0,
                    suggestions_probability=0.0,
                ),
            )
        finally:
            del online.client.headers["Authorization"]
        assert report.sessions == 60 and not report.http_errors
        landed = [r for key in report.keys for r in read_file(store, key, partition_of(key))]
        registry = ExperimentRegistry(online.experiments)
        with clickhouse_client(online.state.settings.clickhouse_url) as client:
            try:  # the ingestion path accepts every served arm
                ensure_raw_tables(client, "interleaved_raw")
                loaded = load_records(
                    client, "interleaved_raw", landed, known_arm=registry.knows_arm
                )
                assert loaded.dead_lettered == 0, loaded.reasons
            finally:
                client.command("DROP DATABASE IF EXISTS interleaved_raw")
        records = [orjson.loads(r.line) for r in landed]
        views = [r for r in records if r["event_type"] == "impression"]
        assert all(r["experiment"] == "tiny-interleaved" for r in views)
        liked = {(r["user_id"], r["post_id"]) for r in records if r["event_type"] == "like"}
        impressions = pd.DataFrame(
            {
                "arm": [r["arm"] for r in views],
                "user_id": [r["user_id"] for r in views],
                "session_id": [r["request_id"] for r in views],
                "position": [r["position"] for r in views],
                "engaged": [(r["user_id"], r["post_id"]) in liked for r in views],
            }
        )
        found = analyse_interleaving(impressions, "control", "treatment")
        sessions = impressions["session_id"].nunique()
        assert found.wins_a + found.wins_b + found.ties == sessions
        per_arm = impressions[impressions["engaged"]].groupby("arm").size().to_dict()
        assert found.wins_a <= per_arm.get("control", 0)
        assert found.wins_b <= per_arm.get("treatment", 0)
        assert report.arms[("tiny-interleaved", "control")].impressions == placed_count(
            views, "control"
        )
    finally:
        path.unlink()
        ab.write_bytes(orjson.dumps(CONFIG))
        online.state.experiments.registry.refresh(force=True)


def placed_count(views: list[dict], arm: str) -> int:
    return sum(1 for r in views if r["arm"] == arm)
