"""Sessions: what each user is shown (impressions, story views) and how they engage with it.

A session is a burst of app use at a diurnal time: the stories tray, a page of the home feed
(recent posts of followed accounts the viewer may see), and sometimes explore (public posts of
accounts the viewer does not follow), an author's profile, or a hashtag page. Nobody is shown a
private account's post unless they are its approved follower at that moment, nor anything across
a block. Whether a viewer engages with an impression is drawn from the hidden `TruthModel`
(`workload.ground_truth`); engaged impressions produce likes, comments, saves and shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workload.config import WorkloadConfig
from workload.content import STORY_LIFETIME_MS, Content, tag_topic
from workload.events import EventBatch, random_uuids
from workload.graph import MINUTE_MS, Graph, pair_affinity
from workload.ground_truth import MEDIA_TYPES, TruthModel
from workload.sampling import (
    HOUR_MS,
    client_delay,
    counts_over,
    diurnal_times,
    lognormal_ms,
    snowflake_ids,
)
from workload.spam import is_spam_comment, spam_text
from workload.vocab import CITIES, CITY_COUNTRIES, COMMENTS, TOPICS

SPAN_MS = 30 * MINUTE_MS  # what a session shows stays visible at least this long after it starts
SESSION_CAP_MS = 20 * MINUTE_MS  # nothing is shown later than this into a session
LOOKBACK_MS = 72 * HOUR_MS  # feeds, explore and hashtag pages show posts up to this old
SURFACES = ("home_feed", "explore", "profile", "hashtag")
SLACK = 4  # extra candidates per page, to refill what the viewer has already seen
ACTION_PROBABILITY = {"like": 0.85, "comment": 0.12, "save": 0.07, "share": 0.04}
SHARE_CHANNELS = (("direct", 0.6), ("story", 0.3), ("external", 0.1))
REPLY_PROBABILITY = 0.3
EARTH_RADIUS_KM = 6371.0
VELOCITY_BLOCK_MS = HOUR_MS  # engagement counts reach later impressions a block at a time
FACTORS = (
    "affinity",
    "content_pref",
    "quality",
    "interest_match",
    "same_city",
    "same_country",
    "distance_km",
    "engagements_before",
    "pair_engagements_before",
    "interest_quality",
    "recency_decay",
)  # TruthModel's per-impression factors, as recorded in the ground truth


@dataclass
class Engagement:
    """The view and engagement batches and the hidden truth behind them.

    impressions rows are in the order of the impression batch (one row per impression event).
    """

    batches: list[EventBatch]
    impressions: pd.DataFrame
    affinity: pd.DataFrame
    content_preference: pd.DataFrame


def simulate_engagement(
    config: WorkloadConfig, graph: Graph, content: Content, rng: np.random.Generator
) -> Engagement:
    sessions = _sessions(config, graph, rng)
    edges = _active_edges(sessions, graph)
    posts = content.posts
    candidates = pd.concat(
        [
            _home_feed(sessions, edges, content, rng),
            _explore(sessions, graph, content, rng),
            _profile(sessions, edges, graph, content, rng),
            _hashtag(sessions, graph, content, rng),
        ],
        ignore_index=True,
    )
    shown = _paginate(sessions, candidates, posts, rng)

    # the hidden truth: p = sigmoid(TruthModel.logit(...)) per impression
    truth = config.truth
    n = graph.n
    preference = truth.pref_means() + truth.pref_sd * rng.standard_normal((n, len(MEDIA_TYPES)))
    affinity_table, affinity = _affinities(config, graph, shown, rng)
    pidx = shown["pidx"].to_numpy()
    viewer = shown["viewer"].to_numpy()
    media = posts["media"].to_numpy()[pidx]
    age_hours = (shown["t"].to_numpy() - posts["created_ms"].to_numpy()[pidx]) / HOUR_MS
    factors = {
        "affinity": affinity,
        "content_pref": preference[viewer, media],
        "quality": posts["quality"].to_numpy()[pidx],
        **_interest_and_location(graph, content, viewer, pidx),
    }
    visible = posts["visible_quality"].to_numpy()[pidx]
    factors["interest_quality"] = factors["interest_match"] * visible
    factors["recency_decay"] = truth.recency_rates()[media] * np.log1p(np.maximum(age_hours, 0.0))
    base_logit = truth.logit(
        factors["affinity"],
        factors["content_pref"],
        factors["quality"],
        age_hours,
        shown["position"].to_numpy(),
        media,
        factors["interest_match"],
        visible,
        factors["same_city"],
        factors["same_country"],
        factors["distance_km"],
    )
    engaged, before, pair_before = _draw_with_velocity(
        truth,
        base_logit,
        pidx,
        viewer * n + shown["author"].to_numpy(),
        shown["t"].to_numpy(),
        rng.random(len(shown)),
    )
    factors["engagements_before"] = before
    factors["pair_engagements_before"] = pair_before
    logit = base_logit + truth.velocity * np.log1p(before) + truth.repeat * np.log1p(pair_before)
    probability = 1.0 / (1.0 + np.exp(-logit))
    shown = shown.assign(
        media=media,
        age_hours=age_hours,
        true_logit=logit,
        probability=probability,
        engaged=engaged,
        **{f"factor_{name}": values for name, values in factors.items()},
    )

    stories = _story_views(sessions, edges, content)
    shown, stories = _timeline(sessions, shown, stories, rng)
    delay = sessions["delay"].to_numpy()
    # an impression and its engagement arrive together: keep both only if all fit the window
    shown = shown[shown["end_ms"].to_numpy() + delay[shown["sid"].to_numpy()] < config.end_ms]
    shown = shown.sort_values(["shown_ms", "sid", "position"], kind="stable")
    stories = stories[
        stories["shown_ms"].to_numpy() + delay[stories["sid"].to_numpy()] < config.end_ms
    ]
    stories = stories.sort_values(["shown_ms", "sid"], kind="stable")

    user_ids = graph.users["user_id"].to_numpy()
    batches = [
        _impression_batch(graph, posts, sessions, shown),
        _story_view_batch(graph, content, sessions, stories),
        *_actions(config, rng, graph, content, sessions, shown),
    ]
    ground_truth = pd.DataFrame(
        {
            "event_id": pd.Series([""] * len(shown), dtype=object),
            "viewer": user_ids[shown["viewer"].to_numpy()],
            "post_id": posts["post_id"].to_numpy()[shown["pidx"].to_numpy()],
            "author": user_ids[shown["author"].to_numpy()],
            "shown_at": pd.to_datetime(shown["shown_ms"].to_numpy(), unit="ms", utc=True),
            "surface": shown["surface"].to_numpy(),
            "position": shown["position"].to_numpy(),
            "media_type": np.array(MEDIA_TYPES)[shown["media"].to_numpy()],
            "age_hours": shown["age_hours"].to_numpy(),
            **{name: shown[f"factor_{name}"].to_numpy() for name in FACTORS},
            "true_logit": shown["true_logit"].to_numpy(),
            "true_probability": shown["probability"].to_numpy(),
            "engaged": shown["engaged"].to_numpy(),
        }
    )
    affinity_out = affinity_table.assign(
        viewer=user_ids[affinity_table["viewer"].to_numpy()],
        author=user_ids[affinity_table["author"].to_numpy()],
    )
    content_preference = pd.DataFrame(
        {
            "user": np.repeat(user_ids, len(MEDIA_TYPES)),
            "media_type": np.tile(np.array(MEDIA_TYPES), n),
            "preference": preference.ravel(),
        }
    )
    return Engagement(batches, ground_truth, affinity_out, content_preference)


def haversine_km(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in km between points given in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def _interest_and_location(
    graph: Graph, content: Content, viewer: np.ndarray, pidx: np.ndarray
) -> dict[str, np.ndarray]:
    """Per impression: the share of the post's tags on the viewer's topics, and the post's tagged
    location against the viewer's home (same city, same country, km; 0, 0, NaN without one)."""
    users = graph.users
    interested = np.zeros((graph.n, len(TOPICS)), dtype=bool)
    for user, topics in enumerate(users["interests"].tolist()):
        interested[user, topics] = True
    tags = content.post_tags
    lengths = np.array([len(t) for t in tags], dtype=np.int64)
    flat = np.array([tag_topic(t) for post in tags for t in post], dtype=np.int64)
    row_post = np.repeat(pidx, lengths[pidx])
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    offsets = np.arange(len(row_post)) - np.repeat(
        np.cumsum(lengths[pidx]) - lengths[pidx], lengths[pidx]
    )
    row_topic = flat[starts[row_post] + offsets]
    row_of = np.repeat(np.arange(len(pidx)), lengths[pidx])
    hits = np.bincount(row_of, weights=interested[viewer[row_of], row_topic], minlength=len(pidx))
    interest_match = np.where(lengths[pidx] > 0, hits / np.maximum(lengths[pidx], 1), 0.0)

    location = content.posts["location"].to_numpy()[pidx]
    located = location >= 0
    place = np.where(located, location, 0)
    city_lat = np.array([c[2] for c in CITIES])[place]
    city_lon = np.array([c[3] for c in CITIES])[place]
    city_name = np.array([c[1] for c in CITIES], dtype=object)[place]
    city_country = np.array(CITY_COUNTRIES, dtype=object)[place]
    distance = haversine_km(
        users["lat"].to_numpy()[viewer], users["lon"].to_numpy()[viewer], city_lat, city_lon
    )
    return {
        "interest_match": interest_match,
        "same_city": (located & (users["city"].to_numpy()[viewer] == city_name)).astype(float),
        "same_country": (located & (users["country"].to_numpy()[viewer] == city_country)).astype(
            float
        ),
        "distance_km": np.where(located, distance, np.nan),
    }


def _draw_with_velocity(
    truth: TruthModel,
    base_logit: np.ndarray,
    pidx: np.ndarray,
    pair: np.ndarray,
    t: np.ndarray,
    uniforms: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Engagement draws in which earlier engagements raise later probabilities.

    Impressions are taken in blocks of VELOCITY_BLOCK_MS by session start; each sees the post's
    engagements from earlier blocks (engagements_before, velocity) and the viewer's earlier
    engagements with the author (pair_engagements_before, repeat; pair: viewer * n + author).
    Returns (engaged, engagements_before, pair_engagements_before).
    """
    n_posts = int(pidx.max()) + 1 if len(pidx) else 0
    pairs, pair_index = np.unique(pair, return_inverse=True)
    counts = np.zeros(n_posts)
    pair_counts = np.zeros(len(pairs))
    engaged = np.zeros(len(pidx), dtype=bool)
    before = np.zeros(len(pidx))
    pair_before = np.zeros(len(pidx))
    block = t // VELOCITY_BLOCK_MS
    order = np.argsort(block, kind="stable")
    bounds = np.flatnonzero(np.diff(block[order])) + 1
    for rows in np.split(order, bounds):
        before[rows] = counts[pidx[rows]]
        pair_before[rows] = pair_counts[pair_index[rows]]
        logit = (
            base_logit[rows]
            + truth.velocity * np.log1p(before[rows])
            + truth.repeat * np.log1p(pair_before[rows])
        )
        engaged[rows] = uniforms[rows] < 1.0 / (1.0 + np.exp(-logit))
        counts += np.bincount(pidx[rows], weights=engaged[rows], minlength=n_posts)
        pair_counts += np.bincount(pair_index[rows], weights=engaged[rows], minlength=len(pairs))
    return engaged, before, pair_before


def _sessions(config: WorkloadConfig, graph: Graph, rng: np.random.Generator) -> pd.DataFrame:
    """When each user opens the app, how much they look at, and how late their events arrive."""
    users = graph.users
    n = len(users)
    rate = rng.gamma(2.0, 0.5, n) * config.sessions_per_day
    lo = users["created_ms"].to_numpy() + 5 * MINUTE_MS
    hi = np.full(n, config.end_ms - SPAN_MS, dtype=np.int64)
    counts = counts_over(rng, rate, lo, hi)
    viewer = np.repeat(np.arange(n), counts)
    t = diurnal_times(rng, lo[viewer], hi[viewer], users["tz"].to_numpy()[viewer])
    order = np.lexsort((viewer, t))
    viewer, t = viewer[order], t[order]
    m = len(t)
    feed_mean = max(config.feed_page_mean - 1.0, 0.1)

    def page(probability: float, mean: float) -> np.ndarray:
        return np.where(rng.random(m) < probability, 1 + rng.poisson(mean, m), 0)

    return pd.DataFrame(
        {
            "sid": np.arange(m),
            "viewer": viewer,
            "t": t,
            "delay": client_delay(rng, m, config.late_upload_probability),
            "n_home_feed": 1 + rng.poisson(rng.gamma(2.0, feed_mean / 2.0, m)),
            "n_explore": page(config.explore_probability, 6.0),
            "n_profile": page(config.profile_probability, 4.0),
            "n_hashtag": page(config.hashtag_probability, 5.0),
            "n_story": rng.poisson(config.story_views_mean, m),
        }
    )


def _expand(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (row, position) with lo[row] <= position < hi[row], rows in order."""
    counts = np.maximum(hi - lo, 0)
    rows = np.repeat(np.arange(len(lo)), counts)
    positions = np.arange(int(counts.sum())) + np.repeat(lo - np.cumsum(counts) + counts, counts)
    return rows, positions


class _ByAuthor:
    """Items (posts or stories) sorted by (author, created) for time-range look-ups per author."""

    KEY = 1 << 42  # above any epoch-ms time until 2109

    def __init__(self, author: np.ndarray, created: np.ndarray) -> None:
        assert len(created) == 0 or int(created.max()) < self.KEY
        self.order = np.lexsort((created, author))
        self.keys = author[self.order] * self.KEY + created[self.order]

    def created_in(
        self, author: np.ndarray, lo_ms: np.ndarray, hi_ms: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(row, item) for every item of author[row] created in [lo_ms[row], hi_ms[row])."""
        base = author * self.KEY
        lo = np.searchsorted(self.keys, base + lo_ms)
        hi = np.searchsorted(self.keys, base + hi_ms)
        rows, positions = _expand(lo, hi)
        return rows, self.order[positions]


def _active_edges(sessions: pd.DataFrame, graph: Graph) -> pd.DataFrame:
    """(session, author, affinity) for every author the viewer sees in their feed all session."""
    edges = graph.feed_edges
    order = np.argsort(edges["viewer"].to_numpy(), kind="stable")
    edge_viewer = edges["viewer"].to_numpy()[order]
    viewer = sessions["viewer"].to_numpy()
    rows, positions = _expand(
        np.searchsorted(edge_viewer, viewer, "left"), np.searchsorted(edge_viewer, viewer, "right")
    )
    edge = order[positions]
    t = sessions["t"].to_numpy()[rows]
    active = (edges["from_ms"].to_numpy()[edge] < t) & (
        edges["to_ms"].to_numpy()[edge] > t + SPAN_MS
    )
    rows, edge = rows[active], edge[active]
    return pd.DataFrame(
        {
            "sid": sessions["sid"].to_numpy()[rows],
            "viewer": viewer[rows],
            "t": t[active],
            "author": edges["author"].to_numpy()[edge],
            "affinity": edges["affinity"].to_numpy()[edge],
        }
    )


def _ranked(frame: pd.DataFrame, score: np.ndarray, surface: int, keep: np.ndarray) -> pd.DataFrame:
    """Top `keep[sid]` (+ slack) rows per session by descending score."""
    # one float key: the session, plus a fraction that falls as the score rises
    key = frame["sid"].to_numpy() + 1.0 / (1.0 + np.exp(np.clip(score, -30.0, 30.0)))
    order = np.argsort(key, kind="stable")
    sid = frame["sid"].to_numpy()[order]
    rank = np.arange(len(sid)) - np.searchsorted(sid, sid)
    ok = rank < keep[sid] + SLACK
    return pd.DataFrame(
        {
            "sid": sid[ok],
            "surface": surface,
            "rank": rank[ok],
            "pidx": frame["pidx"].to_numpy()[order][ok],
        }
    )


def _home_feed(
    sessions: pd.DataFrame, edges: pd.DataFrame, content: Content, rng: np.random.Generator
) -> pd.DataFrame:
    """The feed ranker: recent posts of followed accounts, closer friends first, with noise."""
    posts = content.posts
    created = posts["created_ms"].to_numpy()
    t = edges["t"].to_numpy()
    rows, pidx = _ByAuthor(posts["author"].to_numpy(), created).created_in(
        edges["author"].to_numpy(), t - LOOKBACK_MS, t
    )
    t = t[rows]
    ok = posts["deleted_ms"].to_numpy()[pidx] > t + SPAN_MS
    rows, pidx, t = rows[ok], pidx[ok], t[ok]
    age_days = (t - created[pidx]) / (24 * HOUR_MS)
    affinity = edges["affinity"].to_numpy()[rows]
    score = 0.5 * affinity - 1.5 * age_days + rng.gumbel(0, 0.5, len(rows))
    candidates = pd.DataFrame({"sid": edges["sid"].to_numpy()[rows], "pidx": pidx})
    return _ranked(candidates, score, 0, sessions["n_home_feed"].to_numpy())


def _explore(
    sessions: pd.DataFrame, graph: Graph, content: Content, rng: np.random.Generator
) -> pd.DataFrame:
    """Public posts of accounts the viewer never followed, favouring quality and popular authors."""
    posts = content.posts
    public = np.flatnonzero(posts["public"].to_numpy())
    created = posts["created_ms"].to_numpy()[public]
    authors = posts["author"].to_numpy()[public]
    weight = np.exp(posts["quality"].to_numpy()[public]) * np.sqrt(
        graph.users["popularity"].to_numpy()[authors]
    )
    prefix = np.r_[0.0, np.cumsum(weight)]
    deleted = posts["deleted_ms"].to_numpy()[public]
    n = graph.n
    out: list[tuple[int, int, int]] = []
    chosen = sessions[sessions["n_explore"] > 0]
    for sid, viewer, t, want in zip(
        chosen["sid"].tolist(),
        chosen["viewer"].tolist(),
        chosen["t"].tolist(),
        chosen["n_explore"].tolist(),
        strict=True,
    ):
        lo, hi = np.searchsorted(created, [t - LOOKBACK_MS, t])
        if hi <= lo:
            continue
        draws = prefix[lo] + rng.random(3 * (want + SLACK)) * (prefix[hi] - prefix[lo])
        picks = np.clip(np.searchsorted(prefix, draws, side="right") - 1, lo, hi - 1)
        seen: set[int] = set()
        for k in picks.tolist():
            author = int(authors[k])
            code = viewer * n + author
            if (
                k in seen
                or author == viewer
                or code in graph.followed_ever
                or code in graph.blocked_ever
                or deleted[k] <= t + SPAN_MS
            ):
                continue
            seen.add(k)
            out.append((sid, len(seen) - 1, int(public[k])))
            if len(seen) >= want + SLACK:
                break
    return _frame(out, 1)


def _profile(
    sessions: pd.DataFrame,
    edges: pd.DataFrame,
    graph: Graph,
    content: Content,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """A visit to a followed account's profile (or a public celebrity's): their newest posts."""
    posts = content.posts
    by_author = _posts_by_author(posts)
    created = posts["created_ms"].to_numpy()
    deleted = posts["deleted_ms"].to_numpy()
    chosen = sessions[sessions["n_profile"] > 0]
    followed = edges[edges["sid"].isin(chosen["sid"])].groupby("sid")["author"].agg(list)
    celebrities = np.flatnonzero(graph.users["is_celebrity"].to_numpy())
    n = graph.n
    out: list[tuple[int, int, int]] = []
    for sid, viewer, t, want in zip(
        chosen["sid"].tolist(),
        chosen["viewer"].tolist(),
        chosen["t"].tolist(),
        chosen["n_profile"].tolist(),
        strict=True,
    ):
        options = followed.get(sid)
        if options and rng.random() < 0.7:
            author = int(options[int(rng.integers(len(options)))])
        else:
            author = int(celebrities[int(rng.integers(len(celebrities)))])
            if author == viewer or viewer * n + author in graph.blocked_ever:
                continue
        own = by_author.get(author)
        if own is None:
            continue
        visible = own[(created[own] < t) & (deleted[own] > t + SPAN_MS)][::-1]
        out.extend((sid, rank, int(p)) for rank, p in enumerate(visible[: want + SLACK].tolist()))
    return _frame(out, 2)


def _hashtag(
    sessions: pd.DataFrame, graph: Graph, content: Content, rng: np.random.Generator
) -> pd.DataFrame:
    """A hashtag page: a tag seen on a recent post, then the newest public posts carrying it."""
    posts = content.posts
    created = posts["created_ms"].to_numpy()
    deleted = posts["deleted_ms"].to_numpy()
    authors = posts["author"].to_numpy()
    public = posts["public"].to_numpy()
    tagged = np.array(
        [i for i, tags in enumerate(content.post_tags) if tags and public[i]], dtype=np.int64
    )
    by_tag: dict[int, list[int]] = {}
    for i in tagged.tolist():
        for tag in content.post_tags[i]:
            by_tag.setdefault(tag, []).append(i)
    tag_posts = {tag: np.array(rows, dtype=np.int64) for tag, rows in by_tag.items()}
    tagged_created = created[tagged]
    n = graph.n
    out: list[tuple[int, int, int]] = []
    chosen = sessions[sessions["n_hashtag"] > 0]
    for sid, viewer, t, want in zip(
        chosen["sid"].tolist(),
        chosen["viewer"].tolist(),
        chosen["t"].tolist(),
        chosen["n_hashtag"].tolist(),
        strict=True,
    ):
        lo, hi = np.searchsorted(tagged_created, [t - 24 * HOUR_MS, t])
        if hi <= lo:
            continue
        seed_post = int(tagged[int(rng.integers(lo, hi))])
        tags = content.post_tags[seed_post]
        rows = tag_posts[tags[int(rng.integers(len(tags)))]]
        ok = (
            (created[rows] < t) & (created[rows] >= t - LOOKBACK_MS) & (deleted[rows] > t + SPAN_MS)
        )
        rank = 0
        for p in rows[ok][::-1].tolist():
            author = int(authors[p])
            if author == viewer or viewer * n + author in graph.blocked_ever:
                continue
            out.append((sid, rank, p))
            rank += 1
            if rank >= want + SLACK:
                break
    return _frame(out, 3)


def _frame(rows: list[tuple[int, int, int]], surface: int) -> pd.DataFrame:
    array = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return pd.DataFrame(
        {"sid": array[:, 0], "surface": surface, "rank": array[:, 1], "pidx": array[:, 2]}
    )


def _posts_by_author(posts: pd.DataFrame) -> dict[int, np.ndarray]:
    """Post indexes per author, oldest first (posts are sorted by creation time)."""
    author = posts["author"].to_numpy()
    order = np.argsort(author, kind="stable")
    bounds = np.flatnonzero(np.diff(author[order])) + 1
    return {int(author[group[0]]): group for group in np.split(order, bounds) if len(group)}


def _first_per_viewer(viewer: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Indexes of the first row of every (viewer, item) pair, in row order."""
    code = viewer * (int(item.max(initial=0)) + 1) + item
    _, first = np.unique(code, return_index=True)
    return np.sort(first)


def _paginate(
    sessions: pd.DataFrame, candidates: pd.DataFrame, posts: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Each viewer is served each post at most once, then every page is cut to its size.

    A post the ranker already served the viewer, shown or prefetched in a page's SLACK, is not
    served again; this keeps one impression (and at most one like) per viewer and post. One feed
    request (request_id) serves each (session, surface) page.
    """
    order = np.lexsort(
        (
            candidates["rank"].to_numpy(),
            candidates["surface"].to_numpy(),
            candidates["sid"].to_numpy(),
        )
    )
    sid = candidates["sid"].to_numpy()[order]
    surface = candidates["surface"].to_numpy()[order]
    pidx = candidates["pidx"].to_numpy()[order]
    viewer = sessions["viewer"].to_numpy()[sid]
    first = _first_per_viewer(viewer, pidx)
    sid, surface, pidx, viewer = sid[first], surface[first], pidx[first], viewer[first]
    group = sid * len(SURFACES) + surface
    position = np.arange(len(group)) - np.searchsorted(group, group)
    sizes = np.stack([sessions[f"n_{name}"].to_numpy() for name in SURFACES], axis=1)
    ok = position < sizes[sid, surface]
    sid, surface, pidx, viewer, position = sid[ok], surface[ok], pidx[ok], viewer[ok], position[ok]
    pages, page_of_row = np.unique(sid * len(SURFACES) + surface, return_inverse=True)
    request_ids = np.array(random_uuids(rng, len(pages)), dtype=object)
    return pd.DataFrame(
        {
            "sid": sid,
            "viewer": viewer,
            "author": posts["author"].to_numpy()[pidx],
            "t": sessions["t"].to_numpy()[sid],
            "surface": np.array(SURFACES, dtype=object)[surface],
            "position": position,
            "pidx": pidx,
            "request_id": request_ids[page_of_row],
        }
    )


def _affinities(
    config: WorkloadConfig, graph: Graph, shown: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """The hidden affinity of every follow pair and every shown pair (new ones: strangers, whose
    affinity grows from the same structure: followed back, shared interests, city, friends)."""
    n = graph.n
    known = graph.affinity
    known_codes = known["viewer"].to_numpy() * n + known["author"].to_numpy()
    codes = shown["viewer"].to_numpy() * n + shown["author"].to_numpy()
    strangers = np.setdiff1d(np.unique(codes), known_codes)
    truth = config.truth
    latent = truth.affinity_latent_sd * rng.standard_normal(len(strangers))
    stranger_table = pair_affinity(
        truth, graph.users, known_codes, strangers // n, strangers % n, latent
    )
    table = pd.concat([known, stranger_table], ignore_index=True)
    all_codes = table["viewer"].to_numpy() * n + table["author"].to_numpy()
    order = np.argsort(all_codes, kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    per_row = table["affinity"].to_numpy()[np.searchsorted(all_codes[order], codes)]
    return table, per_row


def _story_views(sessions: pd.DataFrame, edges: pd.DataFrame, content: Content) -> pd.DataFrame:
    """The stories tray: newest unexpired stories of followed accounts, each viewed once."""
    stories = content.stories
    created = stories["created_ms"].to_numpy()
    t = edges["t"].to_numpy()
    # unexpired all session long: created_ms + 24 h > t + SPAN_MS
    rows, story = _ByAuthor(stories["author"].to_numpy(), created).created_in(
        edges["author"].to_numpy(), t + SPAN_MS - STORY_LIFETIME_MS + 1, t
    )
    sid = edges["sid"].to_numpy()[rows]
    order = np.lexsort((-created[story], sid))
    sid, story = sid[order], story[order]
    first = _first_per_viewer(sessions["viewer"].to_numpy()[sid], story)
    sid, story = sid[first], story[first]
    rank = np.arange(len(sid)) - np.searchsorted(sid, sid)
    ok = rank < sessions["n_story"].to_numpy()[sid]
    return pd.DataFrame({"sid": sid[ok], "story": story[ok]})


def _within_session_start(sid: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """For rows grouped by session in order: each row's start offset inside its session."""
    total = np.cumsum(duration)
    before = total - duration
    return before - before[np.searchsorted(sid, sid)]


def _timeline(
    sessions: pd.DataFrame, shown: pd.DataFrame, stories: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """When each story and post is on screen and for how long: stories first, then the pages.

    Engaged impressions are looked at longer. Nothing is shown after SESSION_CAP_MS.
    """
    n_sessions = len(sessions)
    story_dwell = np.clip(lognormal_ms(rng, 4_000, 0.5, len(stories)), 300, 15_000)
    story_step = story_dwell + 200 + rng.exponential(300.0, len(stories)).astype(np.int64)
    story_sid = stories["sid"].to_numpy()
    story_offset = _within_session_start(story_sid, story_step)
    tray = np.bincount(story_sid, weights=story_step, minlength=n_sessions).astype(np.int64)

    medians = np.array([1_500.0, 5_000.0, 3_500.0])
    media = shown["media"].to_numpy()
    dwell = (medians[media] * np.exp(0.7 * rng.standard_normal(len(shown)))).astype(np.int64)
    dwell = np.where(shown["engaged"].to_numpy(), dwell * 5 // 2, dwell).clip(150, 120_000)
    step = dwell + 300 + rng.exponential(600.0, len(shown)).astype(np.int64)
    sid = shown["sid"].to_numpy()
    offset = tray[sid] + _within_session_start(sid, step)
    t = sessions["t"].to_numpy()
    shown = shown.assign(shown_ms=t[sid] + offset, dwell=dwell, end_ms=t[sid] + offset + dwell)
    stories = stories.assign(shown_ms=t[story_sid] + story_offset, dwell=story_dwell)
    return (
        shown[offset <= SESSION_CAP_MS],
        stories[story_offset <= SESSION_CAP_MS],
    )


def _impression_batch(
    graph: Graph, posts: pd.DataFrame, sessions: pd.DataFrame, shown: pd.DataFrame
) -> EventBatch:
    user_ids = graph.users["user_id"].to_numpy()
    viewer = shown["viewer"].to_numpy()
    occurred = shown["shown_ms"].to_numpy()
    return EventBatch(
        "impression",
        occurred,
        occurred + sessions["delay"].to_numpy()[shown["sid"].to_numpy()],
        graph.users["platform"].to_numpy()[viewer].tolist(),
        columns={
            "user_id": user_ids[viewer].tolist(),
            "post_id": posts["post_id"].to_numpy()[shown["pidx"].to_numpy()].tolist(),
            "surface": shown["surface"].tolist(),
            "position": shown["position"].tolist(),
            "dwell_ms": shown["dwell"].tolist(),
            "request_id": shown["request_id"].tolist(),
        },
    )


def _story_view_batch(
    graph: Graph, content: Content, sessions: pd.DataFrame, stories: pd.DataFrame
) -> EventBatch:
    sid = stories["sid"].to_numpy()
    viewer = sessions["viewer"].to_numpy()[sid]
    occurred = stories["shown_ms"].to_numpy()
    return EventBatch(
        "story_view",
        occurred,
        occurred + sessions["delay"].to_numpy()[sid],
        graph.users["platform"].to_numpy()[viewer].tolist(),
        columns={
            "user_id": graph.users["user_id"].to_numpy()[viewer].tolist(),
            "story_id": content.stories["story_id"]
            .to_numpy()[stories["story"].to_numpy()]
            .tolist(),
            "dwell_ms": stories["dwell"].tolist(),
        },
    )


def _actions(
    config: WorkloadConfig,
    rng: np.random.Generator,
    graph: Graph,
    content: Content,
    sessions: pd.DataFrame,
    shown: pd.DataFrame,
) -> list[EventBatch]:
    """Likes, comments, saves and shares of engaged impressions (during the dwell); some unlikes."""
    engaged = shown[shown["engaged"].to_numpy()]
    m = len(engaged)
    draws = rng.random((m, len(ACTION_PROBABILITY)))
    does = draws < np.array(list(ACTION_PROBABILITY.values()))
    does[:, 0] |= ~does.any(axis=1)  # an engagement is at least a like
    start = engaged["shown_ms"].to_numpy()
    dwell = engaged["dwell"].to_numpy()
    sid = engaged["sid"].to_numpy()
    delay = sessions["delay"].to_numpy()[sid]
    viewer = engaged["viewer"].to_numpy()
    pidx = engaged["pidx"].to_numpy()
    user_ids = graph.users["user_id"].to_numpy()
    platform = graph.users["platform"].to_numpy()
    post_ids = content.posts["post_id"].to_numpy()
    when = rng.random((m, len(ACTION_PROBABILITY)))
    windows = {"like": (0.3, 0.6), "comment": (0.6, 0.4), "save": (0.5, 0.5), "share": (0.7, 0.3)}

    batches: dict[str, EventBatch] = {}
    for column, action in enumerate(ACTION_PROBABILITY):
        rows = np.flatnonzero(does[:, column])
        lo, width = windows[action]
        occurred = start[rows] + ((lo + width * when[rows, column]) * dwell[rows]).astype(np.int64)
        order = np.argsort(occurred, kind="stable")
        rows, occurred = rows[order], occurred[order]
        producers = platform[viewer[rows]].tolist()
        produced = occurred + delay[rows]
        columns: dict[str, list[Any]] = {
            "user_id": user_ids[viewer[rows]].tolist(),
            "post_id": post_ids[pidx[rows]].tolist(),
        }
        if action == "share":
            channels = rng.choice(len(SHARE_CHANNELS), len(rows), p=[c[1] for c in SHARE_CHANNELS])
            columns["channel"] = [SHARE_CHANNELS[c][0] for c in channels.tolist()]
        if action == "comment":
            payloads = _comment_payloads(rng, graph, columns, occurred, pidx[rows], viewer[rows])
            batches[action] = EventBatch(action, occurred, produced, producers, payloads)
        else:
            batches[action] = EventBatch(action, occurred, produced, producers, columns=columns)
        if action == "like":
            batches["unlike"] = _unlikes(
                config, rng, graph, content, viewer[rows], pidx[rows], occurred
            )
    return list(batches.values())


def _comment_payloads(
    rng: np.random.Generator,
    graph: Graph,
    columns: dict[str, list[Any]],
    occurred: np.ndarray,
    pidx: np.ndarray,
    viewer: np.ndarray,
) -> list[dict[str, Any]]:
    """Comment ids, texts and reply threads (a reply names the earlier comment's author)."""
    comment_ids = snowflake_ids(rng, occurred).tolist()
    usernames = graph.users["username"].tolist()
    texts = rng.integers(0, len(COMMENTS), len(comment_ids))
    replies = rng.random(len(comment_ids))
    picks = rng.random(len(comment_ids))
    earlier: dict[int, list[tuple[int, int]]] = {}
    payloads: list[dict[str, Any]] = []
    rows = zip(columns["user_id"], columns["post_id"], comment_ids, strict=True)
    for i, (user_id, post_id, comment_id) in enumerate(rows):  # in time order
        payload: dict[str, Any] = {"user_id": user_id, "post_id": post_id, "comment_id": comment_id}
        text = spam_text(comment_id) if is_spam_comment(comment_id) else COMMENTS[texts[i]]
        thread = earlier.setdefault(int(pidx[i]), [])
        if thread and replies[i] < REPLY_PROBABILITY:
            parent_id, parent_author = thread[int(picks[i] * len(thread))]
            payload["text"] = f"@{usernames[parent_author]} {text}"
            payload["parent_comment_id"] = parent_id
        else:
            payload["text"] = text
        thread.append((comment_id, int(viewer[i])))
        payloads.append(payload)
    return payloads


def _unlikes(
    config: WorkloadConfig,
    rng: np.random.Generator,
    graph: Graph,
    content: Content,
    viewer: np.ndarray,
    pidx: np.ndarray,
    liked_at: np.ndarray,
) -> EventBatch:
    """A few likes are taken back later (while the post still exists and within the window)."""
    m = len(viewer)
    occurred = liked_at + MINUTE_MS + rng.exponential(6 * HOUR_MS, m).astype(np.int64)
    produced = occurred + client_delay(rng, m, 0.0)
    ok = (
        (rng.random(m) < config.unlike_probability)
        & (produced < config.end_ms)
        & (occurred < content.posts["deleted_ms"].to_numpy()[pidx])
    )
    order = np.flatnonzero(ok)[np.argsort(occurred[ok], kind="stable")]
    user_ids = graph.users["user_id"].to_numpy()
    post_ids = content.posts["post_id"].to_numpy()
    return EventBatch(
        "unlike",
        occurred[order],
        produced[order],
        graph.users["platform"].to_numpy()[viewer[order]].tolist(),
        columns={
            "user_id": user_ids[viewer[order]].tolist(),
            "post_id": post_ids[pidx[order]].tolist(),
        },
    )
