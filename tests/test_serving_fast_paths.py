"""The uncached feed's fast paths give exactly what the slower paths they replace give.

- `ml.ranking.columns.ColumnTable` (float64 arrays, serving) vs a DataFrame of typed nullable
  columns (what the reader returned before): the same model inputs, bit for bit;
- the viewer x hashtag on-demand view on arrays vs Feast's pandas UDF;
- `featurestore.decoded.DecodedVectors`: the rows an uncached read decodes, from memory until the
  store's version changes.

Pure and small (no platform); tests/test_feature_store.py reads the real online store.
"""

import struct

import numpy as np
import orjson
import pandas as pd
import pytest
from feast.types import Float64, Int64

from feature_repo import definitions
from feature_repo import request_time as rt
from featurestore.decoded import DecodedVectors
from featurestore.online import _viewer_hashtag_affinity
from featurestore.vectors import HEADER, VectorLayout
from ml.ranking.columns import ColumnTable, take_rows
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
    got = _viewer_hashtag_affinity(arrays, 0)
    for name in expected.columns:
        np.testing.assert_array_equal(got[name], expected[name].to_numpy())
    assert (got["hashtag_affinity"] > 0).any()


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
    times, numbers, strings = cache.read({("post_id",): keys})["posts"]
    fresh = LAYOUT.decode_many([store.blobs.get(k) for k in keys])
    np.testing.assert_array_equal(times, fresh[0])
    np.testing.assert_array_equal(numbers, fresh[1])
    assert strings is not None and strings.tolist() == fresh[2]
    assert store.fetched == [[b"p2", b"p1", b"nope", b"old"]]  # each distinct key once

    numbers[:] = -1.0  # the caller's copy: editing it (ttl expiry does) leaves the cache alone
    again = cache.read({("post_id",): [b"p1", b"nope"]})["posts"]
    assert store.fetched == [[b"p2", b"p1", b"nope", b"old"]]  # no new read
    np.testing.assert_array_equal(again[1][0], [1.0, 0.5])
    assert np.isnan(again[1][1]).all() and again[2] is not None and again[2][1, 0] is None


def test_decoded_vectors_start_over_when_the_store_changes_or_fills(store: FakeStore) -> None:
    cache = _cache(store, max_rows=3)
    cache.read({("post_id",): [b"p1"]})
    store.blobs[b"p1"] = _blob(5, 0.0, "video")
    assert cache.read({("post_id",): [b"p1"]})["posts"][1][0, 0] == 1.0  # same version: cached
    store.version = 2  # a commit (materialization)
    assert cache.read({("post_id",): [b"p1"]})["posts"][1][0, 0] == 5.0
    cache.read({("post_id",): [b"a", b"b"]})  # 3 rows: full
    before = len(store.fetched)
    cache.read({("post_id",): [b"c", b"p1"]})  # would exceed: the group starts over
    assert store.fetched[before:] == [[b"c", b"p1"]]


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
            },
        ],
        "excluded": [{"post_id": 5, "reason": "duplicate"}],
    }
    assert rank_body(response) == RankResponse.model_validate(response).model_dump_json().encode()
