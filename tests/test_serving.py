"""The serving API on a built platform: real chDB marts, real Feast online store (SQLite), the
real feed precompute into a SQLite feed store, a real (untrained) Keras ranker.

One app serves the whole module; tests that change its state (visibility graph, feed store)
restore it or use users nobody else looks at.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from platform_support import BuiltPlatform, platform_settings

from fanout import Push, open_feed_store
from fanout.precompute import load_snapshot as load_feed_snapshot
from fanout.precompute import write_feeds
from ml.ranking.model import RankerParams, build_model
from ml.ranking.preprocessing import Preprocessing, feature_columns
from ml.ranking.scorer import RankerScorer
from serving.app import create_app
from serving.model_loading import ModelHolder
from serving.schemas import RankResponse
from serving.settings import ServingSettings
from serving.state import ServingState
from visibility import VisibilityGraph
from warehouse import clickhouse_client

TOKEN = "serving-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADMIN_TOKEN = "serving-test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FEED = "/v1/users/{}/feed"


def tiny_ranker(built: BuiltPlatform, version: str, seed: int = 7) -> RankerScorer:
    """A real Keras ranker over the training set's features (untrained: the tests check the
    plumbing, the ranker's own tests check its quality)."""
    frame = built.training_set.frame
    spec = Preprocessing.fit(frame, feature_columns(frame))
    model = build_model(spec, RankerParams(hidden=(8,), seed=seed))
    return RankerScorer(spec, model, version=version)


@dataclass
class Served:
    client: TestClient
    state: ServingState
    built: BuiltPlatform
    feed_pull_min_followers: int


@pytest.fixture(scope="module")
def served(
    built_platform: BuiltPlatform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    work: Path = tmp_path_factory.mktemp("serving")
    with clickhouse_client(built_platform.settings.clickhouse_url) as client:
        counts = sorted(
            int(c)
            for (c,) in client.query(
                f"select ifNull(follower_count, 0) from {built_platform.marts}.dim_users"
            ).result_rows
        )
    threshold = max(counts[int(len(counts) * 0.97)], 1)  # the top ~3 % are celebrities here
    settings = platform_settings(
        built_platform.work,
        FEED_STORE_URL=f"sqlite:///{work / 'feeds.sqlite'}",
        FEED_PULL_MIN_FOLLOWERS=threshold,
        MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
    )
    with clickhouse_client(settings.clickhouse_url) as client:
        feed_snapshot = load_feed_snapshot(client, settings)
    with open_feed_store(settings) as store:
        write_feeds(store, feed_snapshot)
    scorer = tiny_ranker(built_platform, "test-ranker/1")
    app = create_app(
        settings,
        ServingSettings(
            tokens=f"other-token,{TOKEN}", admin_tokens=ADMIN_TOKEN, feed_snapshot_size=300
        ),
        models=ModelHolder(lambda: scorer.version, lambda _: scorer, initial=scorer),
        background=False,
    )
    with TestClient(app) as client:
        yield Served(client, app.state.serving, built_platform, threshold)


def snapshot_of(served: Served):
    snapshot = served.state.snapshot
    assert snapshot is not None
    return snapshot


def active_users(served: Served, minimum_follows: int = 3) -> list[int]:
    snapshot = snapshot_of(served)
    users = [
        int(u) for u in snapshot.users.index if len(snapshot.follows(int(u))) >= minimum_follows
    ]
    assert users, "the platform has no user following enough accounts"
    return users


# --- endpoints -------------------------------------------------------------------------------


def test_home_feed_is_ranked_from_followed_and_celebrity_posts(served: Served) -> None:
    snapshot = snapshot_of(served)
    rules = served.state.serving
    now = snapshot.clock.now().timestamp()
    checked = 0
    scores: set[float] = set()
    saw_pulled = False
    for user in active_users(served)[:15]:
        body = served.client.get(FEED.format(user), params={"limit": 50}, headers=AUTH).json()
        assert body["model_version"] == "test-ranker/1"
        assert not body["degraded"]
        items = body["items"]
        following = snapshot.follows(user)
        seen = snapshot.seen_posts.get(user, frozenset())
        for item in items:
            assert item["source"] in ("pushed", "pulled", "explore")
            if item["source"] in ("pushed", "pulled"):
                assert item["author_id"] in following
            if item["source"] == "pulled":
                assert item["author_id"] in snapshot.celebrities
                saw_pulled = True
            assert item["post_id"] not in snapshot.posts.deleted
            assert item["post_id"] not in seen
            assert item["author_id"] != user
            created = datetime.fromisoformat(item["created_at"]).timestamp()
            assert now - served.state.settings.feed_window_hours * 3600 <= created <= now + 1
        authors = [i["author_id"] for i in items]
        for i in range(len(authors) - rules.max_consecutive_per_author):
            window = authors[i : i + rules.max_consecutive_per_author + 1]
            assert len(set(window)) > 1 or all(a == window[0] for a in authors[i:]), (
                f"more than {rules.max_consecutive_per_author} in a row by {window[0]}"
            )
        checked += len(items)
        scores.update(round(i["score"], 9) for i in items)
    assert checked > 0
    assert len(scores) > 1, "the ranker gave every post the same score"
    assert saw_pulled, f"no celebrity post (>= {served.feed_pull_min_followers} followers) pulled"


def test_feed_explain_names_the_model_features(served: Served) -> None:
    user = active_users(served)[0]
    body = served.client.get(
        FEED.format(user), params={"limit": 5, "explain": "true"}, headers=AUTH
    ).json()
    assert body["items"]
    scorer = served.state.models.scorer
    for item in body["items"]:
        assert item["contributions"], "explain=true must give contributions"
        assert set(item["contributions"]) <= set(scorer.feature_names)


def test_feed_is_cached_until_the_users_feed_changes(served: Served) -> None:
    user = active_users(served)[1]
    first = served.client.get(FEED.format(user), headers=AUTH).json()
    again = served.client.get(FEED.format(user), headers=AUTH).json()
    assert again["cached"] is True
    assert [i["post_id"] for i in again["items"]] == [i["post_id"] for i in first["items"]]
    author = next(iter(snapshot_of(served).follows(user) - snapshot_of(served).celebrities))
    created = snapshot_of(served).clock.now() - timedelta(minutes=1)
    with open_feed_store(served.state.settings) as store:
        store.push_many(
            [Push(user, 8_000_000_000_000_000_001, author, int(created.timestamp() * 1000))]
        )
    try:
        after = served.client.get(FEED.format(user), params={"limit": 100}, headers=AUTH).json()
        assert after["cached"] is False
        assert 8_000_000_000_000_000_001 in [i["post_id"] for i in after["items"]]
    finally:  # the feed store is shared by the module: leave it as it was
        with open_feed_store(served.state.settings) as store:
            store.remove_post(8_000_000_000_000_000_001, author, [user])


def test_pages_never_repeat_and_stay_stable_when_a_post_arrives(served: Served) -> None:
    user = max(active_users(served), key=lambda u: len(snapshot_of(served).follows(u)))
    first = served.client.get(FEED.format(user), params={"limit": 7}, headers=AUTH).json()
    assert first["next_cursor"], "the test user needs more than one page"
    second = served.client.get(
        FEED.format(user), params={"limit": 7, "cursor": first["next_cursor"]}, headers=AUTH
    ).json()
    # a new post arrives: fresh requests see it, the open cursor keeps its snapshot
    author = next(iter(snapshot_of(served).follows(user) - snapshot_of(served).celebrities))
    created = snapshot_of(served).clock.now()
    with open_feed_store(served.state.settings) as store:
        store.push_many(
            [Push(user, 8_000_000_000_000_000_002, author, int(created.timestamp() * 1000))]
        )
    try:
        replay = served.client.get(
            FEED.format(user), params={"limit": 7, "cursor": first["next_cursor"]}, headers=AUTH
        ).json()
    finally:
        with open_feed_store(served.state.settings) as store:
            store.remove_post(8_000_000_000_000_000_002, author, [user])
    assert replay["items"] == second["items"]
    seen = [i["post_id"] for i in first["items"]]
    cursor = first["next_cursor"]
    pages = 1
    while cursor and pages < 40:
        page = served.client.get(
            FEED.format(user), params={"limit": 7, "cursor": cursor}, headers=AUTH
        ).json()
        assert [i["rank"] for i in page["items"]] == list(
            range(len(seen), len(seen) + len(page["items"]))
        )
        seen += [i["post_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        pages += 1
    assert len(seen) == len(set(seen)), "a post appeared on two pages"
    assert 8_000_000_000_000_000_002 not in seen
    fresh = served.client.get(FEED.format(user), params={"limit": 100}, headers=AUTH).json()
    assert fresh["cached"] is False


def test_new_user_gets_popular_and_trending_posts(served: Served) -> None:
    unknown = served.client.get(FEED.format(987_654_321), headers=AUTH)
    assert unknown.status_code == 404 and "unknown user" in unknown.json()["detail"]
    changes = served.state.changes
    assert changes is not None
    signup = {"event_type": "user_created", "user_id": 987_654_321, "is_private": False}
    assert changes.apply_raw(signup, "test") is None
    body = served.client.get(FEED.format(987_654_321), params={"limit": 10}, headers=AUTH).json()
    assert body["items"], "a brand-new user must get a feed"
    assert {i["source"] for i in body["items"]} == {"popular"}
    assert "new user" in body["reason"]


def test_rank_excludes_what_the_user_may_not_see(served: Served) -> None:
    snapshot = snapshot_of(served)
    user = active_users(served)[2]
    visible = snapshot.posts.post_ids[:40].tolist()
    deleted = sorted(snapshot.posts.deleted)[:2]
    response = served.client.post(
        "/v1/rank",
        json={"user_id": user, "post_ids": [*visible, visible[0], *deleted, 123], "explain": True},
        headers=AUTH,
    )
    # the plain-data fast path writes exactly what the `RankResponse` model would
    model = RankResponse.model_validate_json(response.content)
    assert response.content == model.model_dump_json().encode()
    body = response.json()
    assert body["model_version"] == "test-ranker/1"
    assert body["excluded"][0] == {"post_id": visible[0], "reason": "duplicate"}
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    reasons = {e["post_id"]: e["reason"] for e in body["excluded"]}
    assert reasons[123].startswith("unknown")
    for post in deleted:
        assert reasons[post] == "deleted"
    ranked = {i["post_id"] for i in body["items"]}
    assert ranked | {p for p, r in reasons.items() if r == "not visible to this user"} >= set(
        visible
    )
    assert all(i["contributions"] for i in body["items"])


def test_features_endpoints(served: Served) -> None:
    user = active_users(served)[0]
    body = served.client.get(f"/v1/features/users/{user}", headers=AUTH).json()
    assert body["features"]["user_follows__following_count"] == len(
        snapshot_of(served).follows(user)
    )
    post = int(snapshot_of(served).posts.post_ids[-1])
    author = int(snapshot_of(served).posts.author_ids[-1])
    body = served.client.get(
        f"/v1/features/posts/{post}", params={"viewer_id": author}, headers=AUTH
    ).json()
    assert body["author_id"] == author
    assert body["features"]["post_attributes__media_type"] in ("photo", "video", "carousel")
    missing = served.client.get("/v1/features/users/999999999", headers=AUTH)
    assert missing.status_code == 404 and "no online features" in missing.json()["detail"]


def test_suggestions_stories_notifications_trending_search(served: Served) -> None:
    snapshot = snapshot_of(served)
    user = active_users(served)[0]
    following = snapshot.follows(user)
    suggestions = served.client.get(f"/v1/users/{user}/suggestions", headers=AUTH).json()
    assert suggestions["items"]
    assert not {s["user_id"] for s in suggestions["items"]} & (following | {user})

    explore = served.client.get(f"/v1/users/{user}/explore", headers=AUTH).json()
    assert explore["items"] and not {i["author_id"] for i in explore["items"]} & following

    tags = served.client.get(f"/v1/users/{user}/suggested-hashtags", headers=AUTH)
    assert tags.status_code == 200 and tags.json()["items"], tags.text
    assert tags.json()["model_version"].startswith("hashtags/")

    places = served.client.get(f"/v1/users/{user}/suggested-locations", headers=AUTH)
    assert places.status_code == 200 and places.json()["items"], places.text
    assert places.json()["model_version"].startswith("locations/")
    known = dict(
        zip(snapshot.posts.location_ids.tolist(), snapshot.posts.location_names, strict=True)
    )
    for item in places.json()["items"]:
        assert item["location_id"] > 0 and known[item["location_id"]] == item["name"]

    now = snapshot.clock.now().timestamp()
    stories = served.client.get(
        f"/v1/users/{user}/stories", params={"limit": 100}, headers=AUTH
    ).json()
    unseen_flags = [a["has_unseen"] for a in stories["authors"]]
    assert unseen_flags == sorted(unseen_flags, reverse=True), "authors with unseen stories first"
    for author in stories["authors"]:
        assert author["author_id"] in following
        for story in author["stories"]:
            assert story["story_id"] in set(snapshot.stories["story_id"])
    live = snapshot.stories[
        (snapshot.stories["expires_ts"] > now)
        & snapshot.stories["author_id"].isin(list(following))
        & (snapshot.stories["created_ts"] <= now)
        & [snapshot.visibility.can_see_author(user, int(a)) for a in snapshot.stories["author_id"]]
    ]
    assert sum(len(a["stories"]) for a in stories["authors"]) == len(live)

    recipient = int(snapshot.digests["recipient_id"].value_counts().index[0])
    notes = served.client.get(
        f"/v1/users/{recipient}/notifications", params={"window_hours": 24 * 30}, headers=AUTH
    ).json()
    assert notes["items"]
    names = snapshot.users["username"]
    for note in notes["items"]:
        assert note["digest_id"].startswith(f"{recipient}:{note['kind']}:")
        others = {1: "", 2: " and 1 other"}.get(note["actors"], f" and {note['actors'] - 1} others")
        assert note["message"].startswith(f"{names.at[note['latest_actor_id']]}{others} ")

    trending = served.client.get("/v1/trending/hashtags", params={"hours": 48}, headers=AUTH).json()
    scores = [t["trending_score"] for t in trending["items"]]
    assert scores and scores == sorted(scores, reverse=True)

    name = str(snapshot.users["username"].iloc[0])
    found = served.client.get(
        "/v1/search/autocomplete", params={"q": name[:3], "viewer_id": user}, headers=AUTH
    ).json()
    assert found["items"]
    assert all(i["text"].lstrip("#").lower().startswith(name[:3].lower()) for i in found["items"])
    tag = served.client.get(
        "/v1/search/autocomplete",
        params={"q": "#" + trending["items"][0]["hashtag"][:2], "viewer_id": user},
        headers=AUTH,
    ).json()
    assert tag["items"] and {i["kind"] for i in tag["items"]} == {"hashtag"}


# --- auth, bad input, health ----------------------------------------------------------------


def test_tokens(served: Served) -> None:
    user = active_users(served)[0]
    assert served.client.get(FEED.format(user)).status_code == 401
    assert (
        served.client.get(FEED.format(user), headers={"Authorization": "Basic abc"}).status_code
        == 401
    )
    wrong = served.client.get(FEED.format(user), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "not accepted" in wrong.json()["detail"]
    other = served.client.get(FEED.format(user), headers={"Authorization": "Bearer other-token"})
    assert other.status_code == 200
    assert served.client.post("/admin/reload").status_code == 401
    # a service token never reaches admin endpoints, an admin token never serves traffic
    refused = served.client.post("/admin/reload", headers=AUTH)
    assert refused.status_code == 403 and "'admin' scope" in refused.json()["detail"]
    assert served.client.get(FEED.format(user), headers=ADMIN).status_code == 403
    for open_path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert served.client.get(open_path).status_code == 200, open_path


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/users/0/feed", {}, 422),
        ("/v1/users/-4/feed", {}, 422),
        ("/v1/users/abc/feed", {}, 422),
        ("/v1/users/99999999999999999999999/feed", {}, 422),
        ("/v1/users/{user}/feed", {"limit": 0}, 422),
        ("/v1/users/{user}/feed", {"limit": 5000}, 422),
        ("/v1/users/{user}/feed", {"limit": "many"}, 422),
        ("/v1/users/{user}/feed", {"cursor": "not-a-cursor!"}, 400),
        ("/v1/users/{user}/feed", {"cursor": "QUJDREVGR0hJSktMTU5PUFFSU1RVVg"}, 400),
        ("/v1/users/{user}/suggestions", {"limit": -1}, 422),
        ("/v1/users/{user}/notifications", {"window_hours": 0}, 422),
        ("/v1/search/autocomplete", {"viewer_id": "{user}"}, 422),
        ("/v1/search/autocomplete", {"q": "", "viewer_id": "{user}"}, 422),
        ("/v1/search/autocomplete", {"q": "a"}, 422),
        ("/v1/search/autocomplete", {"q": "a", "viewer_id": 987_654_320}, 404),
        ("/v1/features/posts/0", {"viewer_id": "{user}"}, 422),
        ("/v1/features/posts/5", {}, 422),
        ("/v1/users/987654320/feed", {}, 404),
        ("/v1/users/987654320/stories", {}, 404),
        ("/v1/users/987654320/notifications", {}, 404),
        ("/v1/users/987654320/suggestions", {}, 404),
        ("/v1/users/987654320/explore", {}, 404),
    ],
)
def test_bad_input_gets_4xx_with_a_message(
    served: Served, path: str, params: dict, status: int
) -> None:
    user = active_users(served)[0]
    params = {k: str(v).format(user=user) for k, v in params.items()}
    response = served.client.get(path.format(user=user), params=params, headers=AUTH)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_cursor_of_another_user_or_snapshot_is_refused(served: Served) -> None:
    a, b = active_users(served)[:2]
    page = served.client.get(FEED.format(a), params={"limit": 2}, headers=AUTH).json()
    assert page["next_cursor"]
    stolen = served.client.get(FEED.format(b), params={"cursor": page["next_cursor"]}, headers=AUTH)
    assert stolen.status_code == 400 and "another user" in stolen.json()["detail"]
    served.state.home_feed.snapshots.clear()  # type: ignore[union-attr]
    expired = served.client.get(
        FEED.format(a), params={"cursor": page["next_cursor"]}, headers=AUTH
    )
    assert expired.status_code == 410 and "first page" in expired.json()["detail"]


def test_bad_rank_bodies(served: Served) -> None:
    for body in (
        {"user_id": 1, "post_ids": []},
        {"user_id": 0, "post_ids": [1]},
        {"user_id": 1, "post_ids": list(range(1, 2_500))},
        {"user_id": 1, "post_ids": ["x"]},
        {"post_ids": [1]},
    ):
        response = served.client.post("/v1/rank", json=body, headers=AUTH)
        assert response.status_code == 422, body
    garbage = served.client.post(
        "/v1/rank", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert garbage.status_code == 422


def test_metrics_and_readiness(served: Served) -> None:
    served.client.get(FEED.format(active_users(served)[0]), headers=AUTH)
    text = served.client.get("/metrics").text
    assert 'serving_request_seconds_count{route="/v1/users/{user_id}/feed",status="2xx"}' in text
    assert 'serving_model_loaded{version="test-ranker/1"} 1.0' in text
    ready = served.client.get("/readyz").json()
    assert ready["ready"] and ready["feed_store"] == "ok" and ready["online_features"] == "ok"


def _stage_counts(text: str, endpoint: str) -> dict[str, float]:
    prefix = f'serving_stage_seconds_count{{endpoint="{endpoint}",stage="'
    return {
        line[len(prefix) :].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix)
    }


def test_metrics_time_each_stage_of_a_ranking(served: Served) -> None:
    user = active_users(served)[0]
    posts = [
        i["post_id"] for i in served.client.get(FEED.format(user), headers=AUTH).json()["items"]
    ]
    before = _stage_counts(served.client.get("/metrics").text, "rank")
    ranked = served.client.post("/v1/rank", json={"user_id": user, "post_ids": posts}, headers=AUTH)
    assert ranked.status_code == 200 and ranked.json()["model_version"] == "test-ranker/1"
    after = _stage_counts(served.client.get("/metrics").text, "rank")
    for name in ("features", "preprocessing", "scoring"):
        assert after[name] == before.get(name, 0.0) + 1, name


def test_admin_reload_rereads_the_snapshot(served: Served) -> None:
    before = snapshot_of(served).loaded_at
    body = served.client.post("/admin/reload", headers=ADMIN).json()
    assert body["model_version"] == "test-ranker/1"
    assert snapshot_of(served).loaded_at > before


# --- privacy ---------------------------------------------------------------------------------


@st.composite
def hidden_relations(draw: st.DrawFn, viewers: list[int], authors: list[int]) -> dict:
    """Blocks (both directions), mutes and private accounts among the viewers' followed and
    popular authors, where a leak would show."""
    pick = st.sampled_from(authors)
    blocks = draw(st.lists(st.tuples(st.sampled_from(viewers), pick), max_size=12))
    blocked_by = draw(st.lists(st.tuples(pick, st.sampled_from(viewers)), max_size=12))
    mutes = draw(st.lists(st.tuples(st.sampled_from(viewers), pick), max_size=12))
    private = draw(st.sets(pick, max_size=25))
    return {"blocks": blocks + blocked_by, "mutes": mutes, "private": private}


def forbidden_authors(viewer: int, follows: dict[int, set[int]], relations: dict) -> set[int]:
    """Written from the rules, not from VisibilityGraph: blocked either way, muted, or private
    and not followed."""
    hidden = {b for a, b in relations["blocks"] if a == viewer}
    hidden |= {a for a, b in relations["blocks"] if b == viewer}
    hidden |= {b for a, b in relations["mutes"] if a == viewer}
    hidden |= set(relations["private"]) - follows.get(viewer, set()) - {viewer}
    return hidden - {viewer}


def test_no_leaks_in_feed_explore_suggestions_stories_rank(served: Served) -> None:
    snapshot = snapshot_of(served)
    original = snapshot.visibility
    viewers = active_users(served)[:6]
    follows = {v: snapshot.follows(v) for v in viewers}
    edges = original.follow_edges()
    popular = snapshot.users["follower_count"].sort_values(ascending=False).index[:30]
    authors = sorted({a for v in viewers for a in follows[v]} | {int(a) for a in popular})
    deleted = sorted(snapshot.posts.deleted)

    @hypothesis_settings(
        max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    @given(relations=hidden_relations(viewers, authors))
    def check(relations: dict) -> None:
        graph = VisibilityGraph.from_edges(
            follows=edges.itertuples(index=False, name=None),
            blocks=relations["blocks"],
            mutes=relations["mutes"],
            private_users=relations["private"],
            deleted_posts=deleted,
        )
        snapshot.visibility = graph
        served.state.home_feed.invalidate()  # type: ignore[union-attr]
        for viewer in viewers:
            forbidden = forbidden_authors(viewer, follows, relations)
            # a stale precomputed feed still holding posts of hidden authors must not leak them
            stale = [
                Push(
                    viewer,
                    int(snapshot.posts.post_ids[r]),
                    a,
                    int(snapshot.posts.created_ts[r] * 1000),
                )
                for a in list(forbidden)[:5]
                for r in snapshot.posts.by_author.get(a, np.zeros(0, dtype="int64"))[:2]
            ]
            if stale:
                with open_feed_store(served.state.settings) as store:
                    store.push_many(stale)
            feed = served.client.get(
                FEED.format(viewer), params={"limit": 100}, headers=AUTH
            ).json()
            explore = served.client.get(
                f"/v1/users/{viewer}/explore", params={"limit": 100}, headers=AUTH
            ).json()
            stories = served.client.get(
                f"/v1/users/{viewer}/stories", params={"limit": 100}, headers=AUTH
            ).json()
            shown = {i["author_id"] for i in feed["items"] + explore["items"]}
            shown |= {a["author_id"] for a in stories["authors"]}
            assert not shown & forbidden, f"viewer {viewer} saw {shown & forbidden}"
            candidates = [
                int(snapshot.posts.post_ids[r])
                for a in forbidden
                for r in snapshot.posts.by_author.get(a, [])[:3]
            ]
            candidates += [int(p) for p in snapshot.posts.post_ids[:5]]
            ranked = served.client.post(
                "/v1/rank", json={"user_id": viewer, "post_ids": candidates}, headers=AUTH
            ).json()
            assert not {i["author_id"] for i in ranked["items"]} & forbidden
            suggested = served.client.get(
                f"/v1/users/{viewer}/suggestions", params={"limit": 100}, headers=AUTH
            ).json()
            barred = {b for a, b in relations["blocks"] if a == viewer}
            barred |= {a for a, b in relations["blocks"] if b == viewer}
            barred |= {b for a, b in relations["mutes"] if a == viewer} | follows[viewer] | {viewer}
            assert not {s["user_id"] for s in suggested["items"]} & barred

    with open_feed_store(served.state.settings) as store:
        saved = {v: store.read(v, 100_000) for v in viewers}
    try:
        check()
    finally:  # the stale entries pushed above must not leak into other tests' feeds
        snapshot.visibility = original
        served.state.home_feed.invalidate()  # type: ignore[union-attr]
        with open_feed_store(served.state.settings) as store:
            for viewer, entries in saved.items():
                store.replace_feed(viewer, entries)


def test_service_does_not_hold_the_chdb_directory(served: Served) -> None:
    """While the API runs, another process (dbt, Dagster) can open the embedded warehouse."""
    import subprocess
    import sys

    code = (
        "from warehouse import clickhouse_client\n"
        f"with clickhouse_client({served.state.settings.clickhouse_url!r}) as c:\n"
        "    print(c.query('select count() from system.databases').result_rows[0][0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip().splitlines()[-1]) > 0
    assert served.client.get("/readyz").json()["ready"]
