"""`/v1/search` and `/v1/search/autocomplete` on a built platform: the index built from the real
marts by the batch build, served by the real app; privacy checked by a property test over
generated blocks, mutes, private accounts and deleted posts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from platform_support import BuiltPlatform, platform_settings

from search.build import build_from_marts
from serving.app import create_app
from serving.model_loading import ModelHolder
from serving.settings import ServingSettings
from serving.state import ServingState
from visibility import VisibilityGraph

TOKEN = "search-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WORDS = ["golden", "weekend", "coffee", "memories", "view", "day", "sunset", "beach"]


@dataclass
class Served:
    client: TestClient
    state: ServingState
    documents: dict[str, int]


@pytest.fixture(scope="module")
def served(built_platform: BuiltPlatform) -> Iterator[Served]:
    settings = platform_settings(built_platform.work)
    report = build_from_marts(settings)
    app = create_app(
        settings,
        ServingSettings(tokens=TOKEN),
        models=ModelHolder(lambda: None, lambda _: None, initial=None),  # type: ignore[arg-type,return-value]
        background=False,
    )
    with TestClient(app) as client:
        yield Served(client, app.state.serving, report.documents)


def _search(served: Served, **params: Any) -> Any:
    response = served.client.get("/v1/search", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_batch_build_indexed_the_marts(served: Served) -> None:
    snapshot = served.state.snapshot
    assert snapshot is not None
    assert served.documents["users"] == len(snapshot.users)
    assert served.documents["posts"] >= len(snapshot.posts.post_ids)
    assert served.documents["hashtags"] > 0 and served.documents["locations"] > 0


def test_search_posts_users_hashtags_locations(served: Served) -> None:
    posts = _search(served, q="golden hour", limit=5)
    assert posts["items"] and all(i["kind"] == "post" for i in posts["items"])
    assert all("golden" in i["text"].lower() or "hour" in i["text"].lower() for i in posts["items"])
    snapshot = served.state.snapshot
    assert snapshot is not None
    name = str(snapshot.users["username"].iloc[0])
    users = _search(served, q=name, type="users")
    assert name in [i["text"] for i in users["items"]]
    tag = str(snapshot.hashtags.nlargest(1, "total_posts")["hashtag"].iloc[0])
    assert _search(served, q=f"#{tag}", type="hashtags")["items"][0]["text"] == f"#{tag}"
    typo = tag[:2] + tag[3] + tag[2] + tag[4:]  # two letters swapped: one edit
    assert f"#{tag}" in [i["text"] for i in _search(served, q=typo, type="hashtags")["items"]]
    places = _search(served, q="paris", type="locations")["items"]
    assert places and places[0]["text"].startswith("Paris")


def test_filters_and_pagination(served: Served) -> None:
    first = _search(served, q="golden weekend coffee", limit=5)
    assert first["next_cursor"]
    second = _search(served, q="golden weekend coffee", limit=5, cursor=first["next_cursor"])
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 10
    assert [i["score"] for i in first["items"] + second["items"]] == sorted(
        (i["score"] for i in first["items"] + second["items"]), reverse=True
    )
    author = first["items"][0]["author_id"]
    mine = _search(served, q="golden weekend coffee", author_id=author, limit=50)["items"]
    assert mine and {i["author_id"] for i in mine} == {author}
    at = first["items"][0]["created_at"]
    since = _search(served, q="golden weekend coffee", since=at, limit=50)["items"]
    assert since and all(i["created_at"] >= at for i in since)
    paris = _search(served, q="golden weekend coffee", location_id=6889842, limit=50)["items"]
    assert all(i["location_id"] == 6889842 for i in paris)
    other = served.client.get(
        "/v1/search", params={"q": "coffee", "cursor": first["next_cursor"]}, headers=AUTH
    )
    assert other.status_code == 422 and "another query" in other.json()["detail"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"q": ""}, 422),
        ({"q": "   "}, 422),
        ({"q": "?!.,;"}, 422),
        ({"q": "x" * 257}, 422),
        ({"q": "coffee", "type": "stories"}, 422),
        ({"q": "coffee", "viewer_id": 0}, 422),
        ({"q": "coffee", "since": "2026-11-21", "until": "2026-11-20"}, 422),
        ({"q": "coffee", "cursor": "not-a-cursor"}, 422),
        ({"q": "coffee", "limit": 0}, 422),
        ({"q": '"coffee'}, 200),
        ({"q": "caption:coffee"}, 200),
        ({"q": "coff*"}, 200),
        ({"q": "coffee~3"}, 200),
        ({"q": "((coffee"}, 200),
        ({"q": "coffee) OR (1=1"}, 200),
        ({"q": "x" * 256}, 422),  # one word longer than any indexable term (40)
        ({"q": "coffee " * 36}, 200),
    ],
)
def test_bad_input_is_a_4xx_or_a_literal_match(
    served: Served, params: dict[str, Any], status: int
) -> None:
    response = served.client.get("/v1/search", params=params, headers=AUTH)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["detail"]


def test_autocomplete_hides_accounts_blocked_either_way(served: Served) -> None:
    snapshot = served.state.snapshot
    assert snapshot is not None
    top = snapshot.users.sort_values("follower_count", ascending=False)
    name, user = str(top["username"].iloc[0]), int(top.index[0])
    viewer = int(top.index[-1])
    found = served.client.get(
        "/v1/search/autocomplete", params={"q": name, "viewer_id": viewer}, headers=AUTH
    ).json()
    assert user in [i["id"] for i in found["items"]]
    original = snapshot.visibility
    snapshot.visibility = VisibilityGraph.from_edges(blocks=[(user, viewer)])
    try:
        for q in (name, name[:2], f"@{name[:3]}"):
            hidden = served.client.get(
                "/v1/search/autocomplete", params={"q": q, "viewer_id": viewer}, headers=AUTH
            ).json()
            assert user not in [i["id"] for i in hidden["items"]]
        users = _search(served, q=name, type="users", viewer_id=viewer)
        assert user not in [i["id"] for i in users["items"]]
    finally:
        snapshot.visibility = original


# --- privacy, property-based -------------------------------------------------------------------


def test_search_never_leaks_hidden_private_or_deleted_content(served: Served) -> None:
    snapshot = served.state.snapshot
    assert snapshot is not None
    original = snapshot.visibility
    edges = list(original.follow_edges().itertuples(index=False, name=None))
    results = {w: _search(served, q=w, limit=50)["items"] for w in WORDS}
    authors = sorted({i["author_id"] for items in results.values() for i in items})
    posts = sorted({i["id"] for items in results.values() for i in items})
    assert len(authors) >= 5 and len(posts) >= 20, "too little matched to test privacy"
    viewers = authors[:4] + [int(u) for u in snapshot.users.index[:4]]

    @st.composite
    def relations(draw: st.DrawFn) -> dict[str, Any]:
        pick = st.sampled_from(authors)
        return {
            "blocks": draw(st.lists(st.tuples(st.sampled_from(viewers), pick), max_size=10))
            + draw(st.lists(st.tuples(pick, st.sampled_from(viewers)), max_size=10)),
            "mutes": draw(st.lists(st.tuples(st.sampled_from(viewers), pick), max_size=6)),
            "private": draw(st.sets(pick, max_size=len(authors) // 2)),
            "deleted": draw(st.sets(st.sampled_from(posts), max_size=len(posts) // 3)),
        }

    @hypothesis_settings(
        max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    @given(rel=relations(), viewer=st.sampled_from(viewers), word=st.sampled_from(WORDS))
    def check(rel: dict[str, Any], viewer: int, word: str) -> None:
        graph = VisibilityGraph.from_edges(
            follows=edges,
            blocks=rel["blocks"],
            mutes=rel["mutes"],
            private_users=rel["private"],
            deleted_posts=rel["deleted"],
        )
        snapshot.visibility = graph
        follows = {b for a, b in edges if a == viewer}
        # the rules, written out rather than asked of VisibilityGraph
        blocked = {b for a, b in rel["blocks"] if a == viewer}
        blocked |= {a for a, b in rel["blocks"] if b == viewer}
        forbidden = blocked | {b for a, b in rel["mutes"] if a == viewer}
        forbidden |= set(rel["private"]) - follows
        forbidden -= {viewer}
        items = _search(served, q=word, viewer_id=viewer, limit=100)["items"]
        assert not {i["author_id"] for i in items} & forbidden
        assert not {i["id"] for i in items} & set(rel["deleted"])
        users = _search(served, q=word, type="users", viewer_id=viewer, limit=100)["items"]
        assert not {i["id"] for i in users} & (blocked - {viewer})
        logged_out = _search(served, q=word, limit=100)["items"]
        assert not {i["author_id"] for i in logged_out} & set(rel["private"])

    try:
        check()
    finally:
        snapshot.visibility = original
