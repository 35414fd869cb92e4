"""Users and a follower graph with the structure of real ones, with the events that build it.

Popularity is Pareto-distributed and a few celebrities take a fixed share of all follow draws,
so in-degrees are heavy-tailed. Each user follows k ~ lognormal accounts in three ways, because a
graph drawn by popularity alone gives a recommender nothing but popularity to learn:
- communities: a first share is drawn by popularity times an affinity (same country
  `same_country_boost` times likelier, each shared interest adds `shared_interest_boost`);
- triadic closure: the rest (`triadic_fraction`) among friends-of-friends, weighted by how many
  friends follow them (times the square root of popularity, capped at an ordinary account's:
  closure is driven by friends, not fame, so celebrities keep `celebrity_follow_share` of draws
  rather than collecting most closures too), later in the window;
- reciprocity: a followed ordinary account follows back with `follow_back_probability`, a few
  hours later (k is scaled down so the number of follows stays about what it was).
`python -m workload.graph_stats` compares the result with statistics of a real follow graph. Following a private account is a request that is usually approved
after a delay. Some follows end (unfollow, sometimes re-followed), some pairs mute or block.

A block ends every follow between the pair in both directions without unfollow events (as the app
does) and nothing between them happens while it lasts. The simulation keeps, per (viewer, author),
the intervals in which the viewer sees the author's posts and stories in their feed: following
(approved, for a private author), not muted, not blocked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workload.affinity import STRUCTURE, pair_structure
from workload.config import WorkloadConfig
from workload.events import EventBatch
from workload.ground_truth import TruthModel
from workload.sampling import HOUR_MS, NEVER, diurnal_times, server_delay
from workload.vocab import BIOS, CITIES, CITY_COUNTRIES, COUNTRIES, FIRST_NAMES, TOPICS, WORDS

MINUTE_MS = 60_000
SERVER_MARGIN_MS = MINUTE_MS  # server-side events stop this long before the window ends
POPULARITY_CAP = 50.0  # ordinary accounts; celebrities are always weighted above it
PLATFORMS = (("ios-app", 0.45), ("android-app", 0.50), ("web-app", 0.05))
RELATIONSHIP_TYPES = (
    "follow",
    "unfollow",
    "follow_request",
    "follow_approved",
    "block",
    "unblock",
    "mute",
    "unmute",
)


@dataclass
class Graph:
    """Users (row = user index) and who sees whom when.

    users: user_id, created_ms, username, is_private, country, tz, popularity, is_celebrity,
        platform (the producer of the user's device events), city (home city name), lat, lon
        (home coordinates), interests (list of TOPICS ids)
    feed_edges: viewer, author (user indexes), from_ms, to_ms, affinity: the viewer sees the
        author's posts and stories at t when from_ms < t < to_ms
    affinity: viewer, author (indexes), affinity for every pair that ever followed or requested
    followed_ever / blocked_ever: pair codes viewer * n + author (blocked: both orders)
    """

    users: pd.DataFrame
    feed_edges: pd.DataFrame
    affinity: pd.DataFrame
    followed_ever: set[int]
    blocked_ever: set[int]
    batches: list[EventBatch]

    @property
    def n(self) -> int:
        return len(self.users)


def build_graph(config: WorkloadConfig, rng: np.random.Generator) -> Graph:
    users = _users(config, rng)
    n = len(users)
    cutoff = config.end_ms - SERVER_MARGIN_MS
    created = users["created_ms"].to_numpy()
    follower, followee, t_follow = _follow_draws(config, users, rng, cutoff)
    rel = _relationships(config, rng, follower, followee, t_follow, users, cutoff)

    followed_ever = set((follower * n + followee).tolist())
    aff_codes = np.array(sorted(followed_ever), dtype=np.int64)
    truth = config.truth
    latent = truth.affinity_latent_sd * rng.standard_normal(len(aff_codes))
    viewer, author = aff_codes // n, aff_codes % n
    affinity_df = pair_affinity(truth, users, aff_codes, viewer, author, latent)
    affinity = affinity_df["affinity"].to_numpy()

    feed = pd.DataFrame(
        {
            "viewer": np.array(rel.feed_viewer, dtype=np.int64),
            "author": np.array(rel.feed_author, dtype=np.int64),
            "from_ms": np.array(rel.feed_from, dtype=np.int64),
            "to_ms": np.array(rel.feed_to, dtype=np.int64),
        }
    )
    feed["affinity"] = (
        pd.Series(affinity, index=aff_codes).reindex(feed["viewer"] * n + feed["author"]).to_numpy()
    )

    batches = [_user_created(users, rng), _profile_updates(config, users, rng, cutoff)]
    user_ids = users["user_id"].to_numpy()
    ev_t = np.array(rel.ev_t, dtype=np.int64)
    ev_user = np.array(rel.ev_user, dtype=np.int64)
    ev_target = np.array(rel.ev_target, dtype=np.int64)
    ev_type = np.array(rel.ev_type)
    alive = np.array(rel.alive, dtype=bool)
    assert bool(
        np.all(ev_t[alive] > np.maximum(created[ev_user[alive]], created[ev_target[alive]]))
    )
    for event_type in RELATIONSHIP_TYPES:
        idx = np.flatnonzero(alive & (ev_type == event_type))
        idx = idx[np.argsort(ev_t[idx], kind="stable")]
        occurred = ev_t[idx]
        batches.append(
            EventBatch(
                event_type,
                occurred,
                occurred + server_delay(rng, len(idx)),
                ["graph-service"] * len(idx),
                columns={
                    "user_id": user_ids[ev_user[idx]].tolist(),
                    "target_user_id": user_ids[ev_target[idx]].tolist(),
                },
            )
        )
    return Graph(users, feed, affinity_df, followed_ever, rel.blocked_ever, batches)


def pair_affinity(
    truth: TruthModel,
    users: pd.DataFrame,
    followed_codes: np.ndarray,
    viewer: np.ndarray,
    author: np.ndarray,
    latent: np.ndarray,
) -> pd.DataFrame:
    """viewer, author, affinity = structural + latent, and the structure it grew from."""
    structure = pair_structure(users, followed_codes, viewer, author)
    structural = truth.structural_affinity(*(structure[name] for name in STRUCTURE))
    return pd.DataFrame(
        {
            "viewer": viewer,
            "author": author,
            "affinity": structural + latent,
            "structural": structural,
            "latent": latent,
            **structure,
        }
    )


def _users(config: WorkloadConfig, rng: np.random.Generator) -> pd.DataFrame:
    n = config.users
    start, cutoff = config.start_ms, config.end_ms - SERVER_MARGIN_MS
    codes = [c[0] for c in COUNTRIES]
    weights = np.array([c[1] for c in COUNTRIES])
    tz_of = {c[0]: c[2] for c in COUNTRIES}
    country = rng.choice(len(codes), n, p=weights / weights.sum())
    tz = np.array([tz_of[codes[c]] for c in country], dtype=np.int64)

    initial = rng.random(n) < config.initial_user_fraction
    celebrity_rows = rng.choice(n, config.n_celebrities, replace=False)
    initial[celebrity_rows] = True
    created = np.empty(n, dtype=np.int64)
    signup_end = start + int(config.initial_signup_hours * HOUR_MS)
    created[initial] = rng.integers(start, signup_end, int(initial.sum()))
    late = ~initial
    created[late] = diurnal_times(
        rng,
        np.full(int(late.sum()), start),
        np.full(int(late.sum()), cutoff - 6 * HOUR_MS),
        tz[late],
    )
    is_celebrity = np.zeros(n, dtype=bool)
    is_celebrity[celebrity_rows] = True

    order = np.argsort(created, kind="stable")  # user index = signup order; ids grow with it
    created, country, tz, is_celebrity = (
        created[order],
        country[order],
        tz[order],
        is_celebrity[order],
    )
    user_id = 10_000_000 + np.cumsum(rng.integers(1, 40, n))
    is_private = (rng.random(n) < config.private_fraction) & ~is_celebrity

    popularity = np.minimum(1.0 + rng.pareto(config.popularity_alpha, n), POPULARITY_CAP)
    popularity[is_celebrity] = 0.0
    share = config.celebrity_follow_share
    # Zipf among celebrities: one account most of the sample follows, as in real graphs
    celeb_weight = 1.0 / rng.permutation(np.arange(1, int(is_celebrity.sum()) + 1))
    celeb_weight = celeb_weight / celeb_weight.sum() * popularity.sum() * share / (1 - share)
    celeb_weight = np.maximum(celeb_weight, 2.0 * POPULARITY_CAP)
    popularity[is_celebrity] = celeb_weight

    platform = rng.choice(len(PLATFORMS), n, p=[p[1] for p in PLATFORMS])
    return pd.DataFrame(
        {
            "user_id": user_id.astype(np.int64),
            "created_ms": created,
            "username": _usernames(rng, n, is_celebrity),
            "is_private": is_private,
            "country": [codes[c] for c in country],
            "tz": tz,
            "popularity": popularity,
            "is_celebrity": is_celebrity,
            "platform": [PLATFORMS[p][0] for p in platform],
            **_homes_and_interests(
                np.random.default_rng((config.seed, HOMES_STREAM)), country, codes
            ),
        }
    )


HOMES_STREAM = 0x4C0C  # a separate random stream, keyed by the seed
HOME_SPREAD_KM = 25.0  # users live around their city's centre, about this far out
MAX_INTERESTS = 3


def _homes_and_interests(
    rng: np.random.Generator, country: np.ndarray, codes: list[str]
) -> dict[str, object]:
    """Each user's home city, coordinates and topic interests (columns city, lat, lon, interests).

    The home is a listed city of the user's country (the nearest listed one, by index order, for a
    country without one), the coordinates scatter around it. Interests are 1-3 distinct TOPICS
    ids. Drawn from their own stream (seed, HOMES_STREAM), so these columns change no other draw.
    """
    n = len(country)
    by_country: dict[str, list[int]] = {}
    for index, code in enumerate(CITY_COUNTRIES):
        by_country.setdefault(code, []).append(index)
    fallback = {"CA": [0], "PL": [10]}  # Toronto -> New York, Warsaw -> Berlin
    picks = rng.random(n)
    city = np.empty(n, dtype=np.int64)
    for i in range(n):
        options = by_country.get(codes[country[i]]) or fallback.get(codes[country[i]], [0])
        city[i] = options[int(picks[i] * len(options))]
    radius_deg = HOME_SPREAD_KM / 111.0 * np.sqrt(rng.random(n))
    angle = rng.uniform(0.0, 2 * np.pi, n)
    lat = np.array([CITIES[c][2] for c in city]) + radius_deg * np.sin(angle)
    lon = np.array([CITIES[c][3] for c in city]) + radius_deg * np.cos(angle) / np.cos(
        np.radians(np.array([CITIES[c][2] for c in city]))
    )
    counts = rng.integers(1, MAX_INTERESTS + 1, n)
    interests = [
        sorted(rng.choice(len(TOPICS), int(k), replace=False).tolist()) for k in counts.tolist()
    ]
    return {
        "city": [CITIES[c][1] for c in city],
        "lat": lat,
        "lon": lon,
        "interests": interests,
    }


def _usernames(rng: np.random.Generator, n: int, is_celebrity: np.ndarray) -> list[str]:
    first = rng.integers(0, len(FIRST_NAMES), n)
    word = rng.integers(0, len(WORDS), n)
    style = rng.integers(0, 4, n)
    digits = rng.integers(1, 9999, n)
    seen: set[str] = set()
    out = []
    for i in range(n):
        name, w = FIRST_NAMES[first[i]], WORDS[word[i]]
        if is_celebrity[i]:
            base = f"{name}.{w}.official"
        else:
            base = (f"{name}_{w}", f"{name}{digits[i]}", f"{w}.{name}", f"the.{name}.{w}")[style[i]]
        candidate = base
        while candidate in seen:
            candidate = f"{base}{rng.integers(10, 99999)}"
        seen.add(candidate)
        out.append(candidate[:30])
    return out


def _follow_draws(
    config: WorkloadConfig, users: pd.DataFrame, rng: np.random.Generator, cutoff: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Who follows whom (distinct pairs: community draws, triadic closure, follow-backs) and when
    the first attempt is."""
    n = len(users)
    created = users["created_ms"].to_numpy()
    back = config.follow_back_probability
    # follow-backs add about back * (1 - celebrity share) follows per drawn follow
    scale = 1.0 / (1.0 + back * (1.0 - config.celebrity_follow_share))
    k = np.clip(
        np.rint(
            scale * config.follows_median * np.exp(config.follows_sigma * rng.standard_normal(n))
        ),
        1,
        n - 1,
    ).astype(np.int64)
    k_closure = rng.binomial(k, config.triadic_fraction)
    k_community = np.maximum(k - k_closure, 1)
    follower, followee = _community_draws(config, users, rng, k_community)
    closer, closed = _triadic_closure(
        users, rng, follower, followee, k_closure, config.closure_sharpness
    )

    def first_attempt(who: np.ndarray, whom: np.ndarray, onboarding_share: float) -> np.ndarray:
        m = len(who)
        onboarding = rng.random(m) < onboarding_share
        t = np.where(
            onboarding,
            created[who] + MINUTE_MS + rng.exponential(20 * MINUTE_MS, m).astype(np.int64),
            created[who] + (rng.random(m) * (cutoff - created[who])).astype(np.int64),
        )
        too_early = t <= created[whom] + MINUTE_MS
        return np.where(
            too_early,
            created[whom] + MINUTE_MS + rng.exponential(2 * HOUR_MS, m).astype(np.int64),
            t,
        )

    # community follows mostly at onboarding; friends-of-friends are found over time
    t = np.concatenate([first_attempt(follower, followee, 0.6), first_attempt(closer, closed, 0.1)])
    follower, followee = np.concatenate([follower, closer]), np.concatenate([followee, closed])

    codes = follower * n + followee
    celebrity = users["is_celebrity"].to_numpy()
    answer = (rng.random(len(codes)) < back) & ~celebrity[followee] & ~celebrity[follower]
    answer &= ~np.isin(followee * n + follower, codes)
    back_t = np.maximum(t[answer], created[follower[answer]] + MINUTE_MS) + rng.exponential(
        4 * HOUR_MS, int(answer.sum())
    ).astype(np.int64)
    follower, followee, t = (
        np.concatenate([follower, followee[answer]]),
        np.concatenate([followee, follower[answer]]),
        np.concatenate([t, back_t]),
    )
    keep = t < cutoff
    return follower[keep], followee[keep], t[keep]


def _community_draws(
    config: WorkloadConfig, users: pd.DataFrame, rng: np.random.Generator, k: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """k[i] distinct accounts per user i, by popularity times the community affinity."""
    n = len(users)
    popularity = users["popularity"].to_numpy()
    country = pd.factorize(users["country"])[0]
    city = pd.factorize(users["city"])[0]
    interests = np.zeros((n, len(TOPICS)), dtype=np.float32)
    for row, topics in enumerate(users["interests"]):
        interests[row, list(topics)] = 1.0
    celebrity = users["is_celebrity"].to_numpy()
    followers: list[np.ndarray] = []
    followees: list[np.ndarray] = []
    chunk = max(1, 4_000_000 // n)
    for lo in range(0, n, chunk):
        rows = np.arange(lo, min(n, lo + chunk))
        affinity = 1.0 + (config.same_country_boost - 1.0) * (
            country[rows, None] == country[None, :]
        )
        affinity = affinity * (1.0 + (config.same_city_boost - 1.0) * (city[rows, None] == city))
        affinity = affinity * (1.0 + config.shared_interest_boost * (interests[rows] @ interests.T))
        # communities change WHICH ordinary accounts a user follows, not how many follows go to
        # celebrities (followed across communities): each row's ordinary weights keep their sum
        ordinary = popularity * ~celebrity
        affinity *= (ordinary.sum() / ((affinity * ordinary).sum(axis=1)))[:, None]
        affinity[:, celebrity] = 1.0
        # weighted sampling without replacement: the k smallest Exp(1) / weight keys
        keys = rng.exponential(size=(len(rows), n)) / (popularity * affinity)
        keys[np.arange(len(rows)), rows] = np.inf  # nobody follows themselves
        want = k[rows]
        top = np.argpartition(keys, int(want.max()) - 1, axis=1)[:, : int(want.max())]
        top = np.take_along_axis(top, np.argsort(np.take_along_axis(keys, top, 1), 1), 1)
        followers.append(np.repeat(rows, want))
        followees.append(top[np.arange(top.shape[1])[None, :] < want[:, None]])
    return np.concatenate(followers), np.concatenate(followees)


def _triadic_closure(
    users: pd.DataFrame,
    rng: np.random.Generator,
    follower: np.ndarray,
    followee: np.ndarray,
    k: np.ndarray,
    sharpness: float,
) -> tuple[np.ndarray, np.ndarray]:
    """k[i] more accounts per user i among the accounts their follows follow, weighted by how
    many of them do (to the power `sharpness`, times sqrt popularity capped at POPULARITY_CAP);
    users in random order, each seeing the closures already made (closure compounds, as it does
    over time)."""
    n = len(users)
    weight_of = np.sqrt(np.minimum(users["popularity"].to_numpy(), POPULARITY_CAP))
    following: list[set[int]] = [set() for _ in range(n)]
    for a, b in zip(follower.tolist(), followee.tolist(), strict=True):
        following[a].add(b)
    out_a: list[int] = []
    out_b: list[int] = []
    for user in rng.permutation(n).tolist():
        want = int(k[user])
        mine = following[user]
        if want <= 0 or not mine:
            continue
        paths = np.fromiter((c for friend in mine for c in following[friend]), dtype=np.int64)
        if len(paths) == 0:
            continue
        candidates, counts = np.unique(paths, return_counts=True)
        fresh = ~np.isin(candidates, np.fromiter(mine, dtype=np.int64)) & (candidates != user)
        candidates, counts = candidates[fresh], counts[fresh]
        if len(candidates) == 0:
            continue
        keys = rng.exponential(size=len(candidates)) / (
            counts.astype(np.float64) ** sharpness * weight_of[candidates]
        )
        chosen = candidates[np.argsort(keys)[:want]]
        mine.update(chosen.tolist())
        out_a.extend([user] * len(chosen))
        out_b.extend(chosen.tolist())
    return np.array(out_a, dtype=np.int64), np.array(out_b, dtype=np.int64)


@dataclass
class _Relationships:
    ev_type: list[str]
    ev_user: list[int]
    ev_target: list[int]
    ev_t: list[int]
    alive: list[bool]
    feed_viewer: list[int]
    feed_author: list[int]
    feed_from: list[int]
    feed_to: list[int]
    blocked_ever: set[int]


def _relationships(
    config: WorkloadConfig,
    rng: np.random.Generator,
    follower: np.ndarray,
    followee: np.ndarray,
    t_follow: np.ndarray,
    users: pd.DataFrame,
    cutoff: int,
) -> _Relationships:
    """Replay every follow pair's life: request/approval, unfollow, re-follow, mute; then blocks."""
    n = len(users)
    m = len(follower)
    is_private = users["is_private"].to_numpy()
    created = users["created_ms"].to_numpy()
    u = rng.random((m, 6))
    approval_delay = (
        config.approval_median_hours * HOUR_MS * np.exp(1.2 * rng.standard_normal((m, 2)))
    ).astype(np.int64) + MINUTE_MS
    unfollow_after = rng.exponential(30 * HOUR_MS, m).astype(np.int64) + 10 * MINUTE_MS
    refollow_after = rng.exponential(12 * HOUR_MS, m).astype(np.int64) + 10 * MINUTE_MS
    unmute_after = rng.exponential(24 * HOUR_MS, m).astype(np.int64) + 10 * MINUTE_MS
    mute_at = rng.random(m)

    ev_type: list[str] = []
    ev_user: list[int] = []
    ev_target: list[int] = []
    ev_t: list[int] = []
    events_of: dict[int, list[int]] = defaultdict(list)
    intervals: dict[int, list[list[int]]] = {}
    muted: dict[int, list[int]] = {}

    def emit(kind: str, user: int, target: int, at: int, pair: int) -> None:
        events_of[pair].append(len(ev_t))
        ev_type.append(kind)
        ev_user.append(user)
        ev_target.append(target)
        ev_t.append(at)

    pairs = zip(follower.tolist(), followee.tolist(), t_follow.tolist(), strict=True)
    for e, (f, a, t0) in enumerate(pairs):
        pair = f * n + a
        spans: list[list[int]] = []
        t = t0
        for attempt in range(2):
            if is_private[a]:
                emit("follow_request", f, a, t, pair)
                approved_at = t + int(approval_delay[e, attempt])
                if u[e, attempt] >= config.approval_probability or approved_at >= cutoff:
                    break
                emit("follow_approved", a, f, approved_at, pair)
                visible_from = approved_at
            else:
                emit("follow", f, a, t, pair)
                visible_from = t
            unfollow_at = visible_from + int(unfollow_after[e])
            if u[e, 2] < config.unfollow_probability and unfollow_at < cutoff and attempt == 0:
                emit("unfollow", f, a, unfollow_at, pair)
                spans.append([visible_from, unfollow_at])
                t = unfollow_at + int(refollow_after[e])
                if u[e, 3] < config.refollow_probability and t < cutoff:
                    continue
                break
            spans.append([visible_from, int(NEVER)])
            break
        if spans:
            intervals[pair] = spans
            first_from, first_to = spans[0]
            mute_end = min(first_to, cutoff)
            if u[e, 4] < config.mute_probability and mute_end - first_from > 2 * MINUTE_MS:
                t_mute = (
                    first_from
                    + MINUTE_MS
                    + int(mute_at[e] * (mute_end - first_from - 2 * MINUTE_MS))
                )
                emit("mute", f, a, t_mute, pair)
                t_unmute = t_mute + int(unmute_after[e])
                if u[e, 5] < config.unmute_probability and t_unmute < mute_end:
                    emit("unmute", f, a, t_unmute, pair)
                    muted[pair] = [t_mute, t_unmute]
                else:
                    muted[pair] = [t_mute, int(NEVER)]
    alive = [True] * len(ev_t)
    blocked_ever = _blocks(
        config, rng, follower, followee, t_follow, created, cutoff, emit, events_of, ev_t, alive,
        intervals, muted,
    )  # fmt: skip
    alive += [True] * (len(ev_t) - len(alive))

    feed_viewer: list[int] = []
    feed_author: list[int] = []
    feed_from: list[int] = []
    feed_to: list[int] = []
    for pair, spans in intervals.items():
        mute = muted.get(pair)
        for lo, hi in spans:
            pieces = [(lo, hi)]
            if mute is not None:
                pieces = [(lo, min(hi, mute[0])), (max(lo, mute[1]), hi)]
            for p_lo, p_hi in pieces:
                if p_hi - p_lo > MINUTE_MS:
                    feed_viewer.append(pair // n)
                    feed_author.append(pair % n)
                    feed_from.append(p_lo)
                    feed_to.append(p_hi)
    return _Relationships(
        ev_type, ev_user, ev_target, ev_t, alive, feed_viewer, feed_author, feed_from, feed_to,
        blocked_ever,
    )  # fmt: skip


def _blocks(
    config: WorkloadConfig,
    rng: np.random.Generator,
    follower: np.ndarray,
    followee: np.ndarray,
    t_follow: np.ndarray,
    created: np.ndarray,
    cutoff: int,
    emit: Callable[[str, int, int, int, int], None],
    events_of: dict[int, list[int]],
    ev_t: list[int],
    alive: list[bool],
    intervals: dict[int, list[list[int]]],
    muted: dict[int, list[int]],
) -> set[int]:
    """Blocks: half by an author against one of their followers, half between strangers.

    A block cuts every follow interval and mute of the pair (both directions) and removes every
    later event between them; an unblock sometimes follows, but no follow resumes by itself.
    """
    n = len(created)
    m = len(follower)
    n_blocks = round(config.blocks_per_follow * m)
    n_from_follows = min(n_blocks // 2 + n_blocks % 2, m)
    picked = rng.choice(m, n_from_follows, replace=False) if m else np.zeros(0, dtype=np.int64)
    blocker = list(followee[picked])
    target = list(follower[picked])
    earliest = list(t_follow[picked] + MINUTE_MS)
    strangers_b = rng.integers(0, n, n_blocks - n_from_follows)
    strangers_t = rng.integers(0, n, n_blocks - n_from_follows)
    blocker += list(strangers_b)
    target += list(strangers_t)
    earliest += list(np.maximum(created[strangers_b], created[strangers_t]) + MINUTE_MS)
    fractions = rng.random(len(blocker))
    unblock_draw = rng.random(len(blocker))
    unblock_after = rng.exponential(12 * HOUR_MS, len(blocker)).astype(np.int64) + 10 * MINUTE_MS

    blocked_ever: set[int] = set()
    for i, (b, c, lo) in enumerate(zip(blocker, target, earliest, strict=True)):
        b, c, lo = int(b), int(c), int(lo)
        if b == c or b * n + c in blocked_ever or lo >= cutoff:
            continue
        blocked_ever.update((b * n + c, c * n + b))
        t_block = lo + int(fractions[i] * (cutoff - lo))
        for pair in (b * n + c, c * n + b):
            for idx in events_of.get(pair, ()):
                if ev_t[idx] >= t_block:
                    alive[idx] = False
            if pair in intervals:
                spans = [[lo_, min(hi_, t_block)] for lo_, hi_ in intervals[pair] if lo_ < t_block]
                intervals[pair] = spans
            if pair in muted and muted[pair][0] >= t_block:
                del muted[pair]
        emit("block", b, c, t_block, b * n + c)
        t_unblock = t_block + int(unblock_after[i])
        if unblock_draw[i] < config.unblock_probability and t_unblock < cutoff:
            emit("unblock", b, c, t_unblock, b * n + c)
    return blocked_ever


def _user_created(users: pd.DataFrame, rng: np.random.Generator) -> EventBatch:
    occurred = users["created_ms"].to_numpy()
    return EventBatch(
        "user_created",
        occurred,
        occurred + server_delay(rng, len(users)),
        ["user-service"] * len(users),
        columns={
            "user_id": users["user_id"].tolist(),
            "username": users["username"].tolist(),
            "is_private": users["is_private"].tolist(),
            "country": users["country"].tolist(),
            "city": users["city"].tolist(),
            "latitude": [round(float(x), 4) for x in users["lat"]],
            "longitude": [round(float(x), 4) for x in users["lon"]],
            "interests": [[TOPICS[t][1] for t in topics] for topics in users["interests"]],
        },
    )


def _profile_updates(
    config: WorkloadConfig, users: pd.DataFrame, rng: np.random.Generator, cutoff: int
) -> EventBatch:
    """Bio, username or country changes; privacy never changes (the feed model relies on it)."""
    n = len(users)
    updates = (rng.random(n) < config.profile_update_fraction) * (1 + (rng.random(n) < 0.3))
    who = np.repeat(np.arange(n), updates)
    created = users["created_ms"].to_numpy()[who]
    occurred = created + (rng.random(len(who)) * (cutoff - created)).astype(np.int64) + 1
    order = np.argsort(occurred, kind="stable")
    who, occurred = who[order], occurred[order]
    user_ids = users["user_id"].to_numpy()
    names = users["username"].tolist()
    codes = [c[0] for c in COUNTRIES]
    payloads: list[dict[str, object]] = []
    draws = rng.random((len(who), 3))
    for i, row in enumerate(who.tolist()):
        payload: dict[str, object] = {"user_id": int(user_ids[row])}
        if draws[i, 0] < 0.7:
            payload["bio"] = BIOS[int(draws[i, 1] * len(BIOS))]
        if draws[i, 1] < 0.2 or len(payload) == 1:
            payload["username"] = f"{names[row][:24]}_{i % 1000}"
        if draws[i, 2] < 0.08:
            payload["country"] = codes[int(draws[i, 2] / 0.08 * len(codes))]
        payloads.append(payload)
    return EventBatch(
        "profile_updated",
        occurred,
        occurred + server_delay(rng, len(who)),
        ["user-service"] * len(who),
        payloads,
    )
