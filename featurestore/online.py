"""Online features for serving: one user and up to 1,000 candidate posts in one call.

Feast stays the source of truth: the registry says which views and features a feature service
(or a list of feature references) needs, the online store holds the values (written by Feast's
materialization), and on-demand views run Feast's own transformation from the registry. What
changes is the read: instead of Feast's per-entity, per-feature protobuf values, the reader
fetches the per-entity vectors `featurestore.online_stores` writes beside them, all views and
entities in one round trip (one SQLite query, or one Redis MGET), and decodes them with numpy.

It also applies each view's ttl at request time, as the offline point-in-time join does (Feast's
own online read returns a value however old it is).

    reader = OnlineFeatureReader(feature_store(), "feed_ranker_v1")
    features = reader.read(user_id=1, post_ids=[...], author_ids=[...])
    features.user        # {"user_activity__likes_7d": 3, ...}
    features.candidates  # DataFrame, one row per post: post, author and pair features
"""

from __future__ import annotations

import sqlite3
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from feast import FeatureService, FeatureStore, FeatureView
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.types import Bool, Float32, Float64, Int32, Int64, String, UnixTimestamp
from feast.value_type import ValueType

from feature_repo import request_time as rt
from feature_repo.text_codes import TextCodes
from featurestore.decoded import ByViewer, Decoded, DecodedVectors, ReadViewer, RowBlock, decode
from featurestore.online_stores import (
    PlatformRedisOnlineStoreConfig,
    PlatformSqliteOnlineStoreConfig,
    redis_vector_key,
    sqlite_user_vector_table,
    sqlite_vector_table,
)
from featurestore.vectors import VectorLayout

USER, POST, AUTHOR = ("user_id",), ("post_id",), ("author_id",)
PAIR = ("author_id", "user_id")  # Feast sorts join keys when it serializes them
MAX_SQLITE_VARIABLES = 32_000
SQLITE_MMAP_BYTES = 1 << 30  # the online store read through a memory map (`_SqliteVectors`)
MAX_CACHED_ROWS = 500_000  # entities per join key decoded in memory; then that cache starts over


class EntityKeyCodec:
    """Feast's entity key serialization (version 3) for int64 join keys, without protobufs."""

    def __init__(self, join_keys: Sequence[str]) -> None:
        self.join_keys = tuple(sorted(join_keys))
        prefix = struct.pack("<I", len(self.join_keys))
        for key in self.join_keys:
            encoded = key.encode()
            prefix += struct.pack("<II", ValueType.STRING.value, len(encoded)) + encoded
        self.prefix = prefix
        value = struct.pack("<II", ValueType.INT64.value, 8)
        fields: list[tuple[str, str]] = [("prefix", f"S{len(prefix)}")]
        for i in range(len(self.join_keys)):
            fields += [(f"header{i}", "S8"), (f"value{i}", "<i8")]
        self.dtype = np.dtype(fields)
        self.value_header = value

    def encode(self, *values: int) -> bytes:
        """The key of one entity; `values` in the order of the sorted join keys."""
        return self.encode_many(*([v] for v in values))[0]

    def encode_many(self, *columns: Sequence[int]) -> list[bytes]:
        """The keys of many entities: one sequence per join key, in sorted join key order."""
        rows = len(columns[0]) if columns else 0
        packed = np.empty(rows, dtype=self.dtype)
        packed["prefix"] = self.prefix
        for i, column in enumerate(columns):
            packed[f"header{i}"] = self.value_header
            packed[f"value{i}"] = np.asarray(column, dtype="int64")
        buffer = packed.tobytes()
        width = self.dtype.itemsize
        return [buffer[i : i + width] for i in range(0, rows * width, width)]


@dataclass(frozen=True)
class ViewRead:
    """One feature view to read: its vector layout, the features wanted and how to name them."""

    view: FeatureView
    layout: VectorLayout
    features: tuple[str, ...]  # read
    outputs: tuple[str, ...]  # returned (the rest only feed on-demand views)
    prefix: str
    join_keys: tuple[str, ...]
    ttl_seconds: float | None


class ColumnRead(NamedTuple):
    """`OnlineFeatureReader.read_coded`: the user's values, the candidates' columns, and the
    candidates' text columns again as codes of `texts`."""

    user: dict[str, Any]
    columns: dict[str, Any]
    codes: dict[str, np.ndarray]
    texts: TextCodes
    # numeric candidate columns still in the decoded cache: name -> (its view's rows of this
    # read, its column in the view's numbers); empty without a cache (`ml.ranking.columns`)
    blocks: dict[str, tuple[RowBlock, int]] | None = None


@dataclass
class OnlineFeatures:
    """Features of one request: the user's, and one row per candidate post."""

    user: dict[str, Any]
    candidates: pd.DataFrame
    request_at: datetime


def _dtype_name(dtype: object) -> str:
    if dtype in (Int64, Int32):
        return "int"
    if dtype in (Float64, Float32):
        return "float"
    if dtype == Bool:
        return "bool"
    if dtype == UnixTimestamp:
        return "timestamp"
    if dtype == String:
        return "string"
    raise TypeError(f"unsupported feature type {dtype}")


def _column(values: np.ndarray, kind: str) -> Any:
    """A float64 column (NaN = null) as the feature's type, nulls kept."""
    missing = np.isnan(values)
    if kind == "int":
        return pd.arrays.IntegerArray(np.where(missing, 0, values).astype("int64"), missing)
    if kind == "bool":
        return pd.arrays.BooleanArray(values == 1.0, missing)
    if kind == "timestamp":  # whole seconds; not pd.to_datetime(unit="s"), which can overflow
        nanos = np.full(len(values), np.iinfo(np.int64).min, dtype="int64")  # NaT
        nanos[~missing] = values[~missing].astype("int64") * 1_000_000_000
        return pd.DatetimeIndex(nanos.view("M8[ns]")).tz_localize("UTC")
    return values


def _scalar(value: float, kind: str) -> Any:
    if value != value:  # NaN (np.isnan costs ~1 us on a Python float)
        return None
    if kind == "int":
        return int(value)
    if kind == "bool":
        return bool(value)
    if kind == "timestamp":
        return datetime.fromtimestamp(value, tz=UTC)
    return float(value)


def _epoch_nanos(moment: datetime) -> int:
    stamp = pd.Timestamp(moment)
    return int((stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")).value)


def _ints(ids: Sequence[int] | np.ndarray) -> list[int]:
    """Ids as a list of Python ints: one `tolist()` for an integer array (the feed passes its
    ~1,000 candidates so) rather than an `int()` call per id."""
    if isinstance(ids, np.ndarray) and ids.dtype.kind in "iu":
        return list(ids.tolist())
    return [int(i) for i in ids]


def _every_row(column: np.ndarray, rows: int) -> np.ndarray:
    """The first value of `column` on `rows` rows: a read-only stride-0 view (what
    `np.broadcast_to` makes, ~1.5 us instead of ~7 for it or ~3 for `np.repeat`'s copy). The
    user's values feed every candidate's on-demand features: ~50 per feed."""
    if not len(column):
        return np.repeat(column, rows)  # no user row: empty (a read without candidates)
    repeated = np.ndarray((rows,), column.dtype, np.array(column[0]), 0, (0,))
    repeated.flags.writeable = False
    return repeated


def _post_age(
    inputs: dict[str, np.ndarray], request_nanos: int, texts: TextCodes
) -> dict[str, np.ndarray]:
    """feature_repo.definitions.post_age on the decoded arrays (same function underneath)."""
    created, missing = rt.seconds_to_nanos(inputs["created_at"])
    return rt.post_age_arrays(created, missing, request_nanos)


def _viewer_author_at_request(
    inputs: dict[str, np.ndarray], request_nanos: int, texts: TextCodes
) -> dict[str, np.ndarray]:
    """feature_repo.definitions.viewer_author_at_request on the decoded arrays."""
    interaction, missing = rt.seconds_to_nanos(inputs["last_interaction_at"])
    return rt.viewer_author_arrays(
        inputs["is_following"],
        inputs["affinity_score"],
        inputs["affinity_half_life_hours"],
        interaction,
        missing,
        request_nanos,
    )


@dataclass(frozen=True)
class FastTransformation:
    """One of feature_repo's on-demand transformations, called on arrays (feature_repo.request_time
    holds the arithmetic both use): numbers as float64 (NaN null, times in Unix seconds), the
    inputs named in `texts` as int64 codes of the `TextCodes` passed along (-1 missing)."""

    function: Callable[[dict[str, np.ndarray], int, TextCodes], dict[str, np.ndarray]]
    inputs: frozenset[str]
    outputs: frozenset[str]
    texts: frozenset[str] = frozenset()

    def __call__(
        self, inputs: dict[str, np.ndarray], request_nanos: int, texts: TextCodes
    ) -> dict[str, np.ndarray]:
        return self.function(inputs, request_nanos, texts)


def _viewer_hashtag_affinity(
    inputs: dict[str, np.ndarray], request_nanos: int, texts: TextCodes
) -> dict[str, np.ndarray]:
    """feature_repo.definitions.viewer_hashtag_affinity on the decoded arrays (the viewer's
    bucket counts arrive broadcast to one row per candidate)."""
    buckets = range(rt.HASHTAG_BUCKETS)
    total = inputs["engaged_tags_total"]
    viewer = _matrix([inputs[f"engaged_tags_{b}"] for b in buckets])
    return rt.hashtag_affinity_arrays(
        viewer,
        total[:1] if len(viewer) == 1 and _repeats(total) else total,
        np.column_stack([inputs[f"tags_{b}"] for b in buckets]),
    )


def _repeats(column: np.ndarray) -> bool:
    """One value on every (at least one) row: a stride-0 view, as `_every_row` makes."""
    return bool(len(column)) and column.strides == (0,)


def _matrix(columns: list[np.ndarray]) -> np.ndarray:
    """`np.column_stack(columns)`, or its one row ([1, k]) when every column repeats one value
    (the viewer's): the transformations broadcast it against the candidates' rows, the same
    products and sums, without copying the viewer's ~30 values onto 1,000 rows first."""
    if columns and all(_repeats(c) for c in columns):
        return np.stack([c[:1] for c in columns], axis=1)
    return np.column_stack(columns)


def _viewer_author_similarity(
    inputs: dict[str, np.ndarray], request_nanos: int, texts: TextCodes
) -> dict[str, np.ndarray]:
    """feature_repo.definitions.viewer_author_similarity on text codes."""
    viewer_topics, author_topics = texts.tokens(inputs["interests"], inputs["author_interests"])
    return rt.viewer_author_similarity_codes(
        inputs["city"], viewer_topics, inputs["author_city"], author_topics
    )


def _viewer_post_location(
    inputs: dict[str, np.ndarray], request_nanos: int, texts: TextCodes
) -> dict[str, np.ndarray]:
    """feature_repo.definitions.viewer_post_location on text codes and coordinates."""
    return rt.viewer_post_location_codes(
        inputs["city"],
        inputs["home_latitude"],
        inputs["home_longitude"],
        inputs["location_name"],
        inputs["location_latitude"],
        inputs["location_longitude"],
    )


def _viewer_post_topics(
    inputs: dict[str, np.ndarray], request_nanos: int, texts: TextCodes
) -> dict[str, np.ndarray]:
    """feature_repo.definitions.viewer_post_topics on the decoded arrays."""
    return rt.topic_match_arrays(
        _matrix([inputs[f"picked_{t}"] for t in rt.TOPICS]),
        np.column_stack([inputs[f"topic_{t}"] for t in rt.TOPICS]),
    )


# keyed by the UDF's name as Feast keeps it
FAST_TRANSFORMATIONS = {
    "post_age": FastTransformation(
        _post_age, frozenset({"created_at"}), frozenset({"post_age_hours"})
    ),
    "viewer_author_at_request": FastTransformation(
        _viewer_author_at_request,
        frozenset(
            {"is_following", "affinity_score", "affinity_half_life_hours", "last_interaction_at"}
        ),
        frozenset({"follows_author", "affinity_now", "hours_since_interaction"}),
    ),
    # through pandas this one cost ~40 ms per 1,000 candidates (65 columns converted one by one)
    "viewer_hashtag_affinity": FastTransformation(
        _viewer_hashtag_affinity,
        frozenset(
            {
                *(f"engaged_tags_{b}" for b in range(rt.HASHTAG_BUCKETS)),
                "engaged_tags_total",
                *(f"tags_{b}" for b in range(rt.HASHTAG_BUCKETS)),
            }
        ),
        frozenset({"hashtag_affinity", "hashtag_matched_share"}),
    ),
    # the two with text inputs: through pandas they doubled an uncached feed's CPU
    "viewer_author_similarity": FastTransformation(
        _viewer_author_similarity,
        frozenset({"city", "interests", "author_city", "author_interests"}),
        frozenset({"same_home_city", "topic_overlap"}),
        texts=frozenset({"city", "interests", "author_city", "author_interests"}),
    ),
    "viewer_post_location": FastTransformation(
        _viewer_post_location,
        frozenset(
            {
                "city",
                "home_latitude",
                "home_longitude",
                "location_name",
                "location_latitude",
                "location_longitude",
            }
        ),
        frozenset({"post_in_home_city", "log_distance"}),
        texts=frozenset({"city", "location_name"}),
    ),
    "viewer_post_topics": FastTransformation(
        _viewer_post_topics,
        frozenset({*(f"picked_{t}" for t in rt.TOPICS), *(f"topic_{t}" for t in rt.TOPICS)}),
        frozenset({"topic_match"}),
    ),
}


class OnlineFeatureReader:
    """Bulk reads of a feature service (or feature references) from the online store."""

    def __init__(
        self,
        store: FeatureStore,
        features: str | Sequence[str],
        *,
        enforce_ttl: bool = True,
        cache_vectors: bool = False,
    ) -> None:
        """`cache_vectors` (SQLite only): keep the vectors read, decoded, until the next commit
        to the store (`featurestore.decoded`), for a long-lived server whose candidates repeat
        across requests."""
        self.store = store
        self.enforce_ttl = enforce_ttl
        self.service: FeatureService | None = None
        if isinstance(features, str):
            self.service = store.get_feature_service(features)
            wanted = self._service_features(self.service)
        else:
            wanted = self._reference_features(features)
        self.odfvs: list[tuple[OnDemandFeatureView, str, tuple[str, ...]]] = []
        hidden: dict[str, set[str]] = {}
        for odfv, prefix, outputs in wanted["odfv"]:
            self.odfvs.append((odfv, prefix, outputs))
            for projection in odfv.source_feature_view_projections.values():
                hidden.setdefault(projection.name, set()).update(
                    f.name for f in projection.features
                )
        self.request_fields = sorted(
            {
                f.name
                for odfv, _, _ in self.odfvs
                for s in odfv.source_request_sources.values()
                for f in s.schema
            }
        )
        views: dict[str, ViewRead] = {}
        for name, (prefix, names) in wanted["fv"].items():
            extra = sorted(hidden.get(name, set()) - set(names))
            views[name] = self._view_read(name, prefix, [*names, *extra], outputs=names)
        for name, names in hidden.items():
            if name not in views:  # read only to feed an on-demand view
                views[name] = self._view_read(name, name, sorted(names), outputs=[])
        self.views = list(views.values())
        unknown = {v.join_keys for v in self.views} - {USER, POST, AUTHOR, PAIR}
        if unknown:
            raise ValueError(f"views keyed by {sorted(unknown)} are not user, post or author")
        self.codecs: dict[tuple[str, ...], EntityKeyCodec] = {
            keys: EntityKeyCodec(keys) for keys in (USER, POST, AUTHOR, PAIR)
        }
        self.kinds = {
            v.view.name: {f.name: _dtype_name(f.dtype) for f in v.view.features} for v in self.views
        }
        self.numeric_index = {
            v.view.name: {name: i for i, (name, _) in enumerate(v.layout.numeric)}
            for v in self.views
        }
        self.string_index = {
            v.view.name: {name: i for i, name in enumerate(v.layout.strings)} for v in self.views
        }
        self.texts = TextCodes()  # the codes of uncached reads (a cache keeps its own)
        # per-on-demand-view index plans, filled on first use
        self._input_plans: dict[str, list[tuple[str, bool, list[tuple[str, bool, int]]]]] = {}
        self.fast_odfvs = [self._fast_transformation(odfv) for odfv, _, _ in self.odfvs]
        self.backend = _backend(store)
        self.groups = sorted({v.join_keys for v in self.views})
        self.decoded: DecodedVectors | None = None
        if cache_vectors and isinstance(self.backend, _SqliteVectors):
            layouts = {
                group: [(v.view.name, v.layout) for v in self.views if v.join_keys == group]
                for group in self.groups
            }
            backend = self.backend
            viewers: dict[tuple[str, ...], tuple[int, ReadViewer]] = {}
            if PAIR in layouts and backend.by_user:
                viewers[PAIR] = (PAIR.index("user_id"), backend.fetch_user)
            self.decoded = DecodedVectors(
                layouts, backend.fetch, backend.data_version, MAX_CACHED_ROWS, viewers
            )

    def _fast_transformation(self, odfv: OnDemandFeatureView) -> FastTransformation | None:
        """The array form of a known transformation when this view is exactly it (same function,
        candidate-keyed sources, numeric inputs and text inputs where it expects them, the
        request time), else None: going through pandas costs ~10 ms per 1,000 rows, the arrays
        well under 1 ms."""
        transformation = odfv.feature_transformation
        udf = getattr(transformation, "udf", None)
        fast = FAST_TRANSFORMATIONS.get(getattr(udf, "__name__", ""))
        if fast is None:
            return None
        inputs: set[str] = set()
        texts: set[str] = set()
        projections = list(odfv.source_feature_view_projections.values())
        if all(self._join_keys(p.name) == USER for p in projections):
            return None  # a per-user result: the pandas path returns it as a user value
        for projection in projections:
            for f in projection.features:
                if f.name in self.string_index[projection.name]:
                    texts.add(f.name)
                elif f.name not in self.numeric_index[projection.name]:
                    return None
                inputs.add(f.name)
        outputs = {f.name for f in odfv.features}
        requested = {f.name for r in odfv.source_request_sources.values() for f in r.schema}
        if (inputs, texts, outputs) != (fast.inputs, fast.texts, fast.outputs):
            return None
        if not requested <= {"request_at"}:
            return None
        return fast

    # --- planning ---

    def _service_features(self, service: FeatureService) -> dict[str, Any]:
        fvs: dict[str, tuple[str, list[str]]] = {}
        odfvs: list[tuple[OnDemandFeatureView, str, tuple[str, ...]]] = []
        views = self._feature_view_names()
        for projection in service.feature_view_projections:
            names = [f.name for f in projection.features]
            if projection.name in views:
                fvs[projection.name] = (projection.name_to_use(), names)
            else:
                odfv = self.store.get_on_demand_feature_view(projection.name)
                odfvs.append((odfv, projection.name_to_use(), tuple(names)))
        return {"fv": fvs, "odfv": odfvs}

    def _feature_view_names(self) -> set[str]:
        return {fv.name for fv in self.store.list_feature_views()}

    def _reference_features(self, references: Sequence[str]) -> dict[str, Any]:
        fvs: dict[str, tuple[str, list[str]]] = {}
        odfv_outputs: dict[str, list[str]] = {}
        views = self._feature_view_names()
        for reference in references:
            view_name, feature = reference.split(":", 1)
            if view_name in views:
                fvs.setdefault(view_name, (view_name, []))[1].append(feature)
            else:
                odfv_outputs.setdefault(view_name, []).append(feature)
        odfvs = [
            (self.store.get_on_demand_feature_view(name), name, tuple(outputs))
            for name, outputs in odfv_outputs.items()
        ]
        return {"fv": fvs, "odfv": odfvs}

    def _view_read(
        self, name: str, prefix: str, names: Sequence[str], outputs: Sequence[str]
    ) -> ViewRead:
        view = self.store.get_feature_view(name)
        ttl = view.ttl.total_seconds() if view.ttl else 0.0
        return ViewRead(
            view=view,
            layout=VectorLayout.of(view),
            features=tuple(names),
            outputs=tuple(outputs),
            prefix=prefix,
            join_keys=tuple(sorted(view.join_keys)),
            ttl_seconds=ttl if ttl > 0 else None,
        )

    @property
    def output_columns(self) -> list[str]:
        columns = [f"{v.prefix}__{f}" for v in self.views for f in v.outputs]
        columns += [f"{prefix}__{f}" for _, prefix, outputs in self.odfvs for f in outputs]
        return columns

    # --- reading ---

    def read(
        self,
        user_id: int | None = None,
        post_ids: Sequence[int] | None = None,
        author_ids: Sequence[int] | None = None,
        request_at: datetime | None = None,
    ) -> OnlineFeatures:
        """Features of `user_id` and of each candidate: `post_ids[i]` by `author_ids[i]` (either
        may be left out when no view needs it).

        Missing or expired values are None / NA. `request_at` (default: now) decides ttl
        expiry and feeds the on-demand views.
        """
        request_at = request_at or datetime.now(UTC)
        user, columns = self.read_columns(user_id, post_ids, author_ids, request_at)
        return OnlineFeatures(user=user, candidates=pd.DataFrame(columns), request_at=request_at)

    def read_columns(
        self,
        user_id: int | None,
        post_ids: Sequence[int] | None,
        author_ids: Sequence[int] | None,
        request_at: datetime,
        *,
        numbers: bool = False,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """`read` without the DataFrame: the user's values and the candidates' columns (arrays),
        for callers that build a frame of their own (one constructor call instead of two).

        `numbers`: candidates' numeric, boolean and timestamp columns as float64 arrays (NaN =
        null, times in Unix seconds) rather than typed (nullable) columns: what the ranker's
        preprocessing reads anyway, without building a pandas array per column."""
        read = self.read_coded(user_id, post_ids, author_ids, request_at, numbers=numbers)
        return read.user, read.columns

    def read_coded(
        self,
        user_id: int | None,
        post_ids: Sequence[int] | np.ndarray | None,
        author_ids: Sequence[int] | np.ndarray | None,
        request_at: datetime,
        *,
        numbers: bool = False,
    ) -> ColumnRead:
        """`read_columns`, plus the candidates' text columns as int64 codes (-1 missing) of the
        `TextCodes` returned with them, for the ranker's categoricals (`ml.ranking.columns`)."""
        now = request_at.timestamp()
        posts = _ints(post_ids) if post_ids is not None else None
        authors = _ints(author_ids) if author_ids is not None else None
        if posts is not None and authors is not None and len(authors) != len(posts):
            raise ValueError("author_ids must align with post_ids")
        rows = len(posts) if posts is not None else len(authors) if authors is not None else 0
        needs = {v.join_keys for v in self.views}
        if needs & {USER, PAIR} and user_id is None:
            raise ValueError("these features need user_id")
        if rows and POST in needs and posts is None:
            raise ValueError("these features need post_ids")
        if rows and needs & {AUTHOR, PAIR} and authors is None:
            raise ValueError("these features need the author of every candidate (author_ids)")

        ids: dict[tuple[str, ...], Any] = {}
        if USER in needs:
            ids[USER] = [user_id]
        if POST in needs and posts is not None:
            ids[POST] = posts
        if AUTHOR in needs and authors is not None:
            ids[AUTHOR] = authors
        if PAIR in needs and authors is not None:
            ids[PAIR] = ByViewer(authors, user_id, PAIR.index("user_id"))  # type: ignore[arg-type]

        row_blocks: dict[str, RowBlock] = {}
        views, texts = self._decode(ids, row_blocks)
        blocks: dict[str, tuple[RowBlock, int]] = {}

        user: dict[str, Any] = {}
        columns: dict[str, Any] = {}
        coded: dict[str, np.ndarray] = {}
        if posts is not None:
            columns["post_id"] = np.asarray(posts, dtype="int64")
        if authors is not None:
            columns["author_id"] = np.asarray(authors, dtype="int64")
        decoded: dict[str, tuple[ViewRead, np.ndarray, np.ndarray | None]] = {}
        # the fast on-demand path: numbers as float64 (NaN null), texts as codes (-1 missing)
        raw: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        for view in self.views:
            times, matrix, strings, codes = views[view.view.name]
            ttl_applied = False
            if self.enforce_ttl and view.ttl_seconds is not None:
                expired = now - times > view.ttl_seconds
                ttl_applied = bool(expired.any())
                if ttl_applied:
                    matrix[expired] = np.nan
                    if strings is not None and codes is not None:
                        strings[expired] = None
                        codes[expired] = -1
            decoded[view.view.name] = (view, matrix, strings)
            raw[view.view.name] = (matrix, codes)
            scalar = view.join_keys == USER
            # posts' and authors' rows, shared by every viewer: their derived values (the
            # ranker's scaled columns) pay off; a pair's row serves its one viewer (and the
            # bench's 1,000 viewers x 1,000 pairs overflow the cache: mostly first reads)
            block = row_blocks.get(view.view.name) if view.join_keys in (POST, AUTHOR) else None
            if numbers and not scalar and block is not None:
                block = RowBlock(block.view, block.rows, expired if ttl_applied else None)
                numeric_index = self.numeric_index[view.view.name]
                kinds = self.kinds[view.view.name]
                for feature in view.outputs:
                    if kinds[feature] != "string":
                        blocks[f"{view.prefix}__{feature}"] = (block, numeric_index[feature])
            values = self._view_values(
                view, matrix, strings, scalar=scalar, numbers=numbers and not scalar
            )
            target = user if scalar else columns
            for feature in view.outputs:
                target[f"{view.prefix}__{feature}"] = values[feature]
            if codes is not None and not scalar:
                string_index = self.string_index[view.view.name]
                for feature in view.outputs:
                    if feature in string_index:
                        coded[f"{view.prefix}__{feature}"] = codes[:, string_index[feature]]

        request_nanos = _epoch_nanos(request_at)  # once: a pandas Timestamp costs ~20 us
        for (odfv, prefix, outputs), fast in zip(self.odfvs, self.fast_odfvs, strict=True):
            if fast is not None:  # a known transformation, computed on the arrays directly
                arrays = fast(self._raw_inputs(odfv, raw, rows), request_nanos, texts)
                for feature in outputs:
                    columns[f"{prefix}__{feature}"] = arrays[feature]
                continue
            inputs = {  # typed, as Feast hands them to the transformation
                name: self._view_values(view, matrix, strings, scalar=view.join_keys == USER)
                for name, (view, matrix, strings) in decoded.items()
            }
            result = self._transform(odfv, inputs, request_at, rows)
            per_user = all(
                self._join_keys(p.name) == USER
                for p in odfv.source_feature_view_projections.values()
            )
            for feature in outputs:
                series = result[feature]
                if per_user:
                    user[f"{prefix}__{feature}"] = series.iloc[0] if len(series) else None
                else:
                    columns[f"{prefix}__{feature}"] = series.to_numpy()
        return ColumnRead(user, columns, coded, texts, blocks)

    def _decode(
        self, ids: dict[tuple[str, ...], Any], blocks: dict[str, RowBlock] | None = None
    ) -> tuple[dict[str, Decoded], TextCodes]:
        """Every view's event times, numbers, strings and their codes (rows x features), one row
        per entity id (ints; a `ByViewer` of (author, user) pairs for PAIR), and the
        `TextCodes` of those codes; from the decoded cache when the reader keeps one (which
        also fills `blocks`). The arrays are the caller's to edit."""
        if self.decoded is not None:
            return self.decoded.read(
                {group: ids.get(group, []) for group in self.groups}, self._keys, blocks
            )
        ids = {k: v.pairs() if isinstance(v, ByViewer) else v for k, v in ids.items()}
        if len(self.texts) >= MAX_CACHED_ROWS:  # a new one: a read in flight keeps the old
            self.texts = TextCodes()
        texts = self.texts
        keys = {group: self._keys(group, entities) for group, entities in ids.items()}
        requests = [(v.view.name, keys.get(v.join_keys, [])) for v in self.views]
        out: dict[str, Decoded] = {}
        for view, blobs in zip(self.views, self.backend.fetch(requests), strict=True):
            out[view.view.name] = decode(view.layout, blobs, texts)
        return out, texts

    def _keys(self, join_keys: tuple[str, ...], ids: list[Any]) -> list[bytes]:
        """The online store's keys of entities given by id (tuples in sorted join key order
        when the view has several join keys)."""
        codec = self.codecs[join_keys]
        if len(join_keys) == 1:
            return codec.encode_many(ids)
        return codec.encode_many(*(list(column) for column in zip(*ids, strict=True)))

    def _raw_inputs(
        self,
        odfv: OnDemandFeatureView,
        raw: dict[str, tuple[np.ndarray, np.ndarray | None]],
        rows: int,
    ) -> dict[str, np.ndarray]:
        """An on-demand view's inputs as float64 columns (NaN = null, times in Unix seconds) or
        text codes, the user's values repeated on every candidate row."""
        out: dict[str, np.ndarray] = {}
        for view_name, per_user, fields in self._input_plan(odfv):
            numbers, codes = raw[view_name]
            for name, is_text, j in fields:
                if is_text:
                    assert codes is not None
                    column = codes[:, j]
                else:
                    column = numbers[:, j]
                out[name] = _every_row(column, rows) if per_user else column
        return out

    def _input_plan(
        self, odfv: OnDemandFeatureView
    ) -> list[tuple[str, bool, list[tuple[str, bool, int]]]]:
        """Per source view of `odfv`: its name, whether it is keyed by the user, and each input
        (name, is a text, its column); worked out once per view, not per request."""
        plans = self._input_plans
        plan = plans.get(odfv.name)
        if plan is None:
            plan = []
            for projection in odfv.source_feature_view_projections.values():
                numeric = self.numeric_index[projection.name]
                strings = self.string_index[projection.name]
                fields = [
                    (f.name, True, strings[f.name])
                    if f.name in strings
                    else (f.name, False, numeric[f.name])
                    for f in projection.features
                ]
                per_user = self._join_keys(projection.name) == USER
                plan.append((projection.name, per_user, fields))
            plans[odfv.name] = plan
        return plan

    def _join_keys(self, view_name: str) -> tuple[str, ...]:
        return next(v.join_keys for v in self.views if v.view.name == view_name)

    def _view_values(
        self,
        view: ViewRead,
        matrix: np.ndarray,
        strings: np.ndarray | None,
        scalar: bool,
        numbers: bool = False,
    ) -> dict[str, Any]:
        kinds = self.kinds[view.view.name]
        numeric_index = self.numeric_index[view.view.name]
        string_index = self.string_index[view.view.name]
        values: dict[str, Any] = {}
        # numbers for serving: columns of the request's own matrix (this read's copy of the
        # rows), as views: no copy per view (the ranker's preprocessing gathers what it needs)
        by_feature = numbers and not scalar
        row = matrix[0].tolist() if scalar and len(matrix) else None  # Python floats, once
        for feature in view.features:
            kind = kinds[feature]
            if kind == "string":
                if strings is None:
                    texts = np.full(len(matrix), None, dtype=object)
                else:
                    texts = strings[:, string_index[feature]].copy()
                values[feature] = texts[0] if scalar else texts
            else:
                if row is not None:
                    values[feature] = _scalar(row[numeric_index[feature]], kind)
                    continue
                column = matrix[:, numeric_index[feature]]
                if scalar:
                    values[feature] = _scalar(column[0], kind)
                elif by_feature:
                    if feature in view.outputs:  # the others only feed on-demand views
                        values[feature] = column
                else:
                    values[feature] = _column(column, kind)
        return values

    def _transform(
        self,
        odfv: OnDemandFeatureView,
        inputs: dict[str, dict[str, Any]],
        request_at: datetime,
        rows: int,
    ) -> pd.DataFrame:
        """Run the on-demand view's own transformation (from the registry) on the batch."""
        frame: dict[str, Any] = {}
        for projection in odfv.source_feature_view_projections.values():
            values = inputs[projection.name]
            for f in projection.features:
                value = values[f.name]
                if self._join_keys(projection.name) == USER:
                    value = [value] * max(rows, 1)
                frame[f.name] = value
        stamp = (
            pd.Timestamp(request_at).tz_convert("UTC")
            if request_at.tzinfo
            else pd.Timestamp(request_at, tz="UTC")
        )
        for name in self.request_fields:
            frame[name] = pd.DatetimeIndex([stamp]).repeat(max(rows, 1))
        assert odfv.feature_transformation is not None
        return odfv.feature_transformation.udf(pd.DataFrame(frame))

    def close(self) -> None:
        self.backend.close()


class _SqliteVectors:
    """Reads blobs with one query per request (one connection for the process's threads: a
    fetch at a time, ~1 ms warm); caching, if any, is `featurestore.decoded`'s.

    The views of one entity (a viewer's ~250 new (author, viewer) pairs across the 4 pair views,
    or a post's 7 views) are asked for together, `view IN (..) AND entity_key IN (..)`: each key
    bound and parsed once rather than once per view (a viewer's first feed spent 0.7 ms of its
    ~3 ms pair read on a per-view IN list). The file is memory-mapped: a first read seeks ~1,000
    keys in pages scattered over the store, and a mapped page costs no read() call and no copy
    (~1.4 vs ~2.1 ms for those seeks, measured on the bench's store)."""

    def __init__(self, path: str, project: str) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self.conn.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}").fetchall()
        self.table = sqlite_vector_table(project)
        self.user_table = sqlite_user_vector_table(project)
        # a store written before the by-user table existed reads pairs key by key
        self.by_user = bool(
            self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (self.user_table,)
            ).fetchone()
        )
        self.lock = threading.Lock()

    def fetch_user(self, views: list[str], user_id: Any) -> list[dict[bytes, bytes]]:
        """Per view, entity key -> blob of every entity of `user_id` in these by-user views:
        one range of the table per view."""
        found: dict[str, dict[bytes, bytes]] = {view: {} for view in views}
        with self.lock:
            rows = self.conn.execute(
                f'SELECT view, entity_key, vector FROM "{self.user_table}" WHERE view IN '
                f"({','.join('?' * len(views))}) AND user_id = ?",
                [*views, int(user_id)],
            ).fetchall()
        for view, key, vector in rows:
            found[view][key] = vector
        return [found[view] for view in views]

    def data_version(self) -> int:
        """Changes whenever another connection commits to the database (one cheap statement)."""
        with self.lock:
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def fetch(self, requests: list[tuple[str, list[bytes]]]) -> list[list[bytes | None]]:
        """Blobs for every (view, keys) request, aligned with the keys: one query."""
        with self.lock:
            return self._fetch(requests)

    def _fetch(self, requests: list[tuple[str, list[bytes]]]) -> list[list[bytes | None]]:
        found: list[dict[bytes, bytes]] = [{} for _ in requests]
        # views: name -> the requests asking for it, per batch of requests sharing their keys
        batches: list[tuple[dict[str, list[int]], list[bytes]]] = []
        for i, (view, keys) in enumerate(requests):
            if batches and _same_keys(requests[next(iter(batches[-1][0].values()))[0]][1], keys):
                batches[-1][0].setdefault(view, []).append(i)
            else:
                batches.append(({view: [i]}, list(dict.fromkeys(keys))))
        parts: list[str] = []
        params: list[Any] = []
        for b, (views, keys) in enumerate(batches):
            names = list(views)
            per = max(1, min(len(names), MAX_SQLITE_VARIABLES // 2))
            for first in range(0, len(names), per):
                some = names[first : first + per]
                room = MAX_SQLITE_VARIABLES - len(some)
                for start in range(0, len(keys), room):
                    chunk = keys[start : start + room]
                    if parts and len(params) + len(some) + len(chunk) > MAX_SQLITE_VARIABLES:
                        self._collect(parts, params, batches, found)
                        parts, params = [], []
                    parts.append(
                        f'SELECT {b}, view, entity_key, vector FROM "{self.table}" WHERE view IN '
                        f"({','.join('?' * len(some))}) AND entity_key IN "
                        f"({','.join('?' * len(chunk))})"
                    )
                    params += [*some, *chunk]
        if parts:
            self._collect(parts, params, batches, found)
        return [
            [by_key.get(k) for k in keys] for by_key, (_, keys) in zip(found, requests, strict=True)
        ]

    def _collect(
        self,
        parts: list[str],
        params: list[Any],
        batches: list[tuple[dict[str, list[int]], list[bytes]]],
        found: list[dict[bytes, bytes]],
    ) -> None:
        for b, view, key, vector in self.conn.execute(" UNION ALL ".join(parts), params):
            for i in batches[b][0][view]:
                found[i][key] = vector

    def close(self) -> None:
        self.conn.close()


def _same_keys(a: list[bytes], b: list[bytes]) -> bool:
    """The same key list (the same object when one entity's views are asked for together)."""
    return a is b or a == b


class _RedisVectors:
    def __init__(self, client: Any, project: str) -> None:
        self.client = client
        self.project = project.encode()

    def fetch(self, requests: list[tuple[str, list[bytes]]]) -> list[list[bytes | None]]:
        """Blobs for every (view, keys) request, aligned with the keys: one MGET for all."""
        all_keys = [
            redis_vector_key(view, key + self.project) for view, keys in requests for key in keys
        ]
        values = self.client.mget(all_keys) if all_keys else []
        out: list[list[bytes | None]] = []
        start = 0
        for _, keys in requests:
            out.append(values[start : start + len(keys)])
            start += len(keys)
        return out

    def close(self) -> None:
        self.client.close()


def _backend(store: FeatureStore) -> _SqliteVectors | _RedisVectors:
    online = store.config.online_store
    if isinstance(online, PlatformSqliteOnlineStoreConfig):
        return _SqliteVectors(online.path, store.project)
    if isinstance(online, PlatformRedisOnlineStoreConfig):
        from feast.infra.online_stores.redis import RedisOnlineStore

        client = RedisOnlineStore()._get_client(online)
        return _RedisVectors(client, store.project)
    raise TypeError(
        f"online store {online.type!r} does not keep feature vectors: use the types in "
        "featurestore.online_stores (featurestore.config does)"
    )
