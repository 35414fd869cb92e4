"""The seeded workload generator: reproducible, realistic, contract-clean, with exact bad events."""

from __future__ import annotations

import collections
import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from typer.testing import CliRunner

from contracts.catalog import CONTRACTS_BY_TYPE
from contracts.timestamps import parse_timestamp
from contracts.validation import MALFORMED_JSON, NOT_AN_OBJECT, validate_line
from ingestion.landing import partition_key_of, partition_key_of_file
from objectstore.store import LocalObjectStore
from workload.__main__ import app
from workload.config import BAD_KINDS, WorkloadConfig
from workload.faults import apportion, bad_count, planned_counts
from workload.generator import Workload, generate
from workload.graph import build_graph
from workload.ground_truth import MEDIA_TYPES, TruthModel
from workload.writer import write_workload

START = datetime(2026, 11, 20, tzinfo=UTC)
ENGAGEMENTS = ("like", "comment", "save", "share")


def small(seed: int = 11, users: int = 300, days: int = 2, **kw: Any) -> WorkloadConfig:
    return WorkloadConfig(users=users, days=days, seed=seed, start=START, **kw)


@pytest.fixture(scope="module")
def workload() -> Workload:
    return generate(small())


@pytest.fixture(scope="module")
def events(workload: Workload) -> list[dict[str, Any]]:
    """The distinct valid events, parsed, in produced order."""
    return [orjson.loads(r.line) for r in workload.records if not r.is_bad]


def of_type(events: list[dict[str, Any]], *types: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] in types]


def at(event: dict[str, Any]) -> datetime:
    return parse_timestamp(event["occurred_at"])


# --- reproducibility -----------------------------------------------------------------------


def test_same_seed_gives_identical_bytes() -> None:
    config = small(seed=5, users=150)
    first, second = generate(config), generate(config)
    assert first.records == second.records
    assert first.manifest == second.manifest
    assert first.run_id == second.run_id
    for name, frame in first.ground_truth.tables().items():
        pd.testing.assert_frame_equal(frame, second.ground_truth.tables()[name])


DIGEST = """
import hashlib
from datetime import UTC, datetime
from workload import WorkloadConfig, generate
w = generate(WorkloadConfig(users=120, days=1, seed=4, start=datetime(2026, 11, 20, tzinfo=UTC)))
h = hashlib.sha256()
for r in w.records:
    h.update(r.produced_at.isoformat().encode() + r.event_type.encode() + r.line)
print(h.hexdigest())
"""


def test_same_seed_is_identical_across_processes() -> None:
    """No dependence on hash randomization (set or dict order) or on anything but the seed."""
    digests = {
        subprocess.run(
            [sys.executable, "-c", DIGEST],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }
    assert len(digests) == 1


def test_different_seed_gives_different_events() -> None:
    first, other = generate(small(seed=5, users=150)), generate(small(seed=6, users=150))
    assert first.run_id != other.run_id
    shared = {r.line for r in first.records} & {r.line for r in other.records}
    assert len(shared) < 0.01 * len(first.records)


# --- the follower graph --------------------------------------------------------------------


def in_degrees(events: list[dict[str, Any]]) -> collections.Counter[int]:
    """Followers per account: public follows plus approved requests (user_id approves)."""
    degree: collections.Counter[int] = collections.Counter()
    for e in events:
        if e["event_type"] == "follow":
            degree[e["target_user_id"]] += 1
        elif e["event_type"] == "follow_approved":
            degree[e["user_id"]] += 1
    return degree


def test_in_degree_is_heavy_tailed_and_celebrities_lead(
    workload: Workload, events: list[dict[str, Any]]
) -> None:
    degree = in_degrees(events)
    users = [e["user_id"] for e in of_type(events, "user_created")]
    counts = np.array(sorted((degree.get(u, 0) for u in users), reverse=True))
    assert counts[0] > 10 * np.median(counts)
    top_share = counts[: max(1, len(users) // 100)].sum() / counts.sum()
    assert top_share > 0.05  # the top 1% hold over 5x their even share
    celebrities = set(workload.ground_truth.parameters["celebrities"])
    assert len(celebrities) == 2
    assert {u for u, _ in degree.most_common(len(celebrities))} == celebrities


def test_power_law_at_default_scale() -> None:
    config = WorkloadConfig(users=1000, days=2, seed=3, start=START)
    graph = build_graph(config, np.random.default_rng(3))
    degree: collections.Counter[int] = collections.Counter()
    for batch in graph.batches:
        if batch.event_type == "follow":
            degree.update(batch.columns["target_user_id"])
        elif batch.event_type == "follow_approved":
            degree.update(batch.columns["user_id"])
    counts = np.array(sorted((degree.get(u, 0) for u in graph.users["user_id"]), reverse=True))
    assert counts[0] > 25 * np.median(counts)
    assert counts[:10].sum() / counts.sum() > 0.12
    celebrities = set(graph.users.loc[graph.users["is_celebrity"], "user_id"])
    assert {u for u, _ in degree.most_common(len(celebrities))} == celebrities


def test_private_accounts_need_approval(events: list[dict[str, Any]]) -> None:
    private = {e["user_id"] for e in of_type(events, "user_created") if e["is_private"]}
    assert private
    requested = {
        (e["user_id"], e["target_user_id"], at(e)) for e in of_type(events, "follow_request")
    }
    assert all(target in private for _, target, _ in requested)
    assert not [e for e in of_type(events, "follow") if e["target_user_id"] in private]
    approvals = of_type(events, "follow_approved")
    assert 0.6 * len(requested) < len(approvals) < len(requested)  # most, not all
    for approval in approvals:
        owner, follower = approval["user_id"], approval["target_user_id"]
        assert owner in private
        assert any(u == follower and t == owner and when < at(approval) for u, t, when in requested)


def test_events_are_causally_ordered(events: list[dict[str, Any]]) -> None:
    born = {e["user_id"]: at(e) for e in of_type(events, "user_created")}
    posted = {e["post_id"]: at(e) for e in of_type(events, "post_created")}
    liked = {(e["user_id"], e["post_id"]): at(e) for e in of_type(events, "like")}
    comments = {e["comment_id"]: at(e) for e in of_type(events, "comment")}
    for e in events:
        if e["event_type"] != "user_created":
            assert born[e["user_id"]] < at(e)
        if "target_user_id" in e:
            assert born[e["target_user_id"]] < at(e)
        if "post_id" in e and e["event_type"] != "post_created":
            assert posted[e["post_id"]] < at(e)
        if e["event_type"] == "unlike":
            assert liked[(e["user_id"], e["post_id"])] < at(e)
        if e.get("parent_comment_id") is not None:
            assert comments[e["parent_comment_id"]] <= at(e)
    kinds = collections.Counter(e["event_type"] for e in events)
    rare = {"unblock", "unmute"}  # may be absent at small scale
    assert {t for t in CONTRACTS_BY_TYPE if not kinds[t]} <= rare


# --- content ---------------------------------------------------------------------------------


def test_media_mix_and_object_keys(events: list[dict[str, Any]]) -> None:
    posts = of_type(events, "post_created")
    mix = collections.Counter(p["media_type"] for p in posts)
    assert 0.5 < mix["photo"] / len(posts) < 0.7
    assert 0.17 < mix["video"] / len(posts) < 0.33
    assert 0.08 < mix["carousel"] / len(posts) < 0.22
    for post in posts:
        for i, item in enumerate(post["media"]):
            ext = "mp4" if item["mime_type"] == "video/mp4" else "jpg"
            assert item["object_key"] == (
                f"media/originals/{post['user_id']}/{post['post_id']}/{i}.{ext}"
            )


def test_stories_expire_exactly_after_24_hours(events: list[dict[str, Any]]) -> None:
    stories = of_type(events, "story_created")
    assert stories
    for story in stories:
        assert parse_timestamp(story["expires_at"]) - at(story) == timedelta(hours=24)
    expiry = {s["story_id"]: (at(s), parse_timestamp(s["expires_at"])) for s in stories}
    for view in of_type(events, "story_view"):
        created, expires = expiry[view["story_id"]]
        assert created < at(view) < expires


def test_trending_hashtags_burst(workload: Workload, events: list[dict[str, Any]]) -> None:
    posts = of_type(events, "post_created")
    trends = workload.ground_truth.parameters["trending"]
    assert len(trends) == 3
    for trend in trends:
        start, end = datetime.fromisoformat(trend["start"]), datetime.fromisoformat(trend["end"])
        inside: list[str] = []
        outside: list[str] = []
        for post in posts:
            (inside if start <= at(post) < end else outside).extend(post.get("hashtags", []))
        share_in = inside.count(trend["hashtag"]) / len(inside)
        share_out = inside.count(trend["hashtag"]) and outside.count(trend["hashtag"]) / len(
            outside
        )
        assert inside.count(trend["hashtag"]) >= 5
        assert share_in > 5 * share_out, trend


# --- what viewers are shown --------------------------------------------------------------------


def test_nobody_sees_private_posts_unapproved_or_across_blocks(
    events: list[dict[str, Any]],
) -> None:
    """Replay relationships in time order and check every impression against the state then.

    A block ends follows in both directions (no unfollow events), as the app does.
    """
    private = {e["user_id"] for e in of_type(events, "user_created") if e["is_private"]}
    author = {e["post_id"]: e["user_id"] for e in of_type(events, "post_created")}
    relationship = {"follow", "follow_approved", "unfollow", "block", "unblock"}
    timeline = sorted(
        (e for e in events if e["event_type"] in relationship | {"impression"}),
        key=lambda e: (at(e), e["event_type"] == "impression"),
    )
    approved: set[tuple[int, int]] = set()
    blocked: set[frozenset[int]] = set()
    checked_private = 0
    for e in timeline:
        kind = e["event_type"]
        if kind == "follow_approved":
            approved.add((e["target_user_id"], e["user_id"]))
        elif kind == "unfollow":
            approved.discard((e["user_id"], e["target_user_id"]))
        elif kind == "block":
            pair = (e["user_id"], e["target_user_id"])
            blocked.add(frozenset(pair))
            approved.discard(pair)
            approved.discard(pair[::-1])
        elif kind == "unblock":
            blocked.discard(frozenset((e["user_id"], e["target_user_id"])))
        elif kind == "impression":
            viewer, owner = e["user_id"], author[e["post_id"]]
            assert viewer != owner
            assert frozenset((viewer, owner)) not in blocked
            if owner in private:
                checked_private += 1
                assert (viewer, owner) in approved
                assert e["surface"] in ("home_feed", "profile")
    assert checked_private > 0


def test_explore_shows_public_posts_of_unfollowed_accounts(events: list[dict[str, Any]]) -> None:
    private = {e["user_id"] for e in of_type(events, "user_created") if e["is_private"]}
    author = {e["post_id"]: e["user_id"] for e in of_type(events, "post_created")}
    follows = {
        (e["user_id"], e["target_user_id"]) for e in of_type(events, "follow", "follow_request")
    }
    explore = [e for e in of_type(events, "impression") if e["surface"] == "explore"]
    assert explore
    for e in explore:
        owner = author[e["post_id"]]
        assert owner not in private
        assert (e["user_id"], owner) not in follows
    surfaces = collections.Counter(e["surface"] for e in of_type(events, "impression"))
    assert surfaces["home_feed"] > surfaces["explore"] > 0
    assert surfaces["profile"] > 0 and surfaces["hashtag"] > 0


def test_ground_truth_matches_impressions_one_to_one(
    workload: Workload, events: list[dict[str, Any]]
) -> None:
    impressions = {e["event_id"]: e for e in of_type(events, "impression")}
    truth = workload.ground_truth.impressions
    assert truth["event_id"].is_unique
    assert set(truth["event_id"]) == set(impressions)
    for row in truth.itertuples():
        event = impressions[row.event_id]
        assert (event["user_id"], event["post_id"]) == (row.viewer, row.post_id)
        assert event["surface"] == row.surface and event["position"] == row.position
        assert at(event) == row.shown_at.to_pydatetime()
    # engaged impressions are exactly the (viewer, post) pairs with an engagement event
    hit = truth[truth["engaged"]]
    engaged = set(zip(hit["viewer"], hit["post_id"], strict=True))
    acted = {(e["user_id"], e["post_id"]) for e in of_type(events, *ENGAGEMENTS)}
    assert engaged == acted
    # the hidden probabilities are calibrated against the draws
    assert abs(truth["engaged"].mean() - truth["true_probability"].mean()) < 0.015
    assert 0.02 < truth["engaged"].mean() < 0.15


def test_ground_truth_formula_reproduces_probabilities(workload: Workload) -> None:
    gt = workload.ground_truth
    params = gt.parameters["truth_model"]
    frame = (
        gt.impressions.merge(gt.affinity, on=["viewer", "author"], how="left")
        .merge(
            gt.content_preference, left_on=["viewer", "media_type"], right_on=["user", "media_type"]
        )
        .merge(gt.post_quality, on="post_id")
    )
    assert len(frame) == len(gt.impressions)
    assert frame["affinity_y"].notna().all()
    # the recorded factors are the hidden tables' values
    np.testing.assert_allclose(frame["affinity_x"], frame["affinity_y"])
    np.testing.assert_allclose(frame["content_pref"], frame["preference"])
    np.testing.assert_allclose(frame["quality_x"], frame["quality_y"])
    located = frame["distance_km"].notna()
    recency = frame["media_type"].map({m: params[f"recency_{m}"] for m in MEDIA_TYPES})
    np.testing.assert_allclose(
        frame["recency_decay"], recency * np.log1p(frame["age_hours"]), rtol=1e-12
    )
    np.testing.assert_allclose(
        frame["interest_quality"], frame["interest_match"] * frame["visible_quality"], atol=1e-12
    )
    logit = (
        params["b0"]
        + frame["affinity_y"]
        + frame["preference"]
        + frame["quality_y"]
        + params["interest"] * frame["interest_match"]
        + params["interest_quality"] * frame["interest_match"] * frame["visible_quality"]
        + params["location_city"] * frame["same_city_x"]
        + params["location_country"] * frame["same_country"]
        - params["location_distance"] * np.log1p(frame["distance_km"].fillna(0.0) / 100)
        + params["velocity"] * np.log1p(frame["engagements_before"])
        + params["repeat"] * np.log1p(frame["pair_engagements_before"])
        - recency * np.log1p(frame["age_hours"])
        - params["position"] * np.log1p(frame["position"])
    )
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), frame["true_probability"], rtol=1e-9)
    # every term varies, so each can be learned; a post without a location adds nothing
    for name in (
        "interest_match",
        "same_city_x",
        "same_country",
        "engagements_before",
        "pair_engagements_before",
    ):
        assert frame[name].nunique() > 1, name
    assert 0 < located.mean() < 1
    assert (frame.loc[~located, ["same_city_x", "same_country"]] == 0).all().all()
    # the affinity is mostly structural: it grows with what the platform sees of the pair
    truth = TruthModel(**params)
    structure = frame[["follows", "followed_by", "topic_overlap", "same_city_y", "common_follows"]]
    np.testing.assert_allclose(
        frame["structural"], truth.structural_affinity(*structure.to_numpy().T), rtol=1e-12
    )
    np.testing.assert_allclose(frame["affinity_y"], frame["structural"] + frame["latent"])
    assert frame["structural"].std() > 1.5 * frame["latent"].std()
    for name in ("follows", "followed_by", "same_city_y"):
        assert 0 < frame[name].mean() < 1, name
    assert frame["topic_overlap"].max() > 0 and frame["common_follows"].max() > 0
    # posts engage more when the viewer shares their topics: the interest term is real
    matched = frame["interest_match"] > 0
    assert frame.loc[matched, "engaged"].mean() > frame.loc[~matched, "engaged"].mean()


# --- validity and bad events -------------------------------------------------------------------


def test_every_valid_record_passes_its_contract(workload: Workload) -> None:
    start, end = workload.config.window_start, workload.config.window_end
    valid = [r for r in workload.records if not r.is_bad]
    assert workload.manifest["valid_events"] == len(valid)
    assert len({orjson.loads(r.line)["event_id"] for r in valid}) == len(valid)
    previous = start
    for record in workload.records:
        assert start <= record.produced_at < end
        assert record.produced_at >= previous  # the stream is in produced order
        previous = record.produced_at
    for record in valid:
        assert validate_line(record.line, now=record.produced_at) == [], record
        event = orjson.loads(record.line)
        assert event["event_type"] == record.event_type
        delay = record.produced_at - at(event)
        assert timedelta(0) <= delay < timedelta(hours=15)
    delays = sorted((r.produced_at - at(orjson.loads(r.line))).total_seconds() for r in valid)
    assert delays[len(delays) // 2] < 5  # seconds usually
    assert delays[-1] > 3600  # occasionally hours (late mobile uploads)


def test_bad_event_counts_are_exact(workload: Workload) -> None:
    bad = [r for r in workload.records if r.is_bad]
    total = len(workload.records)
    fraction = workload.config.bad_fraction
    assert len(bad) == bad_count(workload.manifest["valid_events"], fraction)
    assert abs(len(bad) - fraction * total) <= 1
    expected = planned_counts(workload.manifest["valid_events"], workload.config)
    assert expected == dict(
        zip(BAD_KINDS, apportion(len(bad), workload.config.bad_kind_weights), strict=True)
    )
    assert dict(collections.Counter(r.bad_kind for r in bad)) == expected
    assert workload.manifest["bad_by_kind"] == expected
    assert all(count > 0 for count in expected.values())


def test_each_bad_record_fails_for_its_reason(workload: Workload) -> None:
    for record in (r for r in workload.records if r.is_bad and r.bad_kind != "duplicate"):
        reasons = validate_line(record.line, now=record.produced_at)
        assert reasons, record
        if record.bad_kind == "malformed_json":
            assert reasons in ([MALFORMED_JSON], [NOT_AN_OBJECT])
        elif record.bad_kind == "missing_field":
            assert f"{record.bad_detail}: missing" in reasons
        elif record.bad_kind == "mistyped_field":
            assert any(r.startswith(f"{record.bad_detail}: expected") for r in reasons)
        elif record.bad_kind == "unknown_type":
            event_type = orjson.loads(record.line)["event_type"]
            assert reasons == [f"event_type: unknown event type '{event_type}'"]
            assert record.event_type == event_type
        elif record.bad_kind == "future_timestamp":
            assert reasons == ["occurred_at: more than 60 min in the future"]
            occurred = at(orjson.loads(record.line))
            assert occurred >= record.produced_at + timedelta(days=2)


def test_duplicates_are_exact_copies_later_in_the_same_hour(workload: Workload) -> None:
    first_seen: dict[bytes, datetime] = {}
    duplicates = 0
    for record in workload.records:
        if record.is_bad and record.bad_kind == "duplicate":
            duplicates += 1
            original = first_seen[record.line]
            assert original < record.produced_at
            assert partition_key_of(original) == partition_key_of(record.produced_at)
            assert validate_line(record.line, now=record.produced_at) == []
            assert orjson.loads(record.line)["event_id"] == record.bad_detail
        elif not record.is_bad:
            first_seen[record.line] = record.produced_at
    assert duplicates == workload.manifest["bad_by_kind"]["duplicate"]


# --- the writer and the CLI ----------------------------------------------------------------------


def test_writer_follows_the_landing_layout(workload: Workload, tmp_path: Any) -> None:
    store = LocalObjectStore(tmp_path)
    result = write_workload(store, "landing/events", workload)
    keys = list(store.list("landing/events/"))
    assert sorted(keys) == sorted(result.keys)
    assert len(keys) == len(set(result.keys))
    hours = {partition_key_of(r.produced_at) for r in workload.records}
    assert result.partitions == hours
    expected: dict[tuple[str, str], list[bytes]] = collections.defaultdict(list)
    for r in workload.records:
        expected[(partition_key_of(r.produced_at), r.event_type)].append(r.line)
    lines_by_type: collections.Counter[str] = collections.Counter()
    written: list[bytes] = []
    for key in keys:
        data = store.get(key)
        assert data.endswith(b"\n") and not data.endswith(b"\n\n")
        partition = partition_key_of_file(key)
        assert partition in hours
        event_type = key.split("event_type=")[1].split("/")[0]
        assert key.endswith(f"/part-{workload.run_id}.jsonl")
        lines = data[:-1].split(b"\n")
        assert lines == expected[(partition, event_type)]  # in produced order
        lines_by_type[event_type] += len(lines)
        written += lines
    assert len(written) == len(workload.records) == result.lines
    assert collections.Counter(written) == collections.Counter(r.line for r in workload.records)
    assert lines_by_type["_unparsed"] > 0  # unreadable lines land in the `_unparsed` folder

    manifest = orjson.loads(store.get(result.manifest_key))
    assert manifest == orjson.loads(orjson.dumps(workload.manifest))
    assert result.manifest_key == f"manifests/{workload.run_id}.json"
    for name, frame in workload.ground_truth.tables().items():
        stored = pd.read_parquet(
            io.BytesIO(store.get(f"ground_truth/{workload.run_id}/{name}.parquet"))
        )
        assert len(stored) == len(frame)


def test_writer_can_split_groups_into_batches(workload: Workload, tmp_path: Any) -> None:
    store = LocalObjectStore(tmp_path)
    result = write_workload(store, "landing", workload, "b1", max_lines_per_file=50)
    assert all("/part-b1-" in key for key in result.keys)
    assert result.lines == len(workload.records)
    assert len(result.keys) > len(write_workload(store, "other", workload, "b2").keys)


def test_manifest_counts(workload: Workload, events: list[dict[str, Any]]) -> None:
    manifest = workload.manifest
    by_type = collections.Counter(e["event_type"] for e in events)
    assert manifest["valid_by_type"] == {t: by_type[t] for t in CONTRACTS_BY_TYPE}
    assert sum(manifest["valid_by_family"].values()) == manifest["valid_events"]
    assert manifest["valid_by_family"]["views"] == by_type["impression"] + by_type["story_view"]
    assert manifest["seed"] == 11 and manifest["run_id"] == workload.config.run_id
    assert manifest["config"]["start"] == "2026-11-20T00:00:00Z"


def test_config_defaults() -> None:
    config = WorkloadConfig()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert config.window_start == today - timedelta(days=3)
    assert (config.users, config.days, config.seed, config.bad_fraction) == (1000, 3, 7, 0.02)
    assert config.n_celebrities == 5 and WorkloadConfig(users=100).n_celebrities == 2
    with pytest.raises(ValueError):
        WorkloadConfig(start=datetime(2026, 11, 20))  # naive


def test_cli_generates_into_a_store(tmp_path: Any) -> None:
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--users", "60",
            "--days", "1",
            "--seed", "3",
            "--start", "2026-11-20",
            "--store-url", f"file://{tmp_path}",
            "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "events/s" in result.output
    store = LocalObjectStore(tmp_path)
    keys = list(store.list("landing/events/dt=2026-11-20/"))
    assert keys and all(partition_key_of_file(k) for k in keys)
    assert list(store.list("manifests/"))
