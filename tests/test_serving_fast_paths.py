"""The uncached feed's fast paths give exactly what the slower paths they replace give.

- `ml.ranking.columns.ColumnTable` (float64 arrays, serving) vs a DataFrame of typed nullable
  columns (what the reader returned before): the same model inputs, bit for bit;
- the viewer x hashtag on-demand view on arrays vs Feast's pandas UDF;
- the on-demand views with text inputs (same home city, topic overlap, place) on text codes
  (`feature_repo.text_codes`) vs the row-by-row string code they replaced;
- `featurestore.decoded.DecodedVectors`: the rows an uncached read decodes, from memory until the
  store's version changes.

Pure and small (no platform); tests/test_feature_store.py reads the real online store.
"""

import struct
from collections.abc import Callable

import numpy as np
import orjson
import pandas as pd
import pytest
from feast.types import Float64, Int64

from feature_repo import definitions
from feature_repo import request_time as rt
from feature_repo.text_codes import TextCodes
from featurestore.decoded import ByViewer, DecodedVectors, RowBlock
from featurestore.online import _viewer_hashtag_affinity
from featurestore.vectors import HEADER, VectorLayout
from ml.ranking.columns import ColumnTable, take_rows
from ml.ranking.derived import viewer_media_type_rate
from ml.ranking.preprocessing import Preprocessing


def _typed_frame(rows: int, seed: int) -> pd.DataFrame:
    """Columns typed as `OnlineFeatureReader.read` returns them: nullable ints and booleans,
    floats with NaN, texts with None, plus the derived columns' inputs."""
    rng = np.random.default_rng(seed)
    missing = rng.random(rows) < 0.2
    counts = rng.poisson(5, rows)
    frame = pd.DataFrame(
        {
            "likes": pd.arrays.IntegerArray(counts, missing),
            "share": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(size=rows)),
            "is_following": pd.arrays.BooleanArray(rng.random(rows) < 0.5, missing),
            "post_attributes__media_type": np.array(
                ["photo", "video", "carousel", None], dtype=object
            )[rng.integers(0, 4, rows)],
            "post_engagement__engagements_total": pd.arrays.IntegerArray(
                rng.poisson(3, rows), rng.random(rows) < 0.3
            ),
            "post_engagement__impressions_total": pd.arrays.IntegerArray(
                rng.poisson(30, rows), np.zeros(rows, dtype=bool)
            ),
            "user_content_preferences__engagements_photo": np.full(rows, 3),
            "user_content_preferences__impressions_photo": np.full(rows, 40),
            "surface": np.full(rows, "home_feed", dtype=object),
        }
    )
    return frame


def _as_arrays(frame: pd.DataFrame) -> ColumnTable:
    """What `OnlineFeatureReader.read_columns(numbers=True)` hands over for the same values."""
    data = {}
    for name in frame.columns:
        array = frame[name].array
        if isinstance(array, pd.arrays.IntegerArray | pd.arrays.BooleanArray):
            data[name] = array.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            data[name] = frame[name].to_numpy()
    return ColumnTable(data, len(frame))


def test_column_table_gives_the_dataframes_model_inputs() -> None:
    train = _typed_frame(500, 1)
    spec = Preprocessing.fit(train, list(train.columns))
    assert any(c.derived_from for c in spec.numeric)  # the derived columns are exercised
    serve = _typed_frame(300, 2)
    table = _as_arrays(serve)
    expected, got = spec.transform(serve), spec.transform(table)
    np.testing.assert_array_equal(got["numeric"], expected["numeric"])
    np.testing.assert_array_equal(got["categorical"], expected["categorical"])
    # explanations pick rows by position from either
    rows = take_rows(table, [4, 0, 7])
    np.testing.assert_array_equal(
        spec.transform(rows)["numeric"], spec.transform(serve.iloc[[4, 0, 7]])["numeric"]
    )


def test_hashtag_affinity_on_arrays_equals_feasts_udf() -> None:
    rng = np.random.default_rng(3)
    rows, buckets = 200, rt.HASHTAG_BUCKETS
    viewer = rng.poisson(1.0, buckets).astype(float)
    posts = rng.poisson(0.1, (rows, buckets)).astype(float)
    posts[rng.random(rows) < 0.2] = np.nan  # no hashtag row
    frame = pd.DataFrame(
        {
            **{
                f"engaged_tags_{b}": pd.array([int(viewer[b])] * rows, "Int64")
                for b in range(buckets)
            },
            "engaged_tags_total": pd.array([int(viewer.sum())] * rows, "Int64"),
            **{
                f"tags_{b}": pd.array(
                    [None if np.isnan(v) else int(v) for v in posts[:, b]], "Int64"
                )
                for b in range(buckets)
            },
        }
    )
    arrays = {name: rt.numbers(frame[name]) for name in frame.columns}
    expected = definitions.viewer_hashtag_affinity(frame)
    got = _viewer_hashtag_affinity(arrays, 0, TextCodes())
    for name in expected.columns:
        np.testing.assert_array_equal(got[name], expected[name].to_numpy())
    assert (got["hashtag_affinity"] > 0).any()


# --- text inputs as codes ----------------------------------------------------------------------


def _strings_similarity(viewer_city, viewer_interests, author_city, author_interests) -> dict:
    """The row-by-row string code `viewer_author_similarity_arrays` had before text codes."""

    def text(v):
        return v if isinstance(v, str) and v else None

    same, overlap = [], []
    for vc, vi, ac, ai in zip(
        viewer_city, viewer_interests, author_city, author_interests, strict=True
    ):
        vc, vi, ac, ai = text(vc), text(vi), text(ac), text(ai)
        same.append(1 if vc is not None and vc == ac else 0)
        if vi is None or ai is None:
            overlap.append(0.0)
            continue
        mine, theirs = set(vi.split(",")), set(ai.split(","))
        overlap.append(len(mine & theirs) / len(mine | theirs))
    return {"same_home_city": np.array(same), "topic_overlap": np.array(overlap)}


def _random_texts(rng: np.random.Generator, rows: int, choices: list) -> np.ndarray:
    out = np.empty(rows, dtype=object)
    out[:] = [choices[i] for i in rng.integers(0, len(choices), rows)]
    return out


def test_text_views_on_codes_equal_the_string_code() -> None:
    rng = np.random.default_rng(8)
    rows = 400
    cities = ["Lyon", "Paris", "Oslo", None, "", np.nan]
    topics = ["food", "art", "travel", "sport", "tech"]
    lists = [None, "", pd.NA, "food,food", "a,,b", ","] + [
        ",".join(rng.choice(topics, rng.integers(1, 4), replace=False)) for _ in range(20)
    ]
    viewer = [cities[int(rng.integers(0, 3))], lists[int(rng.integers(6, len(lists)))]]
    columns = (
        np.full(rows, viewer[0], dtype=object),
        np.full(rows, viewer[1], dtype=object),
        _random_texts(rng, rows, cities),
        _random_texts(rng, rows, lists),
    )
    expected = _strings_similarity(*columns)
    got = rt.viewer_author_similarity_arrays(*columns)
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values)
    assert got["same_home_city"].sum() > 0 and (got["topic_overlap"] > 0).sum() > 0
    # the viewer without a city or topics shares none
    unknown = rt.viewer_author_similarity_arrays(
        [None] * rows, [np.nan] * rows, columns[2], columns[3]
    )
    assert not unknown["same_home_city"].any() and not unknown["topic_overlap"].any()

    # a place named like the viewer's city is "in the home city"; unknown on either side is not
    places = _random_texts(rng, rows, cities)
    lat, lon = rng.uniform(-60, 60, rows), rng.uniform(-180, 180, rows)
    home = np.full(rows, viewer[0], dtype=object)
    located = rt.viewer_post_location_arrays(
        home, np.full(rows, 45.0), np.full(rows, 4.8), places, lat, lon
    )
    same = [1 if isinstance(p, str) and p and p == viewer[0] else 0 for p in places]
    np.testing.assert_array_equal(located["post_in_home_city"], same)


def test_text_codes_are_stable_and_token_rows_share_columns() -> None:
    codes = TextCodes()
    first = codes.encode(np.array([["b,a", None], ["", "c"]], dtype=object))
    assert first.tolist() == [[0, -1], [-1, 1]]
    assert codes.encode(["c", "b,a", "d", float("nan")]).tolist() == [1, 0, 2, -1]
    old, new = codes.tokens(np.array([0, -1]), np.array([2, 1]))
    assert old.shape == new.shape == (2, 4)  # tokens a, b, c, d
    assert old.sum(axis=1).tolist() == [2, 0] and new.sum(axis=1).tolist() == [1, 1]
    assert not (old[0] & new[0]).any()


# --- decoded vectors ----------------------------------------------------------------------------

LAYOUT = VectorLayout("posts", (("likes", Int64), ("score", Float64)), ("media",), 42)


def _blob(likes: float, score: float, media: str | None, fingerprint: int = 42) -> bytes:
    return (
        HEADER.pack(fingerprint, 1_000.0) + struct.pack("<2d", likes, score) + orjson.dumps([media])
    )


class FakeStore:
    def __init__(self) -> None:
        self.blobs = {b"p1": _blob(1, 0.5, "photo"), b"p2": _blob(2, 1.5, None)}
        self.blobs[b"old"] = _blob(9, 9, "video", fingerprint=7)  # another schema: missing
        self.version = 1
        self.fetched: list[list[bytes]] = []

    def fetch(self, requests: list[tuple[str, list[bytes]]]) -> list[list[bytes | None]]:
        self.fetched += [keys for _, keys in requests]
        return [[self.blobs.get(k) for k in keys] for _, keys in requests]


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def _cache(store: FakeStore, max_rows: int = 100) -> DecodedVectors:
    return DecodedVectors(
        {("post_id",): [("posts", LAYOUT)]}, store.fetch, lambda: store.version, max_rows
    )


def test_decoded_vectors_match_a_fresh_decode_and_come_from_memory(store: FakeStore) -> None:
    cache = _cache(store)
    keys = [b"p2", b"p1", b"nope", b"p2", b"old"]
    read, texts = cache.read({("post_id",): keys})
    times, numbers, strings, codes = read["posts"]
    fresh = LAYOUT.decode_many([store.blobs.get(k) for k in keys])
    np.testing.assert_array_equal(times, fresh[0])
    np.testing.assert_array_equal(numbers, fresh[1])
    assert strings is not None and strings.tolist() == fresh[2]
    assert codes is not None and codes[:, 0].tolist() == [-1, 0, -1, -1, -1]
    assert texts.texts == ["photo"]  # "old" has another schema: missing, not "video"
    assert store.fetched == [[b"p2", b"p1", b"nope", b"old"]]  # each distinct key once

    numbers[:] = -1.0  # the caller's copy: editing it (ttl expiry does) leaves the cache alone
    again = cache.read({("post_id",): [b"p1", b"nope"]})[0]["posts"]
    assert store.fetched == [[b"p2", b"p1", b"nope", b"old"]]  # no new read
    np.testing.assert_array_equal(again[1][0], [1.0, 0.5])
    assert np.isnan(again[1][1]).all() and again[2] is not None and again[2][1, 0] is None


def test_decoded_vectors_start_over_when_the_store_changes_or_fills(store: FakeStore) -> None:
    cache = _cache(store, max_rows=3)
    cache.read({("post_id",): [b"p1"]})
    store.blobs[b"p1"] = _blob(5, 0.0, "video")
    assert cache.read({("post_id",): [b"p1"]})[0]["posts"][1][0, 0] == 1.0  # same version
    store.version = 2  # a commit (materialization)
    read, texts = cache.read({("post_id",): [b"p1"]})
    assert read["posts"][1][0, 0] == 5.0
    assert texts.texts == ["video"]  # the codes started over with the rows
    cache.read({("post_id",): [b"a", b"b"]})  # 3 rows: full
    before = len(store.fetched)
    cache.read({("post_id",): [b"c", b"p1"]})  # would exceed: the group starts over
    assert store.fetched[before:] == [[b"c", b"p1"]]


def test_decoded_vectors_by_entity_id_read_what_store_keys_read(store: FakeStore) -> None:
    """The online reader looks cached entities up by id and builds store keys only for those
    not cached yet: the same rows as reading by store key, and no key built on a warm read."""
    by_key = _cache(store).read({("post_id",): [b"p2", b"p1", b"nope", b"p2", b"old"]})[0]
    names = {2: b"p2", 1: b"p1", 0: b"nope", 9: b"old", 5: b"p5"}
    encoded: list[list[object]] = []

    def encode(join_keys: tuple[str, ...], ids: list) -> list[bytes]:
        assert join_keys == ("post_id",)
        encoded.append(list(ids))
        return [names[i] for i in ids]

    cache = _cache(store)
    by_id = cache.read({("post_id",): [2, 1, 0, 2, 9]}, encode)[0]
    for got, expected in zip(by_id["posts"], by_key["posts"], strict=True):
        assert got is not None and expected is not None
        np.testing.assert_array_equal(got, expected)
    assert encoded == [[2, 1, 0, 9]]  # each distinct id once
    again = cache.read({("post_id",): [1, 9]}, encode)[0]["posts"]
    assert encoded == [[2, 1, 0, 9]]  # warm: no key built, nothing fetched
    np.testing.assert_array_equal(again[1][0], by_key["posts"][1][1])
    cache.read({("post_id",): [1, 5]}, encode)  # one new id: only it is encoded
    assert encoded[1:] == [[5]]


def test_decoded_vectors_read_by_viewer_equal_reads_by_key(store: FakeStore) -> None:
    """A (author, viewer) group read a viewer at a time: the same rows as key by key, one
    viewer read per viewer missing something, and nothing read when all is cached."""
    pairs = {(1, 7): b"p1", (2, 7): b"p2", (3, 7): b"old", (1, 8): b"p2"}

    def encode(join_keys: tuple[str, ...], ids: list) -> list[bytes]:
        return [pairs.get(i, repr(i).encode()) for i in ids]

    viewer_reads: list[object] = []

    def read_viewer(views: list[str], viewer: object) -> list[dict[bytes, bytes]]:
        assert views == ["posts"]
        viewer_reads.append(viewer)
        return [{key: store.blobs[key] for pair, key in pairs.items() if pair[1] == viewer}]

    group = ("author_id", "user_id")
    by_key = DecodedVectors({group: [("posts", LAYOUT)]}, store.fetch, lambda: 1, 100)
    by_viewer = DecodedVectors(
        {group: [("posts", LAYOUT)]}, store.fetch, lambda: 1, 100, {group: (1, read_viewer)}
    )
    for ids in (
        [(2, 7), (9, 7), (1, 7)],
        [(3, 7), (5, 7), (1, 8), (9, 7), (6, 8)],
        [(1, 8), (2, 7)],
    ):
        expected = by_key.read({group: ids}, encode)[0]["posts"]
        got = by_viewer.read({group: ids}, encode)[0]["posts"]
        for mine, theirs in zip(got, expected, strict=True):
            assert mine is not None and theirs is not None
            np.testing.assert_array_equal(mine, theirs)
    assert viewer_reads == [7, 7, 8]  # the last read was all cached
    assert len(store.fetched) == 2  # (by_key's reads only)


def test_rank_body_is_the_json_pydantic_writes() -> None:
    """`/v1/rank` serializes plain data with orjson: the same JSON as `RankResponse`'s."""
    from serving.routers.rank import rank_body
    from serving.schemas import RankResponse, iso

    response = {
        "user_id": 7,
        "model_version": "feed-ranker/3",
        "degraded": False,
        "reason": None,
        "experiment": "ranker-test",
        "arm": "treatment",
        "items": [
            {
                "post_id": 11,
                "author_id": 2,
                "rank": 0,
                "score": 0.30000000000000004,
                "created_at": iso(1_796_537_046.123456),
                "source": "request",
                "contributions": {"post_age_hours": -0.25},
                "arm": "treatment",
                "explored": False,
            },
            {
                "post_id": 12,
                "author_id": 3,
                "rank": 1,
                "score": 1e-7,
                "created_at": iso(1_796_537_000.0),
                "source": "request",
                "contributions": None,
                "arm": "treatment",
                "explored": False,
            },
        ],
        "excluded": [{"post_id": 5, "reason": "duplicate"}],
    }
    assert rank_body(response) == RankResponse.model_validate(response).model_dump_json().encode()


def test_media_type_rate_from_text_codes_equals_the_texts() -> None:
    """The derived viewer x media type rate reads the rows' media types through the reader's
    text codes when it has them: the same values as comparing the texts."""
    name = "post_attributes__media_type"
    serve = _typed_frame(300, 2)
    serve.loc[5, name] = "unseen-kind"
    serve["user_content_preferences__engagements_video"] = np.arange(300) % 7
    serve["user_content_preferences__impressions_video"] = np.full(300, 50)
    table = _as_arrays(serve)
    codes = TextCodes()
    codes.encode(np.array(["carousel", "x"], dtype=object))  # codes that predate the request's
    coded = ColumnTable(table.data, len(table), {name: codes.encode(table[name])}, codes)
    assert coded.coded(name) is not None
    expected = viewer_media_type_rate(table)
    np.testing.assert_array_equal(viewer_media_type_rate(coded), expected)
    assert len(set(expected.tolist())) > 3  # photo's, video's and the prior's rates


def test_categoricals_from_text_codes_equal_the_texts() -> None:
    """The ranker's categoricals looked up through the reader's text codes (one gather) give
    the indices the per-row dict lookup gives, and fall back to it when "" is a category."""
    name = "post_attributes__media_type"
    train = _typed_frame(500, 1)
    train[name] = train[name].fillna("photo")  # with None pandas would not call it text
    spec = Preprocessing.fit(train, list(train.columns))
    serve = _typed_frame(300, 2)
    serve.loc[5, name] = "unseen-kind"
    table = _as_arrays(serve)
    codes = TextCodes()
    codes.encode(np.array(["video", "x"], dtype=object))  # codes that predate the request's
    coded = ColumnTable(table.data, len(table), {name: codes.encode(table[name])}, codes)
    assert coded.coded(name) is not None
    expected = spec.transform(table)["categorical"]
    np.testing.assert_array_equal(spec.transform(coded)["categorical"], expected)
    column = [c.name for c in spec.categorical].index(name)
    assert len(set(expected[:, column].tolist())) > 2  # known kinds and unknown/missing

    with_empty = train.copy()
    with_empty.loc[:100, name] = ""
    spec_empty = Preprocessing.fit(with_empty, list(train.columns))
    assert "" in next(c.vocabulary for c in spec_empty.categorical if c.name == name)
    serve.loc[:20, name] = ""
    table = _as_arrays(serve)
    coded = ColumnTable(table.data, len(table), {name: codes.encode(table[name])}, codes)
    np.testing.assert_array_equal(
        spec_empty.transform(coded)["categorical"], spec_empty.transform(table)["categorical"]
    )


def test_text_code_lookups_grow_with_the_texts() -> None:
    texts = TextCodes()
    mapping, other = {"a": 1, "b": 2}, {"x": 5}
    first = texts.encode(np.array(["a", None, "x", ""], dtype=object))
    assert texts.lookup(first, mapping).tolist() == [1, 0, 0, 0]
    later = texts.encode(np.array(["b", "a", "c", np.nan], dtype=object))  # new texts after
    assert texts.lookup(later, mapping).tolist() == [2, 1, 0, 0]
    assert texts.lookup(first, other).tolist() == [0, 0, 5, 0]
    assert texts.lookup(first, mapping).dtype == np.int32


def test_iso_texts_are_what_orjson_writes_for_the_datetimes() -> None:
    """`/v1/rank` writes creation times as memoised texts: the same JSON as the datetimes."""
    from serving.schemas import iso, iso_texts

    rng = np.random.default_rng(3)
    stamps = [
        *rng.uniform(1.6e9, 1.9e9, 300).tolist(),
        *np.floor(rng.uniform(1.6e9, 1.9e9, 300)).tolist(),
        *np.round(rng.uniform(1.6e9, 1.9e9, 300), 3).tolist(),
        0.0,
        1_796_537_046.123456,
    ]
    for _ in range(2):  # computed, then memoised
        got = orjson.dumps(iso_texts(stamps))
        assert got == orjson.dumps([iso(t) for t in stamps], option=orjson.OPT_UTC_Z)


def test_post_rows_by_binary_search_equal_the_index() -> None:
    from serving.snapshot import Posts

    rng = np.random.default_rng(4)
    ids = rng.choice(10_000, 500, replace=False)
    frame = pd.DataFrame(
        {
            "post_id": ids,
            "author_id": rng.integers(1, 50, 500),
            "created_ts": rng.uniform(0, 1e6, 500),
            "popularity": rng.random(500),
        }
    )
    posts = Posts(frame, deleted=frozenset())
    asked = np.concatenate([ids[::-3], rng.integers(-5, 10_010, 300), ids[:5]])
    expected = [posts.index.get(int(p), -1) for p in asked]
    assert posts.rows_or_missing(asked).tolist() == expected
    assert Posts(frame.iloc[:0], deleted=frozenset()).rows_or_missing(asked).tolist() == [-1] * len(
        asked
    )


def test_columns_broadcast_to_every_row_give_the_materialized_model_inputs() -> None:
    """Serving repeats the viewer's features on every candidate row as stride-0 views
    (`serving.features._repeated`); the preprocessing scales those once, as one row. The model
    inputs equal those of the same values copied to every row, bit for bit: log1p, clipping,
    missing indicators (a viewer's missing value) and absent columns included."""
    from serving.features import _repeated

    rng = np.random.default_rng(5)
    rows = 400
    train = pd.DataFrame(
        {
            "post_likes": np.where(rng.random(rows) < 0.2, np.nan, rng.poisson(5, rows) * 1.0),
            "viewer_likes": np.where(rng.random(rows) < 0.3, np.nan, rng.poisson(40, rows) * 1.0),
            "viewer_rate": rng.normal(size=rows),
            "viewer_gone": np.where(rng.random(rows) < 0.5, np.nan, rng.normal(size=rows)),
            "viewer_flag": rng.random(rows) < 0.5,
            "absent": np.where(rng.random(rows) < 0.5, np.nan, rng.normal(size=rows)),
            "post_engagement__engagements_total": rng.poisson(3, rows) * 1.0,
            "post_engagement__impressions_total": rng.poisson(30, rows) * 1.0,
            "surface": np.full(rows, "home_feed", dtype=object),
        }
    )
    spec = Preprocessing.fit(train, list(train.columns))
    assert sum(c.missing_indicator for c in spec.numeric) >= 3 and any(
        c.log1p for c in spec.numeric
    )
    serve = rows // 2
    for viewer in [(7.0, 0.3, np.nan, True), (1e6, -9.0, 2.0, False), (np.nan, np.nan, np.nan, 0)]:
        varying = {
            "post_likes": train["post_likes"].to_numpy()[:serve],
            "post_engagement__engagements_total": rng.poisson(3, serve) * 1.0,
            "post_engagement__impressions_total": rng.poisson(30, serve) * 1.0,
        }
        names = ["viewer_likes", "viewer_rate", "viewer_gone", "viewer_flag"]
        shared = dict(zip(names, viewer, strict=True))
        broadcast = ColumnTable(
            {
                **varying,
                **{name: _repeated(value, serve) for name, value in shared.items()},
                "surface": _repeated("home_feed", serve),
            },
            serve,
        )
        assert broadcast["viewer_likes"].strides == (0,)
        copied = ColumnTable(
            {
                **varying,
                **{name: np.full(serve, float(value)) for name, value in shared.items()},
                "surface": np.full(serve, "home_feed", dtype=object),
            },
            serve,
        )
        got, expected = spec.transform(broadcast), spec.transform(copied)
        np.testing.assert_array_equal(got["numeric"], expected["numeric"])
        np.testing.assert_array_equal(got["categorical"], expected["categorical"])
        assert got["numeric"].flags.c_contiguous and got["numeric"].dtype == np.float32
    empty = ColumnTable({name: _repeated(1.0, 0) for name in train.columns}, 0)
    assert spec.transform(empty)["numeric"].shape == (0, spec.numeric_width)


def test_keep_mask_by_set_lookups_equals_isin() -> None:
    from serving.rules import keep_mask

    rng = np.random.default_rng(6)
    posts = rng.integers(0, 5_000, 800)
    created = rng.uniform(0, 100, 800)
    excluded = set(rng.integers(0, 5_000, 300).tolist())
    expected = (created >= 40.0) & ~np.isin(posts, list(excluded))
    for given in (excluded, frozenset(excluded), sorted(excluded), np.array(sorted(excluded))):
        got = keep_mask(posts, created, now_ts=100.0, fresh_seconds=60.0, excluded=given)
        np.testing.assert_array_equal(got, expected)
    alone = keep_mask(posts, created, now_ts=100.0, fresh_seconds=60.0, excluded=set())
    np.testing.assert_array_equal(alone, created >= 40.0)


def test_visible_posts_mask_skips_the_per_post_loop_only_when_none_is_hidden() -> None:
    """`visible_posts_mask` returns the author mask as it is when no asked post is deleted or
    moderated (one `isdisjoint` per set); otherwise per post. Both equal `can_see_post`."""
    from visibility import VisibilityGraph

    rng = np.random.default_rng(12)
    authors = rng.integers(1, 40, 600)
    posts = rng.choice(np.arange(1_000, 10_000), 600, replace=False)
    graph = VisibilityGraph.from_edges(
        follows=[(1, 5), (1, 6)],
        blocks=[(1, 7), (8, 1)],
        mutes=[(1, 9)],
        private_users=[5, 10, 11],
        deleted_posts=posts[:20].tolist(),
        moderated_posts=posts[20:35].tolist(),
    )
    for asked in (slice(0, 600), slice(35, 600), slice(10, 30), slice(30, 40)):
        ids, by = posts[asked], authors[asked]
        pairs = zip(ids.tolist(), by.tolist(), strict=True)
        expected = [graph.can_see_post(1, p, a) for p, a in pairs]
        assert graph.visible_posts_mask(1, ids, by).tolist() == expected, asked
    assert graph.visible_posts_mask(1, posts[35:], authors[35:]).sum() < 565  # authors hide some
    graph.delete_post(int(posts[100]))  # a deletion after the graph was built
    assert not graph.visible_posts_mask(1, posts[100:101], np.array([5]))[0]


def test_user_values_on_every_row_are_read_only_stride_0_views() -> None:
    from featurestore.online import _every_row
    from serving.features import _repeated

    column = np.array([2.5, 9.0])
    for repeated in (_every_row(column, 5), _repeated(2.5, 5)):
        np.testing.assert_array_equal(repeated, np.full(5, 2.5))
        assert repeated.strides == (0,) and not repeated.flags.writeable
        with pytest.raises(ValueError):
            repeated[0] = 1.0
    assert _every_row(np.array([3], dtype="int64"), 3).dtype == np.int64
    assert len(_every_row(np.zeros(0), 4)) == 0
    assert np.isnan(_repeated(None, 3)).all() and _repeated("x", 2).tolist() == ["x", "x"]


# serving.rules.spread_authors as it was before its prefix was placed at once: the reference
def _spread_one_by_one(order: np.ndarray, authors: np.ndarray, max_run: int) -> np.ndarray:
    """Reorder `order` (row indices, best first) so no author fills more than `max_run`
    consecutive slots: a post that would break the rule waits for the first slot where it fits,
    keeping the ranking otherwise. Posts that never fit (one author left) go last, in order."""
    result: list[int] = []
    waiting: list[int] = []
    by_row = authors.tolist()  # Python ints: indexing a numpy array per check costs ~3x more
    run_author, run = None, 0  # the author ending `result`, and how many slots in a row

    def fits(row: int) -> bool:  # the last max_run slots are not all this author's
        return run < max_run or by_row[row] != run_author

    def place(row: int) -> None:
        nonlocal run_author, run
        author = by_row[row]
        run = run + 1 if author == run_author else 1
        run_author = author
        result.append(row)

    for row in order.tolist():
        placed = True
        while placed and waiting:  # an earlier, better post may fit again now
            placed = False
            for i, pending in enumerate(waiting):
                if fits(pending):
                    place(waiting.pop(i))
                    placed = True
                    break
        if fits(row):
            place(row)
        else:
            waiting.append(row)
    while waiting:
        for i, pending in enumerate(waiting):
            if fits(pending):
                place(waiting.pop(i))
                break
        else:
            result.extend(waiting)
            break
    return np.asarray(result, dtype=np.int64)


def test_spread_authors_equals_placing_every_post_one_by_one() -> None:
    from serving.rules import spread_authors

    rng = np.random.default_rng(7)
    cases = 0
    for _ in range(3_000):
        rows = int(rng.integers(0, 60))
        authors = rng.integers(0, int(rng.integers(1, 12)), rows)
        order = rng.permutation(rows)
        for max_run in (0, 1, 2, 3):
            expected = _spread_one_by_one(order, authors, max_run)
            got = spread_authors(order, authors, max_run)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, expected)
            cases += 1
    # a long feed whose only overlong run comes late (the prefix path) and one with none
    authors = np.arange(700) % 300
    authors[650:655] = 5
    for order in (np.arange(700), np.arange(600)):
        np.testing.assert_array_equal(
            spread_authors(order, authors, 2), _spread_one_by_one(order, authors, 2)
        )
    assert cases == 12_000


def test_pairs_by_viewer_read_the_rows_tuples_read(store: FakeStore) -> None:
    """`ByViewer` (a viewer's authors as ints, looked up in the viewer's own index) reads the
    same rows as (author, viewer) tuples, cold, partly cached and warm, and the pairs of
    another viewer stay apart."""
    pairs = {(1, 7): b"p1", (2, 7): b"p2", (3, 7): b"old", (1, 8): b"p2"}

    def encode(join_keys: tuple[str, ...], ids: list) -> list[bytes]:
        return [pairs.get(i, repr(i).encode()) for i in ids]

    def read_viewer(views: list[str], viewer: object) -> list[dict[bytes, bytes]]:
        return [{key: store.blobs[key] for pair, key in pairs.items() if pair[1] == viewer}]

    group = ("author_id", "user_id")
    by_tuple = DecodedVectors({group: [("posts", LAYOUT)]}, store.fetch, lambda: 1, 100)
    by_int = DecodedVectors(
        {group: [("posts", LAYOUT)]}, store.fetch, lambda: 1, 100, {group: (1, read_viewer)}
    )
    for authors, viewer in (
        ([2, 9, 1], 7),
        ([3, 5, 9, 1, 2], 7),  # partly cached
        ([1, 6], 8),  # another viewer: (1, 8) is not (1, 7)
        ([1, 2, 3], 7),  # warm
        ([], 9),
    ):
        expected = by_tuple.read({group: [(a, viewer) for a in authors]}, encode)[0]["posts"]
        blocks: dict[str, RowBlock] = {}
        got = by_int.read({group: ByViewer(authors, viewer, 1)}, encode, blocks)[0]["posts"]
        for mine, theirs in zip(got, expected, strict=True):
            assert mine is not None and theirs is not None
            np.testing.assert_array_equal(mine, theirs)
        assert len(blocks["posts"].rows) == len(authors)
    index = by_int.groups[group].index
    assert by_int.groups[group].by_viewer[8] == {1: index[(1, 8)], 6: index[(6, 8)]}


def test_rows_derived_once_per_entity_as_the_cache_grows() -> None:
    """`RowBlock.derived` computes the rows not seen yet only, and equals computing them all."""
    calls: list[int] = []
    rng = np.random.default_rng(9)
    blobs = {f"k{i}".encode(): _blob(float(i), float(rng.normal()), None) for i in range(50)}

    def fetch(requests: list[tuple[str, list[bytes]]]) -> list[list[bytes | None]]:
        return [[blobs.get(k) for k in keys] for _, keys in requests]

    def double(numbers: np.ndarray) -> tuple[np.ndarray, ...]:
        calls.append(len(numbers))
        return (numbers * 2.0,)

    cache = DecodedVectors({("post_id",): [("posts", LAYOUT)]}, fetch, lambda: 1, 100)
    owner = _Owner()
    for keys in ([3, 1, 3], [1, 2], [40, 41, 42, 1], [2, 3]):
        blocks: dict[str, RowBlock] = {}
        read = cache.read({("post_id",): [f"k{k}".encode() for k in keys]}, None, blocks)[0]
        (doubled,) = blocks["posts"].derived_rows(owner, double)
        np.testing.assert_array_equal(doubled, read["posts"][1] * 2.0)
    assert calls == [2, 1, 3]  # rows 0-1, then 2, then 3-5; the last read: all known


class _Owner:
    """A model's preprocessing, as `RowBlock.derived_rows` sees it (by identity)."""


def test_derived_rows_keep_one_set_per_view_the_newest_owners() -> None:
    """A view keeps the derived arrays of one owner: a newer one (a promoted model) replaces the
    older one's instead of sitting beside them until the store changes; the older one, still
    asking (an experiment's other arm), gets its rows computed per read, equal to before."""
    rng = np.random.default_rng(11)
    blobs = {f"k{i}".encode(): _blob(float(i), float(rng.normal()), None) for i in range(60)}

    def fetch(requests: list[tuple[str, list[bytes]]]) -> list[list[bytes | None]]:
        return [[blobs.get(k) for k in keys] for _, keys in requests]

    calls: list[tuple[str, int]] = []

    def scaled(name: str, factor: float) -> Callable[[np.ndarray], tuple[np.ndarray, ...]]:
        def compute(numbers: np.ndarray) -> tuple[np.ndarray, ...]:
            calls.append((name, len(numbers)))
            return (numbers * factor,)

        return compute

    cache = DecodedVectors({("post_id",): [("posts", LAYOUT)]}, fetch, lambda: 1, 100)
    old, new = _Owner(), _Owner()

    def read(keys: list[int]) -> tuple[RowBlock, np.ndarray]:
        blocks: dict[str, RowBlock] = {}
        got = cache.read({("post_id",): [f"k{k}".encode() for k in keys]}, None, blocks)[0]
        return blocks["posts"], got["posts"][1]

    block, numbers = read([5, 6, 7])
    np.testing.assert_array_equal(block.derived_rows(old, scaled("old", 2.0))[0], numbers * 2)
    view = block.view
    assert view.derived is not None and view.derived[0] is old
    block, numbers = read([6, 8])
    np.testing.assert_array_equal(block.derived_rows(new, scaled("new", 3.0))[0], numbers * 3)
    assert view.derived[0] is new  # the old owner's set is gone, not kept beside it
    calls.clear()
    for keys in ([5, 8, 9], [9, 10]):  # both still asking: the old one per read, uncached
        block, numbers = read(keys)
        np.testing.assert_array_equal(block.derived_rows(old, scaled("old", 2.0))[0], numbers * 2)
        np.testing.assert_array_equal(block.derived_rows(new, scaled("new", 3.0))[0], numbers * 3)
    assert calls == [("old", 3), ("new", 1), ("old", 2), ("new", 1)]
    assert view.derived[0] is new and len(view.derived[1][0]) >= 6


def test_scaled_entity_rows_give_the_tables_model_inputs() -> None:
    """Columns read from the decoded cache's entity rows (`ColumnTable.blocks`: each entity's
    row scaled once) give the model inputs their arrays give, bit for bit: nulls, log1p,
    clipping, missing indicators, expired rows read as missing, the cache growing between
    tables, a loose column and a broadcast viewer column beside them."""
    from serving.features import _repeated

    rng = np.random.default_rng(10)
    layout = VectorLayout("posts", (("likes", Int64), ("score", Float64)), (), 42)

    def blob(likes: float, score: float) -> bytes:
        return HEADER.pack(42, 1_000.0) + struct.pack("<2d", likes, score)  # no texts: no JSON

    likes = np.where(rng.random(300) < 0.2, np.nan, rng.poisson(6, 300) * 1.0)
    likes[:3] = [1e9, 0.0, -4.0]  # beyond the training range, zero, negative
    scores = np.where(rng.random(300) < 0.1, np.nan, rng.normal(size=300) * 3)
    blobs = {i: blob(a, b) for i, (a, b) in enumerate(zip(likes, scores, strict=True))}

    def fetch(requests: list[tuple[str, list[bytes]]]) -> list[list[bytes | None]]:
        return [[blobs.get(int(k)) for k in keys] for _, keys in requests]

    train = pd.DataFrame(
        {
            "posts__likes": np.where(rng.random(500) < 0.2, np.nan, rng.poisson(5, 500) * 1.0),
            "posts__score": rng.normal(size=500),
            "loose": np.where(rng.random(500) < 0.3, np.nan, rng.poisson(9, 500) * 1.0),
            "viewer": np.where(rng.random(500) < 0.3, np.nan, rng.normal(size=500)),
        }
    )
    spec = Preprocessing.fit(train, list(train.columns))
    assert spec.numeric[0].log1p and spec.numeric[0].missing_indicator
    cache = DecodedVectors({("post_id",): [("posts", layout)]}, fetch, lambda: 1, 1_000)
    for request, size in enumerate((50, 200, 120, 400, 0)):
        ids = rng.integers(0, 320, size).tolist()  # repeats; ids past 300: no row at all
        blocks: dict[str, RowBlock] = {}
        read = cache.read({("post_id",): [str(i).encode() for i in ids]}, None, blocks)
        numbers = read[0]["posts"][1]
        assert size == 0 or np.isfinite(numbers).mean() > 0.5
        expired = rng.random(size) < (0.0 if request == 1 else 0.1)
        numbers[expired] = np.nan  # as the reader applies a ttl
        block = RowBlock(blocks["posts"].view, blocks["posts"].rows, expired)
        data = {
            "posts__likes": numbers[:, 0],
            "posts__score": numbers[:, 1],
            "loose": rng.poisson(9, size) * 1.0,
            "viewer": _repeated(0.5, size),
        }
        table = ColumnTable(data, size)
        blocked = ColumnTable(
            data, size, blocks={"posts__likes": (block, 0), "posts__score": (block, 1)}
        )
        got, expected = spec.transform(blocked), spec.transform(table)
        np.testing.assert_array_equal(got["numeric"], expected["numeric"])
        np.testing.assert_array_equal(got["categorical"], expected["categorical"])


def test_viewer_rows_broadcast_into_hashtag_and_topic_matches() -> None:
    """The viewer's bucket and topic counts arrive as stride-0 columns; used as one row they
    give the same affinities and matches as the copies on every row, bit for bit."""
    from featurestore.online import _every_row, _viewer_hashtag_affinity, _viewer_post_topics

    rng = np.random.default_rng(11)
    rows, buckets = 300, rt.HASHTAG_BUCKETS
    posts = rng.poisson(0.3, (rows, buckets)).astype(float)
    posts[rng.random(rows) < 0.2] = np.nan
    topics = rng.random((rows, len(rt.TOPICS)))
    topics[rng.random(rows) < 0.2] = np.nan
    for viewer_tags in (rng.poisson(1.0, buckets) * 1.0, np.full(buckets, np.nan)):
        viewer = {f"engaged_tags_{b}": viewer_tags[b : b + 1] for b in range(buckets)}
        viewer["engaged_tags_total"] = np.array([np.nansum(viewer_tags)])
        viewer |= {f"picked_{t}": np.array([float(i % 2)]) for i, t in enumerate(rt.TOPICS)}
        candidates = {f"tags_{b}": posts[:, b] for b in range(buckets)}
        candidates |= {f"topic_{t}": topics[:, i] for i, t in enumerate(rt.TOPICS)}
        broadcast = {**{k: _every_row(v, rows) for k, v in viewer.items()}, **candidates}
        copied = {**{k: np.repeat(v, rows) for k, v in viewer.items()}, **candidates}
        assert broadcast["engaged_tags_0"].strides == (0,)
        for transformation in (_viewer_hashtag_affinity, _viewer_post_topics):
            got = transformation(broadcast, 0, TextCodes())
            expected = transformation(copied, 0, TextCodes())
            assert got.keys() == expected.keys()
            for name, values in expected.items():
                assert got[name].shape == (rows,)
                np.testing.assert_array_equal(got[name], values)
