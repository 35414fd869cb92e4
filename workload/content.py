"""Posts and stories: what users publish, when, with which media, hashtags and places.

Each user posts at their own gamma-distributed rate (celebrities more), in their local daytime.
Hashtags come from a Zipf vocabulary in which a few mid-ranked tags trend: inside their burst
window they are drawn `trending_boost` times more often. A few posts are deleted later; stories
expire exactly 24 h after creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workload.config import WorkloadConfig
from workload.events import EventBatch, format_ms
from workload.graph import MINUTE_MS, SERVER_MARGIN_MS, Graph
from workload.ground_truth import MEDIA_TYPES
from workload.sampling import (
    DAY_MS,
    HOUR_MS,
    NEVER,
    counts_over,
    diurnal_times,
    server_delay,
    snowflake_ids,
)
from workload.vocab import CAPTIONS, CITIES, EMOJI, SUFFIXES, TOPICS, WORDS

STORY_LIFETIME_MS = DAY_MS
PHOTO_SIZES = ((1080, 1080), (1080, 1350), (1080, 566), (1440, 1800), (750, 750))
VIDEO_SIZES = ((1080, 1920), (720, 1280), (1080, 1350), (1920, 1080))
STORY_SIZES = ((1080, 1920), (720, 1280))
MAX_VIDEO_MS = 90_000
MAX_STORY_VIDEO_MS = 15_000


@dataclass
class Trend:
    """A hashtag drawn `boost` times more often in [start_ms, end_ms)."""

    hashtag: str
    tag: int
    start_ms: int
    end_ms: int
    boost: float


@dataclass
class Content:
    """Posts (row = post index) and stories, with the batches that announce them.

    posts: post_id, author (user index), created_ms, deleted_ms (NEVER if kept), media (0 photo,
        1 video, 2 carousel, as MEDIA_TYPES), quality (hidden), visible_quality (the part the
        first media item shows), topic (TOPICS id), location (CITIES index, -1: none),
        public (author not private)
    stories: story_id, author, created_ms, expires_ms
    post_tags: the hashtag indexes of each post; hashtags: the vocabulary (the tag of rank r is
        about topic r % len(TOPICS): see `tag_topic`)
    """

    posts: pd.DataFrame
    stories: pd.DataFrame
    post_tags: list[list[int]]
    hashtags: list[str]
    trends: list[Trend]
    batches: list[EventBatch]


def build_content(config: WorkloadConfig, graph: Graph, rng: np.random.Generator) -> Content:
    users = graph.users
    cutoff = config.end_ms - SERVER_MARGIN_MS
    hashtags = _vocabulary(config, rng)
    weights = 1.0 / np.arange(1, len(hashtags) + 1) ** config.hashtag_zipf
    trends = _trends(config, rng, hashtags)

    activity = np.where(users["is_celebrity"].to_numpy(), config.celebrity_activity, 1.0)
    posts = _schedule(rng, users, config.posts_per_day * activity, 0.7, cutoff)
    n_posts = len(posts)
    posts["post_id"] = snowflake_ids(rng, posts["created_ms"].to_numpy())
    posts["media"] = rng.choice(3, n_posts, p=list(config.media_mix))
    truth = config.truth
    latent = truth.quality_sd * rng.standard_normal(n_posts) + (
        truth.celebrity_quality_bonus * users["is_celebrity"].to_numpy()[posts["author"]]
    )
    posts["public"] = ~users["is_private"].to_numpy()[posts["author"]]
    deleted = posts["created_ms"].to_numpy() + MINUTE_MS
    deleted += rng.exponential(8 * HOUR_MS, n_posts).astype(np.int64)
    doomed = (rng.random(n_posts) < config.post_delete_probability) & (deleted < cutoff)
    posts["deleted_ms"] = np.where(doomed, deleted, NEVER)
    posts["topic"] = _post_topics(config, rng, users, posts["author"].to_numpy())
    posts["location"] = _post_locations(config, rng, users, posts["author"].to_numpy())
    post_tags = _post_tags(
        config, rng, posts["created_ms"].to_numpy(), posts["topic"].to_numpy(), weights, trends
    )
    stories = _schedule(rng, users, config.stories_per_day * np.sqrt(activity), 0.6, cutoff)
    stories["story_id"] = snowflake_ids(rng, stories["created_ms"].to_numpy())
    stories["expires_ms"] = stories["created_ms"] + STORY_LIFETIME_MS

    created, visible = _post_created(config, rng, graph, posts, post_tags, hashtags)
    posts["visible_quality"] = visible
    posts["quality"] = truth.visible_quality_sd * visible + latent
    batches = [
        created,
        _post_deleted(rng, users, posts, doomed),
        _story_created(rng, users, stories),
    ]
    return Content(posts, stories, post_tags, hashtags, trends, batches)


def _schedule(
    rng: np.random.Generator,
    users: pd.DataFrame,
    mean_rate: np.ndarray,
    shape: float,
    cutoff: int,
) -> pd.DataFrame:
    """Times at which each user publishes: gamma-distributed personal rate, diurnal pattern."""
    n = len(users)
    rate = rng.gamma(shape, 1.0 / shape, n) * mean_rate
    lo = users["created_ms"].to_numpy() + 10 * MINUTE_MS
    hi = np.full(n, cutoff, dtype=np.int64)
    counts = counts_over(rng, rate, lo, hi)
    author = np.repeat(np.arange(n), counts)
    created = diurnal_times(rng, lo[author], hi[author], users["tz"].to_numpy()[author])
    order = np.lexsort((author, created))
    return pd.DataFrame({"author": author[order], "created_ms": created[order]})


def _vocabulary(config: WorkloadConfig, rng: np.random.Generator) -> list[str]:
    combos = [w + s for w in WORDS for s in SUFFIXES]
    size = min(config.hashtag_vocabulary, len(combos))
    picked = rng.permutation(len(combos))[:size]
    return [combos[i] for i in picked]  # position = Zipf rank


def _trends(config: WorkloadConfig, rng: np.random.Generator, hashtags: list[str]) -> list[Trend]:
    """Mid-ranked tags (rank 10-60) that burst for about `trending_hours` somewhere in the window."""
    lo_rank, hi_rank = min(10, len(hashtags) - 1), min(60, len(hashtags))
    count = min(config.trending_hashtags, hi_rank - lo_rank)
    tags = rng.choice(np.arange(lo_rank, hi_rank), count, replace=False)
    duration = int(config.trending_hours * HOUR_MS)
    earliest = config.start_ms + 4 * HOUR_MS
    latest = max(earliest, config.end_ms - duration - 2 * HOUR_MS)
    trends = []
    for tag in sorted(tags.tolist()):
        start = int(rng.integers(earliest, latest + 1))
        trends.append(Trend(hashtags[tag], tag, start, start + duration, config.trending_boost))
    return trends


def tag_topic(tag: int) -> int:
    """The TOPICS id a hashtag (by vocabulary rank) is about."""
    return tag % len(TOPICS)


def _post_topics(
    config: WorkloadConfig, rng: np.random.Generator, users: pd.DataFrame, author: np.ndarray
) -> np.ndarray:
    """One of the author's interests with probability topical_share, else any topic."""
    interests = users["interests"].tolist()
    own = np.array(
        [
            interests[a][int(u * len(interests[a]))]
            for a, u in zip(author, rng.random(len(author)), strict=True)
        ]
    )
    other = rng.integers(0, len(TOPICS), len(author))
    return np.where(rng.random(len(author)) < config.truth.topical_share, own, other)


def _post_locations(
    config: WorkloadConfig, rng: np.random.Generator, users: pd.DataFrame, author: np.ndarray
) -> np.ndarray:
    """CITIES index of each post's tagged location (-1: none): mostly the author's home city."""
    n = len(author)
    index_of = {city[1]: i for i, city in enumerate(CITIES)}
    home = np.array([index_of[c] for c in users["city"].tolist()], dtype=np.int64)[author]
    truth = config.truth
    place = np.where(
        rng.random(n) < truth.home_location_share, home, rng.integers(0, len(CITIES), n)
    )
    return np.where(rng.random(n) < truth.location_probability, place, -1)


def _post_tags(
    config: WorkloadConfig,
    rng: np.random.Generator,
    created: np.ndarray,
    topic: np.ndarray,
    weights: np.ndarray,
    trends: list[Trend],
) -> list[list[int]]:
    """Tags by Zipf rank, `topic_tag_boost` times likelier for the post's topic; a trending tag
    is boosted for every post, whatever its topic."""
    n = len(created)
    on_topic = np.array([tag_topic(t) for t in range(len(weights))])
    counts = np.where(rng.random(n) < 0.25, 0, 1 + rng.poisson(2.0, n))
    counts = counts.clip(0, min(30, len(weights)))
    cdfs: dict[tuple[int, ...], np.ndarray] = {}
    out: list[list[int]] = []
    uniforms = rng.random(int(counts.sum()) * 3 + 8)
    cursor = 0
    for i in range(n):
        k = int(counts[i])
        if not k:
            out.append([])
            continue
        at = int(created[i])
        active = tuple(t.tag for t in trends if t.start_ms <= at < t.end_ms)
        key = (int(topic[i]), *active)
        cdf = cdfs.get(key)
        if cdf is None:
            w = weights * np.where(on_topic == topic[i], config.truth.topic_tag_boost, 1.0)
            for tag in active:  # a trend crosses topics: boosted as if on every post's topic
                w[tag] = weights[tag] * config.truth.topic_tag_boost * config.trending_boost
            cdf = cdfs[key] = np.cumsum(w) / w.sum()
        tags: list[int] = []
        while len(tags) < k:
            if cursor >= len(uniforms):
                uniforms, cursor = rng.random(len(uniforms)), 0
            tag = min(int(np.searchsorted(cdf, uniforms[cursor])), len(weights) - 1)
            cursor += 1
            if tag not in tags:
                tags.append(tag)
        out.append(tags)
    return out


def _media_item(
    kind: int, user_id: int, post_id: int, index: int, draws: np.ndarray
) -> dict[str, Any]:
    """One media object; `draws` are 4 uniforms. kind 0 = photo, 1 = video."""
    if kind == 0:
        width, height = PHOTO_SIZES[int(draws[0] * len(PHOTO_SIZES))]
        size = int(350_000 * np.exp(0.5 * (draws[1] - 0.5) * 3)) + 20_000
        return {
            "object_key": f"media/originals/{user_id}/{post_id}/{index}.jpg",
            "mime_type": "image/jpeg",
            "width": width,
            "height": height,
            "size_bytes": size,
        }
    width, height = VIDEO_SIZES[int(draws[0] * len(VIDEO_SIZES))]
    duration = int(3_000 + draws[2] ** 2 * (MAX_VIDEO_MS - 3_000))
    bitrate = 250_000 + int(draws[3] * 500_000)  # bytes per second
    return {
        "object_key": f"media/originals/{user_id}/{post_id}/{index}.mp4",
        "mime_type": "video/mp4",
        "width": width,
        "height": height,
        "duration_ms": duration,
        "size_bytes": duration * bitrate // 1000,
    }


def _post_created(
    config: WorkloadConfig,
    rng: np.random.Generator,
    graph: Graph,
    posts: pd.DataFrame,
    post_tags: list[list[int]],
    hashtags: list[str],
) -> tuple[EventBatch, np.ndarray]:
    """The post_created batch, and each post's visible quality: the standardised log bytes per
    pixel of its first media item (per kind, photo or video), what a media pipeline can see."""
    users = graph.users
    user_ids = users["user_id"].to_numpy()
    created_users = users["created_ms"].to_numpy()
    n = len(posts)
    followees: dict[int, list[int]] = {}
    for viewer, author in zip(
        graph.affinity["viewer"].tolist(), graph.affinity["author"].tolist(), strict=True
    ):
        followees.setdefault(viewer, []).append(author)
    draws = rng.random((n, 8))
    item_draws = rng.random((n, 10, 5))
    payloads: list[dict[str, Any]] = []
    bytes_per_pixel = np.zeros(n)
    first_kind = np.zeros(n, dtype=np.int64)
    locations = posts["location"].tolist()
    rows = zip(
        posts["author"].tolist(),
        posts["post_id"].tolist(),
        posts["media"].tolist(),
        posts["created_ms"].tolist(),
        strict=True,
    )
    for i, (author, post_id, media, created) in enumerate(rows):
        user_id = int(user_ids[author])
        d = draws[i]
        if media == 2:
            n_items = 2 + int(rng.binomial(8, 0.2))
            kinds = [int(item_draws[i, j, 4] < 0.15) for j in range(n_items)]
        else:
            kinds = [media]
        payload: dict[str, Any] = {
            "user_id": user_id,
            "post_id": post_id,
            "media_type": MEDIA_TYPES[media],
            "media": [
                _media_item(kind, user_id, post_id, j, item_draws[i, j])
                for j, kind in enumerate(kinds)
            ],
        }
        first = payload["media"][0]
        bytes_per_pixel[i] = np.log(first["size_bytes"] / (first["width"] * first["height"]))
        first_kind[i] = kinds[0]
        tags = [hashtags[t] for t in post_tags[i]]
        if d[0] < 0.85 or tags:
            caption = CAPTIONS[int(d[1] * len(CAPTIONS))] + EMOJI[int(d[2] * len(EMOJI))]
            if tags:
                caption += " " + " ".join(f"#{t}" for t in tags)
            payload["caption"] = caption
        if tags:
            payload["hashtags"] = tags
        if d[3] < 0.12:
            known = [f for f in followees.get(author, ()) if created_users[f] < created]
            if known:
                picks = rng.choice(len(known), min(len(known), 1 + int(d[4] < 0.3)), replace=False)
                payload["mentions"] = [int(user_ids[known[p]]) for p in picks]
        if locations[i] >= 0:
            location_id, name, lat, lon = CITIES[locations[i]]
            payload.update(location_id=location_id, location_name=name, latitude=lat, longitude=lon)
        payloads.append(payload)
    occurred = posts["created_ms"].to_numpy()
    visible = np.zeros(n)
    for kind in (0, 1):
        rows_of_kind = first_kind == kind
        if rows_of_kind.sum() > 1:
            values = bytes_per_pixel[rows_of_kind]
            visible[rows_of_kind] = (values - values.mean()) / max(values.std(), 1e-9)
    batch = EventBatch(
        "post_created",
        occurred,
        occurred + server_delay(rng, n),
        ["media-service"] * n,
        payloads,
    )
    return batch, visible


def _post_deleted(
    rng: np.random.Generator, users: pd.DataFrame, posts: pd.DataFrame, doomed: np.ndarray
) -> EventBatch:
    gone = posts[doomed].sort_values("deleted_ms", kind="stable")
    user_ids = users["user_id"].to_numpy()
    occurred = gone["deleted_ms"].to_numpy()
    return EventBatch(
        "post_deleted",
        occurred,
        occurred + server_delay(rng, len(gone)),
        ["media-service"] * len(gone),
        columns={
            "user_id": user_ids[gone["author"].to_numpy()].tolist(),
            "post_id": gone["post_id"].tolist(),
        },
    )


def _story_created(
    rng: np.random.Generator, users: pd.DataFrame, stories: pd.DataFrame
) -> EventBatch:
    user_ids = users["user_id"].to_numpy()
    n = len(stories)
    draws = rng.random((n, 4))
    payloads = []
    expires = format_ms(stories["expires_ms"].to_numpy())
    rows = zip(stories["author"].tolist(), stories["story_id"].tolist(), expires, strict=True)
    for i, (author, story_id, expires_at) in enumerate(rows):
        user_id = int(user_ids[author])
        width, height = STORY_SIZES[int(draws[i, 0] * len(STORY_SIZES))]
        media: dict[str, Any]
        if draws[i, 1] < 0.3:
            duration = int(1_000 + draws[i, 2] * (MAX_STORY_VIDEO_MS - 1_000))
            media = {
                "object_key": f"media/stories/{user_id}/{story_id}.mp4",
                "mime_type": "video/mp4",
                "width": width,
                "height": height,
                "duration_ms": duration,
                "size_bytes": duration * (200 + int(draws[i, 3] * 300)),
            }
        else:
            media = {
                "object_key": f"media/stories/{user_id}/{story_id}.jpg",
                "mime_type": "image/jpeg",
                "width": width,
                "height": height,
                "size_bytes": 120_000 + int(draws[i, 3] * 400_000),
            }
        payloads.append(
            {"user_id": user_id, "story_id": story_id, "media": media, "expires_at": expires_at}
        )
    occurred = stories["created_ms"].to_numpy()
    return EventBatch(
        "story_created",
        occurred,
        occurred + server_delay(rng, n),
        ["media-service"] * n,
        payloads,
    )
