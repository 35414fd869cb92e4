"""Privacy over the HTTP API while visibility changes stream in; errors and token scopes.

One app on a built platform (real chDB marts, Feast online store on SQLite, the real feed
precompute); changes arrive through the change follower's entry point, through real landing
files and through a real Kafka broker. A reference model written from the rules (plain sets,
not `VisibilityGraph`) says what each viewer may see after every step.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from platform_support import BuiltPlatform, platform_settings

from fanout import open_feed_store
from fanout.precompute import load_snapshot as load_feed_snapshot
from fanout.precompute import write_feeds
from ingestion.landing import file_key
from objectstore.store import LocalObjectStore
from serving.app import create_app
from serving.settings import ServingSettings
from serving.state import ServingState
from serving.visibility_follower import KafkaFollower, LandingFollower
from visibility import VisibilityGraph
from warehouse import clickhouse_client

TOKEN = "privacy-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADMIN = {"Authorization": "Bearer privacy-admin-token"}


@dataclass
class Live:
    client: TestClient
    state: ServingState
    built: BuiltPlatform
    original: VisibilityGraph
    private: frozenset[int]


@pytest.fixture(scope="module")
def live(built_platform: BuiltPlatform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    work: Path = tmp_path_factory.mktemp("privacy")
    settings = platform_settings(
        built_platform.work,
        FEED_STORE_URL=f"sqlite:///{work / 'feeds.sqlite'}",
        MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
    )
    with clickhouse_client(settings.clickhouse_url) as client:
        snapshot = load_feed_snapshot(client, settings)
        private = frozenset(
            int(u)
            for (u,) in client.query(
                f"select user_id from {built_platform.marts}.dim_users where is_private"
            ).result_rows
        )
    with open_feed_store(settings) as store:
        write_feeds(store, snapshot)
    app = create_app(
        settings,
        ServingSettings(
            tokens=TOKEN, admin_tokens="privacy-admin-token", snapshot_refresh_seconds=0
        ),
        background=False,
    )
    with TestClient(app) as client:
        state: ServingState = app.state.serving
        assert state.snapshot is not None
        yield Live(client, state, built_platform, state.snapshot.visibility, private)


def fresh_graph(live: Live) -> VisibilityGraph:
    """A copy of the snapshot's graph as loaded (each example starts from it)."""
    snapshot = live.state.snapshot
    assert snapshot is not None
    return VisibilityGraph.from_edges(
        follows=live.original.follow_edges().itertuples(index=False, name=None),
        blocks=live.original.block_edges(),
        mutes=live.original.mute_edges(),
        private_users=live.private,
        deleted_posts=snapshot.posts.deleted,
    )


def reset(live: Live) -> None:
    snapshot = live.state.snapshot
    assert snapshot is not None and live.state.changes is not None and live.state.home_feed
    snapshot.visibility = fresh_graph(live)
    live.state.changes._journal.clear()
    live.state.home_feed.invalidate()
    live.state.home_feed.snapshots.clear()


# --- the reference model: the rules, written again over plain sets -----------------------------


@dataclass
class Rules:
    follows: set[tuple[int, int]]
    blocks: set[tuple[int, int]]
    mutes: set[tuple[int, int]]
    private: set[int]
    deleted: set[int] = field(default_factory=set)

    def apply(self, event: dict) -> bool:
        """Apply an event; False when the API must dead-letter it."""
        kind, a = event["event_type"], event["user_id"]
        b = int(event.get("target_user_id") or 0)
        if kind == "profile_updated":
            (self.private.add if event["is_private"] else self.private.discard)(a)
        elif kind == "post_deleted":
            self.deleted.add(event["post_id"])
        elif a == b:
            return False
        elif kind == "block":
            self.blocks.add((a, b))
            self.follows -= {(a, b), (b, a)}
        elif kind == "unblock":
            if (a, b) not in self.blocks:
                return False
            self.blocks.discard((a, b))
        elif kind == "mute":
            self.mutes.add((a, b))
        elif kind == "unmute":
            if (a, b) not in self.mutes:
                return False
            self.mutes.discard((a, b))
        elif kind == "unfollow":
            self.follows.discard((a, b))
        elif kind == "follow" and b not in self.private and not self.blocked(a, b):
            self.follows.add((a, b))
        elif kind == "follow_approved" and not self.blocked(a, b):
            self.follows.add((b, a))  # a (private) approves b
        return True

    def blocked(self, a: int, b: int) -> bool:
        return (a, b) in self.blocks or (b, a) in self.blocks

    def hidden(self, viewer: int, author: int) -> bool:
        return self.blocked(viewer, author) or (viewer, author) in self.mutes

    def sees(self, viewer: int, author: int) -> bool:
        if viewer == author:
            return True
        if self.hidden(viewer, author):
            return False
        return author not in self.private or (viewer, author) in self.follows

    def sees_post(self, viewer: int, post: int, author: int) -> bool:
        return post not in self.deleted and self.sees(viewer, author)


def rules_of(live: Live) -> Rules:
    return Rules(
        follows={(int(a), int(b)) for a, b in live.original.follow_edges().itertuples(index=False)},
        blocks=set(live.original.block_edges()),
        mutes=set(live.original.mute_edges()),
        private=set(live.private),
    )


# --- what each endpoint shows --------------------------------------------------------------------


def get(live: Live, path: str, **params: object) -> dict:
    response = live.client.get(path, params=params, headers=AUTH)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


def check_viewer(live: Live, rules: Rules, viewer: int, cursors: dict[int, str]) -> None:
    """Every endpoint's answer for `viewer` respects the rules as they stand now."""
    snapshot = live.state.snapshot
    assert snapshot is not None
    posts = snapshot.posts
    shown: list[tuple[str, int, int]] = []  # (endpoint, post, author)
    feed = get(live, f"/v1/users/{viewer}/feed", limit=30)
    shown += [("feed", i["post_id"], i["author_id"]) for i in feed["items"]]
    if viewer in cursors:  # a cursor issued before the latest changes
        page = get(live, f"/v1/users/{viewer}/feed", limit=30, cursor=cursors[viewer])
        shown += [("cursor page", i["post_id"], i["author_id"]) for i in page["items"]]
    explore = get(live, f"/v1/users/{viewer}/explore", limit=50)
    shown += [("explore", i["post_id"], i["author_id"]) for i in explore["items"]]
    leaks = [s for s in shown if not rules.sees_post(viewer, s[1], s[2])]
    assert not leaks, f"viewer {viewer} was shown {leaks[:5]}"

    stories = get(live, f"/v1/users/{viewer}/stories", limit=100)
    for author in stories["authors"]:
        assert rules.sees(viewer, author["author_id"]), ("story", author["author_id"])
        assert (viewer, author["author_id"]) in rules.follows

    suggestions = get(live, f"/v1/users/{viewer}/suggestions", limit=50)
    for item in suggestions["items"]:
        other = item["user_id"]
        assert other != viewer and (viewer, other) not in rules.follows, other
        assert not rules.hidden(viewer, other), ("suggested", other)

    notes = get(live, f"/v1/users/{viewer}/notifications", limit=100, window_hours=24 * 30)
    digests = snapshot.digests.set_index("digest_id")
    for note in notes["items"]:
        actors = [int(a) for a in digests.at[note["digest_id"], "actor_ids"]]
        visible = [a for a in actors if not rules.hidden(viewer, a)]
        assert note["actors"] == len(visible) > 0, note
        assert note["latest_actor_id"] == visible[0]
        if note["post_id"] is not None:  # a follow digest has no post
            author = visible[0] if note["kind"] == "mention" else viewer
            assert rules.sees_post(viewer, note["post_id"], author), note

    # rank and post features: what the viewer may not see is never ranked nor described
    followed = [b for a, b in rules.follows if a == viewer] + sorted(rules.private)[:20]
    hidden = {b for a, b in rules.blocks if a == viewer} | {
        a for a, b in rules.blocks if b == viewer
    }
    hidden |= {b for a, b in rules.mutes if a == viewer}
    candidates = [
        int(posts.post_ids[r])
        for author in [*followed, *hidden]
        for r in posts.by_author.get(author, [])[:3]
    ] + [int(p) for p in posts.post_ids[:5]]
    ranked = live.client.post(
        "/v1/rank", json={"user_id": viewer, "post_ids": candidates[:500]}, headers=AUTH
    ).json()
    for item in ranked["items"]:
        assert rules.sees_post(viewer, item["post_id"], item["author_id"]), ("rank", item)
    forbidden = [
        p
        for p in candidates
        if p in posts.index
        and not rules.sees_post(viewer, p, int(posts.author_ids[posts.index[p]]))
    ]
    for post in forbidden[:3]:
        response = live.client.get(
            f"/v1/features/posts/{post}", params={"viewer_id": viewer}, headers=AUTH
        )
        assert response.status_code == 404, (post, response.text)


# --- events the property test draws ----------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn, viewers: list[int], authors: list[int], posts: list[int]) -> list:
    """A few steps: a change event, or 'take a cursor' for a viewer (changes after it must
    still be honoured on its next page)."""
    viewer, author = st.sampled_from(viewers), st.sampled_from(authors)
    relationship = st.builds(
        lambda kind, a, b, reverse: {
            "event_type": kind,
            "user_id": b if reverse else a,
            "target_user_id": a if reverse else b,
        },
        st.sampled_from(
            ["block", "unblock", "mute", "unmute", "unfollow", "follow", "follow_approved"]
        ),
        viewer,
        author,
        st.booleans(),
    )
    privacy = st.builds(
        lambda a, flag: {"event_type": "profile_updated", "user_id": a, "is_private": flag},
        author,
        st.booleans(),
    )
    deletion = st.sampled_from(posts).map(lambda p: {"event_type": "post_deleted", "post": p})
    cursor = viewer.map(lambda v: {"cursor_for": v})
    step = st.one_of(relationship, relationship, privacy, deletion, cursor)
    return draw(st.lists(step, min_size=2, max_size=6))


def test_every_endpoint_respects_changes_streamed_while_it_runs(live: Live) -> None:
    snapshot = live.state.snapshot
    assert snapshot is not None
    users = [int(u) for u in snapshot.users.index if len(live.original.follows(int(u))) >= 3]
    recipients = set(snapshot.digests["recipient_id"].astype(int))
    viewers = sorted(users, key=lambda u: (u not in recipients, -len(live.original.follows(u))))[:3]
    authors = sorted({a for v in viewers for a in live.original.follows(v)})[:40]
    authors += [int(u) for u in snapshot.users.nlargest(10, "follower_count").index]
    authors += sorted(  # actors of the viewers' notifications
        {
            int(a)
            for v in viewers[:2]
            for ids in snapshot.digests.loc[snapshot.digests["recipient_id"] == v, "actor_ids"]
            for a in ids
        }
    )[:20]
    post_authors = dict(
        zip(snapshot.posts.post_ids.tolist(), snapshot.posts.author_ids.tolist(), strict=True)
    )
    posts = [p for p, a in post_authors.items() if a in set(authors)][:200]
    changes = live.state.changes
    assert changes is not None

    @hypothesis_settings(
        max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    @given(steps=scenarios(viewers, sorted(set(authors)), posts))
    def run(steps: list[dict]) -> None:
        reset(live)
        rules = rules_of(live)
        cursors: dict[int, str] = {}
        for step in steps:
            if "cursor_for" in step:
                viewer = step["cursor_for"]
                page = get(live, f"/v1/users/{viewer}/feed", limit=5)
                if page["next_cursor"]:
                    cursors[viewer] = page["next_cursor"]
                continue
            if "post" in step:
                post = step["post"]
                step = {
                    "event_type": "post_deleted",
                    "user_id": post_authors[post],
                    "post_id": post,
                }
            valid = rules.apply(step)
            reason = changes.apply_raw(dict(step), "property-test")
            assert (reason is None) == valid, (step, reason)
            for viewer in viewers[:2]:
                check_viewer(live, rules, viewer, cursors)

    try:
        run()
    finally:
        reset(live)


# --- bad input -----------------------------------------------------------------------------------


def test_bad_events_become_dead_letters_and_the_follower_goes_on(live: Live) -> None:
    reset(live)
    changes = live.state.changes
    assert changes is not None
    snapshot = live.state.snapshot
    assert snapshot is not None
    a, b = (int(u) for u in snapshot.users.index[:2])
    cases: dict[bytes | str, str] = {
        b"{not json": "not valid JSON",
        b"[1, 2]": "not a JSON object",
        json.dumps({"event_type": "block", "user_id": a, "target_user_id": a}): "oneself",
        json.dumps({"event_type": "block", "user_id": 10**15, "target_user_id": a}): "unknown user",
        json.dumps(
            {"event_type": "block", "user_id": a, "target_user_id": 10**15}
        ): "unknown target",
        json.dumps({"event_type": "unblock", "user_id": a, "target_user_id": b}): "no block",
        json.dumps({"event_type": "unmute", "user_id": a, "target_user_id": b}): "no mute",
        json.dumps({"event_type": "mute", "user_id": "x", "target_user_id": b}): "user_id",
        json.dumps({"event_type": "profile_updated", "user_id": a, "is_private": "yes"}): "boolean",
        json.dumps({"event_type": "post_deleted", "user_id": a}): "post_id",
    }
    before = changes.report.dead_letters
    for raw, expected in cases.items():
        reason = changes.apply_raw(raw, "bad-input-test")
        assert reason is not None and expected in reason, (raw, reason)
    assert changes.report.dead_letters - before == len(cases)
    # still working: a valid block is applied and honoured
    assert (
        changes.apply_raw({"event_type": "block", "user_id": a, "target_user_id": b}, "t") is None
    )
    assert snapshot.visibility.is_blocked_either_way(a, b)
    listed = live.client.get("/admin/visibility", headers=ADMIN).json()
    reasons = [d["reason"] for d in listed["latest_dead_letters"]]
    assert any("unblock with no block" in r for r in reasons)
    assert live.client.get("/admin/visibility", headers=AUTH).status_code == 403
    reset(live)


# --- the transports: landing files and Kafka -----------------------------------------------------


def blockable_pair(live: Live) -> tuple[int, int, int]:
    """A viewer, a followed author whose posts are on the viewer's first feed page, and how
    many of the page's items are theirs."""
    snapshot = live.state.snapshot
    assert snapshot is not None
    for viewer in snapshot.users.index:
        viewer = int(viewer)
        if len(live.original.follows(viewer)) < 3:
            continue
        items = get(live, f"/v1/users/{viewer}/feed", limit=20)["items"]
        pushed = [i["author_id"] for i in items if i["source"] in ("pushed", "pulled")]
        if pushed:
            return viewer, pushed[0], pushed.count(pushed[0])
    raise AssertionError("no viewer with a followed author on the first page")


def wait_until_hidden(live: Live, viewer: int, author: int, seconds: float = 10.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        items = get(live, f"/v1/users/{viewer}/feed", limit=20)["items"]
        if author not in {i["author_id"] for i in items}:
            return time.perf_counter() - started
        time.sleep(0.02)
    raise AssertionError(f"author {author} still in {viewer}'s feed after {seconds} s")


def test_landing_files_are_followed(live: Live, tmp_path: Path) -> None:
    reset(live)
    changes = live.state.changes
    assert changes is not None
    store = LocalObjectStore(tmp_path / "objects")
    follower = LandingFollower(changes, store, "landing/events", poll_seconds=0.05)
    follower.start()
    try:
        viewer, author, _ = blockable_pair(live)
        event = {
            "event_id": str(uuid.uuid4()),
            "event_type": "block",
            "user_id": viewer,
            "target_user_id": author,
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        key = file_key("landing/events", datetime.now(UTC), "block", uuid.uuid4().hex[:8])
        store.put(key, (json.dumps(event) + "\n").encode())
        assert wait_until_hidden(live, viewer, author) < 5.0
    finally:
        follower.stop()
        reset(live)


def test_kafka_changes_reach_the_next_response_in_seconds(live: Live, kafka_bootstrap: str) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    reset(live)
    changes = live.state.changes
    assert changes is not None
    topic = f"test-serving-visibility-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    follower = KafkaFollower(changes, kafka_bootstrap, [topic])
    follower.start()
    try:
        viewer, author, _ = blockable_pair(live)
        producer.send(topic, b"garbage that is not json")
        event = {"event_type": "mute", "user_id": viewer, "target_user_id": author}
        producer.send(topic, json.dumps(event).encode(), key=str(viewer).encode())
        producer.flush()
        assert wait_until_hidden(live, viewer, author) < 2.0
        assert any(d.source.startswith(topic) for d in changes.dead_letters)
    finally:
        follower.stop()
        producer.close()
        admin.delete_topics([topic])
        admin.close()
        reset(live)


# --- errors that tell the truth, and token scopes -----------------------------------------------

SCOPED_CALLS: dict[str, tuple[str, str, dict | None]] = {
    "feed": ("GET", "/v1/users/{v}/feed", None),
    "rank": ("POST", "/v1/rank", {"user_id": "{v}", "post_ids": [1, 2]}),
    "features": ("GET", "/v1/features/users/{v}", None),
    "recommendations": ("GET", "/v1/users/{v}/suggestions", None),
    "stories": ("GET", "/v1/users/{v}/stories", None),
    "notifications": ("GET", "/v1/users/{v}/notifications", None),
    "discovery": ("GET", "/v1/search/autocomplete?q=a&viewer_id={v}", None),
    "admin": ("GET", "/admin/visibility", None),
}


def call(live: Live, scope: str, viewer: int, token: str) -> int:
    method, path, template = SCOPED_CALLS[scope]
    body = None
    if template is not None:
        body = {k: (viewer if v == "{v}" else v) for k, v in template.items()}
    response = live.client.request(
        method,
        path.format(v=viewer),
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code


def test_each_scope_opens_only_its_endpoints(live: Live) -> None:
    snapshot = live.state.snapshot
    assert snapshot is not None
    viewer = int(snapshot.users.index[0])
    saved = dict(live.state.tokens)
    live.state.tokens.update({f"only-{s}": frozenset({s}) for s in SCOPED_CALLS})
    try:
        for granted in SCOPED_CALLS:
            for scope in SCOPED_CALLS:
                status = call(live, scope, viewer, f"only-{granted}")
                if scope == granted:  # 404: no online features for this user is fine here
                    assert status in (200, 404), (granted, scope, status)
                else:
                    assert status == 403, (granted, scope, status)
    finally:
        live.state.tokens.clear()
        live.state.tokens.update(saved)


def test_token_entries_are_parsed_with_their_scopes() -> None:
    from serving.auth import READ_SCOPES, TokenError

    table = ServingSettings(tokens="a,b:feed+rank", admin_tokens="z").token_scopes()
    assert table == {"a": READ_SCOPES, "b": frozenset({"feed", "rank"}), "z": frozenset({"admin"})}
    for bad in ("c:admin", "c:feeds", "c:feed+nope"):
        with pytest.raises(TokenError):
            ServingSettings(tokens=bad).token_scopes()
    with pytest.raises(TokenError, match="both"):
        ServingSettings(tokens="same", admin_tokens="same").token_scopes()


def test_a_bug_is_a_500_with_a_request_id_and_a_logged_trace(
    live: Live, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = live.state.snapshot
    assert snapshot is not None and live.state.recommenders is not None
    viewer = int(snapshot.users.index[0])

    def broken(*_: object) -> list:
        raise ZeroDivisionError("an injected bug")

    monkeypatch.setattr(live.state.recommenders, "suggest", broken)
    client = TestClient(live.client.app, raise_server_exceptions=False)
    with caplog.at_level("ERROR", logger="serving.errors"):
        response = client.get(
            f"/v1/users/{viewer}/suggestions", headers={**AUTH, "X-Request-ID": "trace-me-42"}
        )
    assert response.status_code == 500
    body = response.json()
    assert body["request_id"] == "trace-me-42" == response.headers["X-Request-ID"]
    assert "ZeroDivisionError" in body["detail"] and "injected" not in response.text
    logged = [r for r in caplog.records if "trace-me-42" in r.getMessage()]
    assert logged and logged[0].exc_info is not None, "the traceback must be logged"


def test_a_dependency_down_is_a_503_with_retry_after(live: Live) -> None:
    from featurestore.config import feature_store
    from serving.features import FeatureReaders

    snapshot = live.state.snapshot
    assert snapshot is not None and live.state.features is not None
    viewer = int(snapshot.users.index[0])
    live.state.features.close()  # the online store's connections are gone
    try:
        response = live.client.get(f"/v1/features/users/{viewer}", headers=AUTH)
        assert response.status_code == 503, response.text
        assert response.json()["component"] == "online_features"
        assert int(response.headers["Retry-After"]) > 0
        assert response.json()["request_id"] == response.headers["X-Request-ID"]
    finally:
        live.state.features = FeatureReaders.open(feature_store(live.state.settings))
        assert live.state.home_feed is not None
        live.state.home_feed.features = live.state.features  # the feed ranks with it too
    assert live.client.get(f"/v1/features/users/{viewer}", headers=AUTH).status_code == 200


def test_readyz_names_components_never_their_address(
    built_platform: BuiltPlatform, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = platform_settings(
        built_platform.work,
        FEED_STORE_URL=f"redis://reader:s3cret-pw@127.0.0.1:{port}/0",  # nothing listens
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    app = create_app(
        settings, ServingSettings(tokens=TOKEN, snapshot_refresh_seconds=0), background=False
    )
    with TestClient(app) as client:
        response = client.get("/readyz")
        assert response.json()["feed_store"] == "unavailable"
        assert "s3cret" not in response.text and str(port) not in response.text
        app.state.serving.snapshot = None  # as before the first load
        down = client.get("/v1/users/1/feed", headers=AUTH)
        assert down.status_code == 503 and down.headers["Retry-After"]
        assert down.json()["component"] == "snapshot"
        assert client.get("/readyz").status_code == 503
