"""A post hidden by moderation reaches no endpoint, seconds after the decision.

One app on a built platform (real chDB marts, the real feed precompute, the search index built
from the marts), as in `test_serving_privacy`. Posts that each endpoint shows are hidden by a
`post_moderated` decision through the change follower's entry point (and once through a real
landing file); then the home feed, a cursor page issued before the decision, Explore, rank,
post features, notifications, search (logged in and out), hashtag and location suggestions must
all leave them out. Trending reads `fct_hashtag_trends`, whose dbt unit test covers the same rule.
Stories take the same path (`story_moderated`): the stories tray must leave a hidden story out,
for its followers and its author alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from platform_support import BuiltPlatform, platform_settings

from fanout import open_feed_store
from fanout.precompute import load_snapshot as load_feed_snapshot
from fanout.precompute import write_feeds
from moderation.decisions import decision_events, publish
from objectstore.store import LocalObjectStore
from search.build import build_from_marts
from serving.app import create_app
from serving.settings import ServingSettings
from serving.snapshot import ServingSnapshot
from serving.state import ServingState
from serving.visibility_follower import LandingFollower, VisibilityChanges
from visibility import VisibilityGraph
from warehouse import clickhouse_client

TOKEN = "moderation-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WORDS = ["golden", "weekend", "coffee", "memories", "sunset", "beach"]


@dataclass
class Served:
    client: TestClient
    state: ServingState

    @property
    def snapshot(self) -> ServingSnapshot:
        assert self.state.snapshot is not None
        return self.state.snapshot

    @property
    def changes(self) -> VisibilityChanges:
        assert self.state.changes is not None
        return self.state.changes


@pytest.fixture(scope="module")
def served(
    built_platform: BuiltPlatform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    work: Path = tmp_path_factory.mktemp("moderation")
    settings = platform_settings(
        built_platform.work,
        FEED_STORE_URL=f"sqlite:///{work / 'feeds.sqlite'}",
        MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
    )
    with clickhouse_client(settings.clickhouse_url) as client:
        snapshot = load_feed_snapshot(client, settings)
    with open_feed_store(settings) as store:
        write_feeds(store, snapshot)
    build_from_marts(settings)
    app = create_app(
        settings,
        ServingSettings(tokens=TOKEN, snapshot_refresh_seconds=0),
        background=False,
    )
    with TestClient(app) as client:
        yield Served(client, app.state.serving)


def get(served: Served, path: str, **params: Any) -> Any:
    response = served.client.get(path, params=params, headers=AUTH)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


def author_of(served: Served, post: int) -> int:
    posts = served.snapshot.posts
    return int(posts.author_ids[posts.index[post]])


def moderate(served: Served, posts: dict[int, int], hidden: bool = True) -> None:
    """Apply a moderation decision to each post (post -> its author)."""
    for post, author in sorted(posts.items()):
        event = {
            "event_type": "post_moderated",
            "user_id": author,
            "post_id": post,
            "is_hidden": hidden,
        }
        assert served.changes.apply_raw(event, "moderation-test") is None


def moderate_stories(served: Served, stories: dict[int, int], hidden: bool = True) -> None:
    """Apply a moderation decision to each story (story -> its author)."""
    for story, author in sorted(stories.items()):
        event = {
            "event_type": "story_moderated",
            "user_id": author,
            "story_id": story,
            "is_hidden": hidden,
        }
        assert served.changes.apply_raw(event, "moderation-test") is None


def restore(served: Served) -> None:
    user = int(served.snapshot.users.index[0])  # any known user: restoring needs no author
    graph = served.snapshot.visibility
    moderate(served, dict.fromkeys(graph.moderated_posts(), user), False)
    moderate_stories(served, dict.fromkeys(graph.moderated_stories(), user), False)


def tray(served: Served, viewer: int) -> dict[int, int]:
    """Story -> author of every story in the viewer's tray."""
    body = get(served, f"/v1/users/{viewer}/stories", limit=100)
    return {s["story_id"]: a["author_id"] for a in body["authors"] for s in a["stories"]}


def story_viewer(served: Served) -> tuple[int, dict[int, int]]:
    """A viewer whose tray shows stories of at least two authors, and that tray."""
    for user in served.snapshot.users.index[:300]:
        shown = tray(served, int(user))
        if len(set(shown.values())) >= 2:
            return int(user), shown
    raise AssertionError("no viewer with stories of two authors in the tray")


def busy_viewer(served: Served) -> int:
    """A viewer with a full first feed page from followed authors, and a second page."""
    graph = served.snapshot.visibility
    for user in served.snapshot.users.index:
        viewer = int(user)
        if len(graph.follows(viewer)) < 3:
            continue
        page = get(served, f"/v1/users/{viewer}/feed", limit=10)
        if page["next_cursor"] and any(i["source"] in ("pushed", "pulled") for i in page["items"]):
            return viewer
    raise AssertionError("no viewer with two feed pages")


def posts_tagged(served: Served, hashtag: str) -> set[int]:
    posts = served.snapshot.posts
    tags = posts.frame["hashtags"].to_numpy()
    return {
        int(posts.post_ids[row])
        for row in range(len(tags))
        if tags[row] is not None and hashtag in {str(t).lower().lstrip("#") for t in tags[row]}
    }


def posts_located(served: Served, location: int) -> set[int]:
    posts = served.snapshot.posts
    return {int(p) for p in posts.post_ids[np.asarray(posts.location_ids) == location]}


def notified_post(served: Served) -> tuple[int, int]:
    """(recipient, post) of a digest about a post that the recipient is shown."""
    digests = served.snapshot.digests
    with_post = digests[
        digests["post_id"].notna() & digests["post_id"].isin(served.snapshot.posts.index)
    ]
    for recipient in with_post["recipient_id"].astype(int).unique()[:50].tolist():
        notes = get(served, f"/v1/users/{recipient}/notifications", limit=100, window_hours=24 * 30)
        for note in notes["items"]:
            if note["post_id"] is not None:
                return recipient, int(note["post_id"])
    raise AssertionError("no notification about a post")


def test_moderated_posts_reach_no_endpoint(served: Served) -> None:
    restore(served)
    viewer = busy_viewer(served)
    first = get(served, f"/v1/users/{viewer}/feed", limit=10)
    cursor = first["next_cursor"]
    second = get(served, f"/v1/users/{viewer}/feed", limit=10, cursor=cursor)
    explore = get(served, f"/v1/users/{viewer}/explore", limit=30)
    found = {w: get(served, "/v1/search", q=w, limit=20)["items"] for w in WORDS}
    searched = {
        i["id"]: i["author_id"] for items in found.values() for i in items if i["kind"] == "post"
    }
    assert searched, "search found no posts to hide"
    recipient, noted = notified_post(served)
    tags = get(served, f"/v1/users/{viewer}/suggested-hashtags", limit=5)["items"]
    places = get(served, f"/v1/users/{viewer}/suggested-locations", limit=5)["items"]
    assert tags and places and explore["items"] and second["items"]
    tag, place = tags[0]["hashtag"].lstrip("#"), places[0]["location_id"]

    feed_posts = {i["post_id"] for i in first["items"]} | {i["post_id"] for i in second["items"]}
    explore_posts = {i["post_id"] for i in explore["items"]}
    tagged, located = posts_tagged(served, tag), posts_located(served, place)
    assert tagged and located
    shown = feed_posts | explore_posts | {noted} | tagged | located
    decisions = {p: author_of(served, p) for p in shown} | searched
    hidden = set(decisions)
    moderate(served, decisions)
    try:
        leaks: list[tuple[str, int]] = []
        page = get(served, f"/v1/users/{viewer}/feed", limit=10)
        leaks += [("feed", i["post_id"]) for i in page["items"] if i["post_id"] in hidden]
        old = get(served, f"/v1/users/{viewer}/feed", limit=10, cursor=cursor)
        leaks += [("cursor page", i["post_id"]) for i in old["items"] if i["post_id"] in hidden]
        again = get(served, f"/v1/users/{viewer}/explore", limit=30)
        leaks += [("explore", i["post_id"]) for i in again["items"] if i["post_id"] in hidden]
        for word in WORDS:
            for viewer_id in (viewer, None):
                params = {"q": word, "limit": 50} | ({"viewer_id": viewer_id} if viewer_id else {})
                items = get(served, "/v1/search", **params)["items"]
                leaks += [("search", i["id"]) for i in items if i["id"] in hidden]
        ranked = served.client.post(
            "/v1/rank", json={"user_id": viewer, "post_ids": sorted(feed_posts)}, headers=AUTH
        ).json()
        leaks += [("rank", i["post_id"]) for i in ranked["items"]]
        for post in sorted(feed_posts)[:3]:
            response = served.client.get(
                f"/v1/features/posts/{post}", params={"viewer_id": viewer}, headers=AUTH
            )
            if response.status_code != 404:
                leaks.append(("features", post))
        notes = get(served, f"/v1/users/{recipient}/notifications", limit=100, window_hours=24 * 30)
        leaks += [("notifications", n["post_id"]) for n in notes["items"] if n["post_id"] in hidden]
        assert not leaks, leaks[:10]
        now_tags = get(served, f"/v1/users/{viewer}/suggested-hashtags", limit=50)["items"]
        assert tag not in {t["hashtag"].lstrip("#") for t in now_tags}
        now_places = get(served, f"/v1/users/{viewer}/suggested-locations", limit=50)["items"]
        assert place not in {p["location_id"] for p in now_places}
        assert served.snapshot.visibility.is_withheld(noted)
    finally:
        restore(served)
    post = sorted(feed_posts)[0]
    back = served.client.get(
        f"/v1/features/posts/{post}", params={"viewer_id": viewer}, headers=AUTH
    )
    assert back.status_code == 200, "a restored post is visible again"


def test_moderated_stories_reach_no_tray(served: Served) -> None:
    restore(served)
    viewer, shown = story_viewer(served)
    author = sorted(set(shown.values()))[0]
    hidden = {story: a for story, a in shown.items() if a == author}
    kept = {story: a for story, a in shown.items() if a != author}
    moderate_stories(served, hidden)
    try:
        now = tray(served, viewer)
        assert not set(now) & set(hidden), "a moderated story is still in the tray"
        assert set(kept) <= set(now), "other authors' stories must stay"
        assert author not in set(now.values()), "an author with only hidden stories drops out"
        for follower in sorted(served.snapshot.visibility.followers(author))[:20]:
            assert not set(tray(served, follower)) & set(hidden), ("follower", follower)
        assert not served.snapshot.visibility.can_see_story(author, min(hidden), author)
    finally:
        restore(served)
    assert set(hidden) <= set(tray(served, viewer)), "restored stories come back"


def test_bad_moderation_decisions_are_dead_letters(served: Served) -> None:
    user = int(served.snapshot.users.index[0])
    cases = {
        json.dumps({"event_type": "post_moderated", "user_id": user}): "post_id",
        json.dumps(
            {"event_type": "post_moderated", "user_id": user, "post_id": 5, "is_hidden": "yes"}
        ): "is_hidden",
        json.dumps({"event_type": "post_moderated", "user_id": 10**15, "post_id": 5}): "unknown",
        json.dumps({"event_type": "story_moderated", "user_id": user}): "story_id",
        json.dumps(
            {"event_type": "story_moderated", "user_id": user, "story_id": -3, "is_hidden": True}
        ): "story_id",
        json.dumps(
            {"event_type": "story_moderated", "user_id": user, "story_id": 5, "is_hidden": 1}
        ): "is_hidden",
        "{not json": "",
    }
    for raw, expected in cases.items():
        reason = served.changes.apply_raw(raw, "bad-moderation")
        assert reason is not None and expected in reason, (raw, reason)
    assert not served.snapshot.visibility.is_moderated(5)
    assert not served.snapshot.visibility.is_story_moderated(5)


def test_a_decision_published_by_the_media_pipeline_hides_the_post_in_seconds(
    served: Served, tmp_path: Path
) -> None:
    """The media pipeline's path: `decision_events` of its rows, `publish`ed as a file under
    the decisions' prefix, read by the follower the API starts on that prefix."""
    restore(served)
    viewer = busy_viewer(served)
    post = get(served, f"/v1/users/{viewer}/feed", limit=10)["items"][0]["post_id"]
    store = LocalObjectStore(tmp_path / "objects")
    prefix = platform_settings(tmp_path).moderation_decisions_prefix
    follower = LandingFollower(served.changes, store, prefix, poll_seconds=0.05)
    follower.start()
    try:
        row = {"post_id": post, "user_id": author_of(served, post), "nsfw_score": 0.93}
        events = decision_events([row, {**row, "nsfw_score": 0.7}])
        assert [(e["post_id"], e["reason"]) for e in events] == [(post, "nsfw_score 0.93 >= 0.6")]
        started = time.perf_counter()
        assert len(publish(store, prefix, events)) == 1
        while time.perf_counter() - started < 10:
            items = get(served, f"/v1/users/{viewer}/feed", limit=10)["items"]
            if post not in {i["post_id"] for i in items}:
                break
            time.sleep(0.02)
        assert time.perf_counter() - started < 5.0, "still shown 5 s after the decision"
    finally:
        follower.stop()
        restore(served)


def test_only_posts_at_or_above_the_threshold_are_decided() -> None:
    rows: list[dict[str, Any]] = [
        {"post_id": 1, "user_id": 7, "nsfw_score": 0.6},
        {"post_id": 2, "user_id": 7, "nsfw_score": 0.59},
        {"post_id": None, "story_id": 3, "user_id": 7, "nsfw_score": 0.99},  # a story's media
        {"post_id": 4, "user_id": 8, "nsfw_score": None},  # a video: no score
    ]
    decided = decision_events(rows)
    assert [(e["event_type"], e.get("post_id"), e.get("story_id")) for e in decided] == [
        ("post_moderated", 1, None),
        ("story_moderated", None, 3),
    ]
    assert decision_events(rows, threshold=0.5)[1]["post_id"] == 2
    assert publish(LocalObjectStore(Path("/nonexistent")), "p", []) == []


def test_a_published_story_decision_leaves_the_tray_in_seconds(
    served: Served, tmp_path: Path
) -> None:
    """A story's media row (story_id set, post_id null) becomes a `story_moderated` file of
    its own that the follower applies."""
    restore(served)
    viewer, shown = story_viewer(served)
    story, author = sorted(shown.items())[0]
    store = LocalObjectStore(tmp_path / "objects")
    prefix = platform_settings(tmp_path).moderation_decisions_prefix
    follower = LandingFollower(served.changes, store, prefix, poll_seconds=0.05)
    follower.start()
    try:
        row = {"post_id": None, "story_id": story, "user_id": author, "nsfw_score": 0.8}
        keys = publish(store, prefix, decision_events([row]))
        assert len(keys) == 1 and "event_type=story_moderated" in keys[0]
        started = time.perf_counter()
        while time.perf_counter() - started < 10 and story in tray(served, viewer):
            time.sleep(0.02)
        assert time.perf_counter() - started < 5.0, "still in the tray 5 s after the decision"
    finally:
        follower.stop()
        restore(served)


def test_the_snapshot_loads_moderated_stories_from_the_marts(
    built_platform: BuiltPlatform,
) -> None:
    """`fct_story_views.is_moderation_hidden` is what the graph reads at every load (its rule:
    the dbt unit test fct_story_views_moderation)."""
    settings = platform_settings(built_platform.work)
    with clickhouse_client(settings.clickhouse_url) as client:
        graph = VisibilityGraph.from_clickhouse(client, settings)
        flagged = client.query(
            f"select count() from {settings.marts_database}.fct_story_views"
            " where is_moderation_hidden"
        ).result_rows[0][0]
    assert len(graph.moderated_stories()) == flagged


def test_the_graph_loads_moderated_posts_and_withholds_them() -> None:
    graph = VisibilityGraph.from_edges(follows=[(1, 2)], moderated_posts=[10])
    assert not graph.can_see_post(1, 10, 2) and graph.can_see_post(1, 11, 2)
    assert not graph.can_see_post(2, 10, 2), "hidden from its author too"
    assert not graph.post_checker(1)(10, 2) and graph.post_checker(1)(11, 2)
    mask = graph.visible_posts_mask(1, np.array([10, 11]), np.array([2, 2]))
    assert mask.tolist() == [False, True]
    assert graph.is_withheld(10) and not graph.is_deleted(10)
    graph.moderate_post(10, hidden=False)
    assert graph.can_see_post(1, 10, 2)


def test_the_graph_withholds_moderated_stories() -> None:
    graph = VisibilityGraph.from_edges(follows=[(1, 2)], moderated_stories=[30])
    assert not graph.can_see_story(1, 30, 2) and graph.can_see_story(1, 31, 2)
    assert not graph.can_see_story(2, 30, 2), "hidden from its author too"
    mask = graph.visible_stories_mask(1, np.array([30, 31, 32]), np.array([2, 2, 3]))
    assert mask.tolist() == [False, True, True]
    assert not graph.is_withheld(30), "a story id is not a post id"
    graph.moderate_story(30, hidden=False)
    assert graph.can_see_story(1, 30, 2) and not graph.moderated_stories()
