"""The request-time features, written once as array functions.

A value that depends on when the feed is requested (a post's age, an affinity decayed to now)
cannot be stored in a feature table, so it is computed at request time. The feature tables carry
everything else, the half life included (`feat_viewer_author__affinity.affinity_half_life_hours`),
so no rule of the dbt project is repeated here. Both callers use these functions:

- Feast's on-demand views (`feature_repo.definitions`: training sets, Feast's own online reads)
  through `post_age` / `viewer_author_at_request`, pandas frames in and out;
- the bulk online reader (`featurestore.online`), which hands over the arrays it decoded and so
  skips pandas (about 10 ms per 1,000 rows saved).

Times are int64 nanoseconds since the epoch with a separate null mask: float64 cannot hold
today's nanoseconds exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from feature_repo.text_codes import TextCodes

NANOS = 1_000_000_000
HASHTAG_BUCKETS = 32  # dbt var hashtag_buckets: hashtags hashed into this many buckets
HASHTAG_PRIOR = 4.0  # pseudo-engagements that keep a viewer with 1 tagged engagement modest
EARTH_RADIUS_KM = 6371.0
# dbt var topics: the signup topics, in the order of feat_user__topics / feat_post__topics columns
TOPICS = (
    "travel",
    "food",
    "fitness",
    "fashion",
    "pets",
    "music",
    "art",
    "sports",
    "tech",
    "nature",
    "family",
    "cars",
)


def hours_since(start_nanos: np.ndarray, missing: np.ndarray, request_nanos) -> np.ndarray:
    """Hours from each start to the request (one instant, or one per row), clipped at 0; NaN
    where the start is null."""
    elapsed = (request_nanos - np.where(missing, 0, start_nanos)) / NANOS
    hours = np.maximum(elapsed / 3600.0, 0.0)
    return np.where(missing, np.nan, hours)


def post_age_arrays(created_nanos, created_missing, request_nanos) -> dict[str, np.ndarray]:
    return {"post_age_hours": hours_since(created_nanos, created_missing, request_nanos)}


def viewer_author_arrays(
    is_following: np.ndarray,
    affinity_score: np.ndarray,
    half_life_hours: np.ndarray,
    interaction_nanos: np.ndarray,
    interaction_missing: np.ndarray,
    request_nanos,
) -> dict[str, np.ndarray]:
    """Follow state (never followed: 0) and the affinity decayed to the request (none: 0).
    Numbers are float64 with NaN for null."""
    hours = hours_since(interaction_nanos, interaction_missing, request_nanos)
    decayed = affinity_score * np.exp2(-hours / half_life_hours)
    return {
        "follows_author": (is_following == 1.0).astype("int64"),
        "affinity_now": np.where(np.isnan(decayed), 0.0, decayed),
        "hours_since_interaction": hours,
    }


def hashtag_affinity_arrays(
    viewer_tags: np.ndarray, viewer_total: np.ndarray, post_tags: np.ndarray
) -> dict[str, np.ndarray]:
    """The viewer x hashtag affinity of each candidate, from bucket counts ([rows, buckets];
    NaN = no row: no history, or a post without hashtags, which score 0 rather than fail).

    - hashtag_affinity: the mean, over the post's hashtags, of the viewer's share of engaged tags
      in that tag's bucket (shares smoothed by HASHTAG_PRIOR pseudo-engagements);
    - hashtag_matched_share: the share of the post's hashtags in buckets the viewer engaged with.
    """
    viewer = np.nan_to_num(viewer_tags, nan=0.0)
    total = np.nan_to_num(viewer_total, nan=0.0)
    post = np.nan_to_num(post_tags, nan=0.0)
    n_tags = np.maximum(post.sum(axis=1), 1.0)
    share = viewer / (total + HASHTAG_PRIOR)[:, None]
    return {
        "hashtag_affinity": (post * share).sum(axis=1) / n_tags,
        "hashtag_matched_share": (post * (viewer > 0)).sum(axis=1) / n_tags,
    }


def topic_match_arrays(picked: np.ndarray, post_topics: np.ndarray) -> dict[str, np.ndarray]:
    """How much of what the post is about the viewer picked at signup ([rows, topics] each; NaN =
    no row: a viewer without topics or a post without hashtags scores 0, not an error).

    - topic_match: sum over topics of the post's share (feat_post__topics) x picked (0/1).
    """
    match = (np.nan_to_num(picked, nan=0.0) * np.nan_to_num(post_topics, nan=0.0)).sum(axis=1)
    return {"topic_match": match}


def viewer_author_similarity_codes(
    viewer_city: np.ndarray,
    viewer_topics: np.ndarray,
    author_city: np.ndarray,
    author_topics: np.ndarray,
) -> dict[str, np.ndarray]:
    """What the viewer and the author have in common (unknown on either side: 0), on text codes
    (`feature_repo.text_codes`: cities as int64 codes, -1 missing; topics as bool token rows).

    - same_home_city: 1 when both home cities are known and equal;
    - topic_overlap: Jaccard similarity of their signup topics (comma-joined lists).
    """
    both = (viewer_topics & author_topics).sum(axis=1)
    either = (viewer_topics | author_topics).sum(axis=1)  # 0 only when a side has no topics
    overlap = np.divide(both, either, out=np.zeros(len(both)), where=either > 0)
    return {
        "same_home_city": ((viewer_city >= 0) & (viewer_city == author_city)).astype("int64"),
        "topic_overlap": overlap,
    }


def viewer_author_similarity_arrays(
    viewer_city, viewer_interests, author_city, author_interests
) -> dict[str, np.ndarray]:
    """`viewer_author_similarity_codes` on texts (None, NaN or "" for unknown)."""
    codes = TextCodes()
    viewer_topics, author_topics = codes.tokens(
        codes.encode(viewer_interests), codes.encode(author_interests)
    )
    return viewer_author_similarity_codes(
        codes.encode(viewer_city), viewer_topics, codes.encode(author_city), author_topics
    )


def viewer_post_location_codes(
    viewer_city: np.ndarray,
    viewer_lat: np.ndarray,
    viewer_lon: np.ndarray,
    location_name: np.ndarray,
    location_lat: np.ndarray,
    location_lon: np.ndarray,
) -> dict[str, np.ndarray]:
    """The post's tagged place against the viewer's home (no place or no home: 0); the city and
    the place name as text codes of one `TextCodes` (-1 missing), coordinates NaN when null.

    - post_in_home_city: 1 when the place is the viewer's home city;
    - log_distance: log1p(great-circle km / 100) from the viewer's home to the place.
    """
    lat1, lon1 = np.radians(viewer_lat), np.radians(viewer_lon)
    lat2, lon2 = np.radians(location_lat), np.radians(location_lon)
    h = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return {
        "post_in_home_city": ((viewer_city >= 0) & (viewer_city == location_name)).astype("int64"),
        "log_distance": np.where(np.isnan(km), 0.0, np.log1p(np.nan_to_num(km) / 100.0)),
    }


def viewer_post_location_arrays(
    viewer_city, viewer_lat, viewer_lon, location_name, location_lat, location_lon
) -> dict[str, np.ndarray]:
    """`viewer_post_location_codes` on texts (None, NaN or "" for unknown)."""
    codes = TextCodes()
    return viewer_post_location_codes(
        codes.encode(viewer_city),
        viewer_lat,
        viewer_lon,
        codes.encode(location_name),
        location_lat,
        location_lon,
    )


# --- pandas in, arrays out ----------------------------------------------------------------------


def nanos(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps (datetimes, or Unix seconds as Feast's online reads return them) as int64
    nanoseconds and a null mask."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        seconds = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        missing = np.isnan(seconds)
        return np.where(missing, 0, seconds).astype("int64") * NANOS, missing
    stamps = pd.to_datetime(values, utc=True).dt.tz_convert(None).dt.as_unit("ns")
    as_int = stamps.to_numpy().view("int64")  # NaT reads as int64 min: masked
    return as_int, stamps.isna().to_numpy()


def numbers(values: pd.Series) -> np.ndarray:
    """A numeric or boolean column as float64, NaN for null."""
    if pd.api.types.is_bool_dtype(values) or values.dtype == object:
        values = values.astype("boolean") if values.dtype == object else values
        values = values.astype("Float64")
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def seconds_to_nanos(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole Unix seconds as float64 (NaN null), as the online vectors hold them."""
    missing = np.isnan(seconds)
    return np.where(missing, 0, seconds).astype("int64") * NANOS, missing
