"""Search on a real tantivy index and a real OpenSearch node (the engine-level tests run on
both): matching, fuzziness, filters, ranking, privacy, bad input, and the streaming indexer (in
process and through a real Kafka, with Redis autocomplete)."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka_support import create_topics, wait_for

from search.autocomplete import Completion, RedisAutocomplete
from search.documents import HashtagDoc, Kind, LocationDoc, PostDoc, UserDoc
from search.engine import Filters, SearchEngine
from search.indexer import IndexerConsumer, IndexerReport, apply_events, make_consumer
from search.query import QueryError, parse_query
from search.ranking import BM25_ONLY, RECENCY_ONLY
from search.service import SearchService
from search.tantivy_engine import TantivyEngine
from visibility import VisibilityGraph

NOW = 1_780_000_000
DAY = 86_400
VIEWER, FRIEND, STRANGER, PRIVATE, BLOCKER, BLOCKED = 1, 2, 3, 4, 5, 6


def _graph() -> VisibilityGraph:
    return VisibilityGraph.from_edges(
        follows=[(VIEWER, FRIEND), (VIEWER, PRIVATE)],
        blocks=[(BLOCKER, VIEWER), (VIEWER, BLOCKED)],
        private_users=[PRIVATE, 7],
    )


ENGINES = ("tantivy", "opensearch")


@contextlib.contextmanager
def _empty_engine(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh engine: tantivy in a temp dir, or OpenSearch indexes of this test's own prefix
    (dropped afterwards). OpenSearch comes from the services env and fails under CI when absent."""
    if name == "tantivy":
        yield TantivyEngine(tmp_path / "search")
        return
    from search.opensearch_engine import OpenSearchEngine

    url = request.getfixturevalue("opensearch_url")
    engine = OpenSearchEngine(url, f"test-{uuid.uuid4().hex[:12]}")
    try:
        yield engine
    finally:
        engine.remove()
        engine.close()


CORPUS = [
    PostDoc(101, FRIEND, NOW - DAY, "Golden sunset over the beach", ("sunsetlove",),
        213385402, "London, United Kingdom", "photo", "friend", engagement=3),
    PostDoc(102, STRANGER, NOW - 5 * DAY, "sunset sunset from the pier", ("pier",),
        engagement=40),
    PostDoc(103, PRIVATE, NOW - DAY, "private sunset", (), author_private=True),
    PostDoc(104, 7, NOW - DAY, "another private sunset", (), author_private=True),
    PostDoc(105, BLOCKER, NOW - DAY, "sunset of the blocker"),
    PostDoc(106, BLOCKED, NOW - DAY, "sunset of the blocked"),
    PostDoc(107, STRANGER, NOW - DAY, "deleted sunset", deleted=True),
    PostDoc(108, STRANGER, NOW - 2 * DAY, "Coffee first, everything else later",
        ("coffee",), 6889842, "Paris, France"),
    UserDoc(FRIEND, "sunny_friend", "beach days", followers=10),
    UserDoc(BLOCKER, "sunny_blocker", followers=99),
    UserDoc(STRANGER, "stranger", "i love sunsets", followers=1),
    HashtagDoc("sunsetlove", 12),
    HashtagDoc("sunsets", 3),
    LocationDoc(6889842, "Paris, France", 5),
]  # fmt: skip


# tests that write to the engine get their own; the others share one OpenSearch corpus per
# module (creating four indexes costs ~2 s on the loaded 2-core machine). The shared one is
# read-only: a write to it changes BM25's statistics for every later test (a replaced document
# still counts until a merge), which is how the stream test below, once missing from this list,
# made the BM25 order of the ranking test depend on the random test order.
WRITES = {
    "test_upserts_are_idempotent_and_tombstones_win",
    "test_stream_events_create_edit_delete_and_switch_privacy",
    "test_stream_counts_hashtags_and_places_only_from_visible_posts",
}


class _ReadOnly:
    """The shared corpus: every read passes through, a write fails the test that tries it."""

    def __init__(self, engine: SearchEngine) -> None:
        self._engine = engine

    def upsert(self, docs: Any) -> int:
        raise AssertionError("this test writes to the shared corpus: add it to WRITES")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


@pytest.fixture(scope="module")
def shared_opensearch(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[SearchEngine]:
    with _empty_engine("opensearch", tmp_path_factory.mktemp("os"), request) as engine:
        engine.upsert(CORPUS)
        yield engine


@pytest.fixture(params=ENGINES)
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "opensearch" and request.node.originalname not in WRITES:
        yield _ReadOnly(request.getfixturevalue("shared_opensearch"))
        return
    with _empty_engine(request.param, tmp_path, request) as engine:
        engine.upsert(CORPUS)
        yield engine


def _ids(service: SearchService, text: str, viewer: int | None = VIEWER, **kw: Any) -> list[Any]:
    """Ids of the page (tags for hashtags), in order."""
    kind = kw.pop("kind", "posts")
    page = service.search(kind, text, graph=_graph(), viewer=viewer, now_ts=NOW, **kw)
    return [
        int(r.match.doc.key) if r.match.doc.key.isdigit() else r.match.doc.key for r in page.items
    ]


def test_a_viewer_finds_only_what_they_may_see(engine: SearchEngine) -> None:
    service = SearchService(engine)
    found = set(_ids(service, "sunset"))
    # friend's and stranger's public posts, and the private account the viewer follows
    assert found == {101, 102, 103}
    # logged out: public and undeleted only
    assert set(_ids(service, "sunset", viewer=None)) == {101, 102, 105, 106}
    # the blocker sees their own post, not the viewer they block... who has none here
    assert 105 in _ids(service, "sunset", viewer=BLOCKER)
    users = _ids(service, "sunny", kind="users")
    assert users == [FRIEND]  # the account that blocks the viewer is never found


def test_one_typo_is_forgiven_and_exact_matches_rank_first(engine: SearchEngine) -> None:
    service = SearchService(engine)
    assert 108 in _ids(service, "cofee")  # one letter missing
    assert 108 in _ids(service, "cofefe")  # a transposition
    assert _ids(service, "cfoefe") == []  # two edits
    assert _ids(service, "sunse") != []
    exact = service.search("posts", "sunset", graph=_graph(), viewer=VIEWER, now_ts=NOW)
    typo = service.search("posts", "sunsat", graph=_graph(), viewer=VIEWER, now_ts=NOW)
    assert {r.match.doc.key for r in typo.items} == {r.match.doc.key for r in exact.items}
    assert max(m.match.text_score for m in typo.items) < min(
        m.match.text_score for m in exact.items
    )


def test_filters_by_date_author_and_location(engine: SearchEngine) -> None:
    service = SearchService(engine)
    assert _ids(service, "sunset", filters=Filters(since_ts=NOW - 2 * DAY)) in (
        [101, 103],
        [103, 101],
    )
    assert _ids(service, "sunset", filters=Filters(until_ts=NOW - 2 * DAY)) == [102]
    assert _ids(service, "sunset", filters=Filters(author_id=STRANGER)) == [102]
    assert _ids(service, "sunset", filters=Filters(location_id=213385402)) == [101]
    assert _ids(service, "paris", kind="locations") == [6889842]
    # a prefix ("sunsetlove") and one typo away ("sunsets")
    assert set(_ids(service, "sunset", kind="hashtags")) == {"sunsetlove", "sunsets"}


def test_ranking_blends_text_engagement_and_recency(engine: SearchEngine) -> None:
    service = SearchService(engine)
    kw: dict[str, Any] = {"graph": _graph(), "viewer": VIEWER, "now_ts": NOW}
    bm25 = [
        r.match.doc.key for r in service.search("posts", "sunset", weights=BM25_ONLY, **kw).items
    ]
    recent = [
        r.match.doc.key for r in service.search("posts", "sunset", weights=RECENCY_ONLY, **kw).items
    ]
    # "sunset" twice in a five-word caption: BM25 0.229 against 0.225 for 103's "private
    # sunset" on CORPUS (average caption 3.75 words); below 3 words the shorter caption wins
    assert bm25[0] == "102"
    assert recent[-1] == "102"  # five days old
    blended = service.search("posts", "sunset", **kw).items
    assert all(a.score >= b.score for a, b in itertools.pairwise(blended))


def test_pages_do_not_overlap(engine: SearchEngine) -> None:
    service = SearchService(engine)
    kw: dict[str, Any] = {"graph": _graph(), "viewer": None, "now_ts": NOW}
    first = service.search("posts", "sunset", limit=2, **kw)
    second = service.search("posts", "sunset", offset=first.next_offset or 0, limit=2, **kw)
    keys = [r.match.doc.key for r in first.items + second.items]
    assert len(keys) == 4 and len(set(keys)) == 4
    assert second.next_offset is None


@pytest.mark.parametrize("text", ["", "   ", "!!! ...", "\"':*~()", "x" * 300])
def test_bad_text_is_a_query_error(text: str) -> None:
    with pytest.raises(QueryError):
        parse_query(text)


@pytest.mark.parametrize(
    "text", ['"sunset', "sunset:beach", "sun*", "sunset~2", "(sunset", "title:(a OR", "AND OR NOT"]
)
def test_query_syntax_is_matched_literally(engine: SearchEngine, text: str) -> None:
    service = SearchService(engine)
    page = service.search("posts", text, graph=_graph(), viewer=VIEWER, now_ts=NOW)
    assert all(isinstance(r.score, float) for r in page.items)
    assert parse_query(text).terms  # words, never syntax


def test_upserts_are_idempotent_and_tombstones_win(engine: SearchEngine) -> None:
    before = engine.count("posts")
    doc = PostDoc(101, FRIEND, NOW - DAY, "Golden sunset, edited caption", ("sunsetlove",))
    engine.upsert([doc, doc])
    engine.upsert([doc])
    assert engine.count("posts") == before
    assert engine.get("posts", ["101"])["101"].caption == "Golden sunset, edited caption"  # type: ignore[union-attr]
    assert engine.deleted_posts() == {107}


def _parity_corpus() -> list[Any]:
    """Sixty posts, twelve users, tags and places drawn from a small vocabulary (seeded)."""
    import random

    rng = random.Random(18)
    words = ["sunset", "beach", "coffee", "mountain", "city", "night", "street", "garden"]
    tags = ["travel", "food", "sunsets", "nature", "citylife"]
    places = [(11, "Paris, France"), (12, "Lisbon, Portugal"), (13, "Paris, Texas")]
    docs: list[Any] = [UserDoc(u, f"{rng.choice(words)}_{u}", rng.choice(words), u % 4 == 0,
                               float(rng.randint(0, 500))) for u in range(10, 22)]  # fmt: skip
    for pid in range(1000, 1060):
        author = rng.randrange(10, 22)
        place = rng.choice(places)
        docs.append(
            PostDoc(pid, author, NOW - rng.randrange(0, 9 * DAY),
                    " ".join(rng.choices(words, k=rng.randint(2, 9))),
                    tuple(rng.sample(tags, rng.randint(0, 2))), place[0], place[1], "photo",
                    f"user{author}", author % 4 == 0, float(rng.randint(0, 300)),
                    deleted=pid % 17 == 0)
        )  # fmt: skip
    docs += [HashtagDoc(t, float(rng.randint(1, 50))) for t in tags]
    docs += [LocationDoc(i, n, float(rng.randint(1, 30))) for i, n in places]
    return docs


def test_both_engines_rank_and_filter_the_same(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The ranking and the privacy filter live above the engine: on the same corpus tantivy
    and OpenSearch give the same first results for every kind and viewer."""
    corpus = _parity_corpus()
    graph = VisibilityGraph.from_edges(
        follows=[(10, 12), (10, 16)], blocks=[(13, 10), (10, 14)], private_users=[12, 16, 20]
    )
    queries: list[tuple[Kind, str]] = [
        ("posts", "sunset beach"), ("posts", "#travel coffee"), ("posts", "mountian"),
        ("posts", "paris night"), ("users", "garden"), ("hashtags", "sun"),
        ("locations", "paris"),
    ]  # fmt: skip
    tops: dict[str, list[list[str]]] = {}
    with (
        _empty_engine("tantivy", tmp_path, request) as tantivy_engine,
        _empty_engine("opensearch", tmp_path, request) as opensearch_engine,
    ):
        for name, eng in (("tantivy", tantivy_engine), ("opensearch", opensearch_engine)):
            eng.upsert(corpus)
            service = SearchService(eng)
            tops[name] = [
                [r.match.doc.key for r in service.search(
                    kind, text, graph=graph, viewer=viewer, now_ts=NOW, limit=5).items]
                for kind, text in queries
                for viewer in (10, None)
            ]  # fmt: skip
    assert all(tops["tantivy"]), tops  # every query finds something
    assert tops["opensearch"] == tops["tantivy"]


def _event(event_type: str, user: int, at: float | None = None, **fields: Any) -> dict[str, Any]:
    occurred = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at or time.time() - 60))
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": occurred,
        "producer": "test-search",
        "user_id": user,
        **fields,
    }
    if event_type == "post_created":
        event.setdefault("media_type", "photo")
        event.setdefault(
            "media",
            [{"object_key": f"p/{fields['post_id']}.jpg", "mime_type": "image/jpeg",
              "width": 1080, "height": 1080, "size_bytes": 1000}],
        )  # fmt: skip
    return event


def test_stream_events_create_edit_delete_and_switch_privacy(engine: SearchEngine) -> None:
    service = SearchService(engine, refresh_seconds=0)
    report = IndexerReport()
    events = [
        _event("user_created", 50, username="nora", is_private=False, country="FR"),
        _event("post_created", 50, post_id=500, caption="Lavender fields", hashtags=["provence"]),
        _event("post_created", 50, post_id=501, caption="Lavender again"),
        _event("post_created", 51, post_id=502, caption="lavender, bad event", media=[]),
    ]
    apply_events(engine, events, report)
    assert report.skipped == 1  # invalid against the contract
    assert set(_ids(service, "lavender")) == {500, 501}
    assert _ids(service, "provence", kind="hashtags") == ["provence"]
    # re-delivery of the same events changes nothing
    apply_events(engine, events, report)
    assert engine.count("posts") == 8 + 2

    apply_events(engine, [_event("post_deleted", 50, post_id=500)], report)
    assert _ids(service, "lavender") == [501]
    apply_events(engine, events[1:2], report)  # a replayed create cannot revive it
    assert _ids(service, "lavender") == [501]

    apply_events(engine, [_event("profile_updated", 50, is_private=True)], report)
    assert _ids(service, "lavender") == []  # private, not followed (the graph does not know yet)
    assert _ids(service, "lavender", viewer=50) == [501]
    apply_events(
        engine, [_event("profile_updated", 50, is_private=False, username="nora_b")], report
    )
    assert _ids(service, "lavender") == [501]
    assert _ids(service, "nora_b", kind="users") == [50]


class _Completions:
    """The hashtags the indexer asks autocomplete to add and remove (Redis's own behaviour is
    tested against a real Redis below)."""

    def __init__(self) -> None:
        self.added: list[str] = []
        self.removed: list[str] = []

    def add(self, completions: list[Completion]) -> int:
        self.added += [c.text for c in completions if c.kind == "hashtag"]
        return len(completions)

    def remove(self, completions: list[Completion]) -> None:
        self.removed += [c.text for c in completions if c.kind == "hashtag"]


def test_stream_counts_hashtags_and_places_only_from_visible_posts(engine: TantivyEngine) -> None:
    """A private account's post neither creates nor counts a hashtag or place; a deleted post's
    count is taken back, and a hashtag left with no post leaves search and autocomplete;
    re-deliveries count once."""
    service = SearchService(engine, refresh_seconds=0)
    report = IndexerReport()
    completions = _Completions()

    def apply(events: list[dict[str, Any]]) -> None:
        apply_events(engine, events, report, completions)  # type: ignore[arg-type]

    def posts(kind: Any, key: str) -> float | None:
        doc = engine.get(kind, [key]).get(key)
        return None if doc is None else float(doc.posts)  # type: ignore[union-attr]

    created = [
        _event("user_created", 60, username="ana", is_private=False, country="PT"),
        _event("user_created", 61, username="bo", is_private=True, country="PT"),
        _event("post_created", 61, post_id=600, caption="cove", hashtags=["hiddengem"],
               location_id=77, location_name="Secret Cove"),
        _event("post_created", 60, post_id=601, caption="pools", hashtags=["tidepool"],
               location_id=78, location_name="Rocky Shore"),
        _event("post_created", 60, post_id=602, caption="more pools", hashtags=["TidePool"]),
    ]  # fmt: skip
    apply(created)
    apply(created)  # re-delivered
    assert report.skipped == 0
    assert posts("hashtags", "hiddengem") is None and posts("locations", "77") is None
    assert _ids(service, "hiddengem", kind="hashtags") == []
    assert _ids(service, "secret cove", kind="locations") == []
    assert posts("hashtags", "tidepool") == 2.0 and posts("locations", "78") == 1.0
    assert completions.added == ["#tidepool"]

    deleted = [_event("post_deleted", 60, post_id=601), _event("post_deleted", 60, post_id=602)]
    apply(deleted[:1])
    assert posts("hashtags", "tidepool") == 1.0 and posts("locations", "78") == 0.0
    assert _ids(service, "rocky shore", kind="locations") == []
    assert _ids(service, "tidepool", kind="hashtags") == ["tidepool"]
    apply(deleted)  # the first re-delivered, then the last post of the tag
    assert posts("hashtags", "tidepool") == 0.0
    assert _ids(service, "tidepool", kind="hashtags") == []
    assert completions.removed == ["#tidepool"]
    apply([_event("post_deleted", 61, post_id=600)])  # never counted: nothing to take back
    assert posts("hashtags", "hiddengem") is None and completions.removed == ["#tidepool"]


# --- through Kafka and Redis -------------------------------------------------------------------


class _CrashBeforeCommit(IndexerConsumer):
    def poll_once(self, timeout_ms: int = 200) -> int:
        import ingestion.kafka_source as source

        def killed(consumer: Any, **_: Any) -> None:
            raise RuntimeError("killed after indexing, before the offset commit")

        real = source.commit
        source.commit = killed
        try:
            return super().poll_once(timeout_ms)
        finally:
            source.commit = real


@contextlib.contextmanager
def _writer_and_reader(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[SearchEngine, SearchEngine]]:
    """The indexer's engine and a second one over the same index, as another process has."""
    with _empty_engine(name, tmp_path, request) as writer:
        if name == "tantivy":
            yield writer, TantivyEngine(tmp_path / "search")
            return
        from search.opensearch_engine import OpenSearchEngine

        reader = OpenSearchEngine(writer.url, writer.prefix)  # its own HTTP client
        try:
            yield writer, reader
        finally:
            reader.close()


@pytest.mark.parametrize("engine_name", ENGINES)
def test_kafka_indexer_is_fast_exactly_once_in_effect_and_feeds_autocomplete(
    engine_name: str,
    kafka_bootstrap: str,
    redis_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    with _writer_and_reader(engine_name, tmp_path, request) as (engine, reader):
        _kafka_indexer_round_trip(engine, reader, kafka_bootstrap, redis_url)


def _kafka_indexer_round_trip(
    engine: SearchEngine, reader: SearchEngine, kafka_bootstrap: str, redis_url: str
) -> None:
    from kafka import KafkaProducer

    run = uuid.uuid4().hex[:10]
    posts, users = f"test.search.{run}.posts", f"test.search.{run}.users"
    create_topics(kafka_bootstrap, [posts, users], partitions=2)
    service = SearchService(reader, refresh_seconds=0.1)  # a reader
    autocomplete = RedisAutocomplete.from_url(redis_url, prefix=f"test-search-{run}:")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","), acks="all")

    def send(topic: str, event: dict[str, Any]) -> None:
        producer.send(topic, json.dumps(event).encode(), key=str(event["user_id"]).encode())
        producer.flush()

    group = f"test-search-{run}"

    def consumer() -> Any:  # fresh topics: refresh metadata often, or wait minutes for it
        return make_consumer(
            kafka_bootstrap, (posts, users), group_id=group, metadata_max_age_ms=500
        )

    try:
        # 1. a crash after indexing and before the offset commit: the batch comes again
        send(users, _event("user_created", 60, username="quentin", is_private=False, country="FR"))
        send(posts, _event("post_created", 60, post_id=600, caption="Aurora borealis tonight"))
        crashed = _CrashBeforeCommit(engine, consumer(), autocomplete)
        deadline = time.monotonic() + 60
        while engine.count("posts") == 0 and time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                crashed.poll_once()
        crashed.close()
        assert engine.count("posts") == 1

        runner = IndexerConsumer(engine, consumer(), autocomplete)
        thread = threading.Thread(target=runner.run, kwargs={"max_seconds": 120}, daemon=True)
        thread.start()
        wait_for(lambda: runner.report.messages >= 2, timeout=60)  # re-delivered
        assert engine.count("posts") == 1 and engine.count("users") == 1

        # 2. a new post is searchable by another process's reader within seconds
        latencies = []
        for i in range(5):
            sent = time.monotonic()
            send(posts, _event("post_created", 60, post_id=700 + i, caption=f"Fjord number{i}"))
            wait_for(lambda i=i: 700 + i in _ids(service, f"number{i}", viewer=None), timeout=15)
            latencies.append(time.monotonic() - sent)
        print(f"post_created -> searchable: max {max(latencies):.2f} s")
        assert max(latencies) < 10  # the 2 s target is measured by bench/search.py

        # 3. a deletion reaches the index; autocomplete knows the user
        send(posts, _event("post_deleted", 60, post_id=700))
        wait_for(lambda: 700 not in _ids(service, "number0", viewer=None), timeout=10)
        assert [c.id for c in autocomplete.search("quen", 5)] == [60]
        send(users, _event("profile_updated", 60, username="quincy"))
        wait_for(lambda: [c.text for c in autocomplete.search("qu", 5)] == ["quincy"], timeout=10)
        runner.stop()
        thread.join(30)
        runner.close()
        assert not thread.is_alive()
    finally:
        producer.close()
        autocomplete.clear()


def test_redis_autocomplete_ranks_by_weight_and_matches_long_prefixes(redis_url: str) -> None:
    autocomplete = RedisAutocomplete.from_url(
        redis_url, prefix=f"test-search-ac-{uuid.uuid4().hex[:8]}:"
    )
    try:
        autocomplete.add(
            [
                Completion("user", "sunny_day", 1, 5),
                Completion("user", "sunflower_field_forever", 2, 50),
                Completion("hashtag", "#sunsetlove", None, 20),
            ]
        )
        assert [c.text for c in autocomplete.search("sun", 10)] == [
            "sunflower_field_forever", "#sunsetlove", "sunny_day"
        ]  # fmt: skip
        assert [c.id for c in autocomplete.search("sunflower_field_f", 10)] == [2]
        assert [c.text for c in autocomplete.search("#sun", 10, frozenset({"hashtag"}))] == [
            "#sunsetlove"
        ]
        assert autocomplete.search("zzz", 10) == []
    finally:
        autocomplete.clear()
