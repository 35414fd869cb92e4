"""The dbt marts against an independent computation from the generator's event log.

One small workload (150 users x 2 days) is loaded into a temp chDB directory in two steps, at the
day boundary by arrival hour, with a `dbt run` after each, so the second run takes the
incremental path of fct_engagements and fct_training_impressions with late events and unlikes of
likes written by the first run. Every mart is then compared, row by row and value by value, with
the same quantity computed here in plain Python from the valid events (`workload.records`) and,
where it says the same thing, the hidden ground truth.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import yaml
from analytics_support import DBT_DATABASES, PROJECT_DIR, load_landing, run_dbt

from ingestion.landing import hour_of_partition
from objectstore.store import ObjectStore, open_store
from warehouse import clickhouse_client
from workload.config import WorkloadConfig
from workload.generator import Workload, generate
from workload.writer import write_workload

VARS: dict[str, Any] = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
START = datetime(2026, 11, 1, tzinfo=UTC)
SPLIT = START + timedelta(days=1)  # first load: files that arrived before; second: the rest
SEED = 5  # its split has late events and unlikes of likes loaded the day before (asserted)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
ACTIONS = ("like", "comment", "share", "save")
MARTS = (
    "dim_users",
    "dim_posts",
    "fct_engagements",
    "fct_post_engagement",
    "fct_user_author_affinity",
    "fct_daily_active_users",
    "fct_weekly_retention",
    "fct_creator_stats",
    "fct_hashtag_trends",
    "fct_story_views",
    "fct_notification_digests",
    "fct_training_impressions",
)
INTERMEDIATE = ("int_follow_graph", "int_follow_requests", "int_blocks", "int_mutes")


def epoch_ms(value: str) -> int:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed - EPOCH) // timedelta(milliseconds=1)


@dataclass
class Built:
    workload: Workload
    events: list[dict[str, Any]]  # valid events, `t` = occurred_at in epoch ms, in time order
    marts: dict[str, pd.DataFrame]
    late_events_in_second_load: int
    unlikes_of_first_load_likes: int
    second_run_sql: str


def load(chdb_path: Path, store: ObjectStore, partitions: list[str]) -> None:
    load_landing(chdb_path, store, partitions)


def dbt(command: str, chdb_path: Path, work: Path) -> None:
    """`dbt <command>` in a subprocess; the caller has closed its chDB client on chdb_path."""
    result = run_dbt(work, chdb_path, command)
    assert result.returncode == 0, f"dbt {command} failed:\n{result.output[-6000:]}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    work = tmp_path_factory.mktemp("dbt_marts")
    chdb_path = work / "clickhouse"
    workload = generate(WorkloadConfig(users=150, days=2, seed=SEED, start=START))
    store = open_store(f"file://{work}/objects")
    partitions = sorted(write_workload(store, "landing/events", workload).partitions)
    first = [p for p in partitions if hour_of_partition(p) < SPLIT]
    load(chdb_path, store, first)
    dbt("run", chdb_path, work)
    load(chdb_path, store, [p for p in partitions if p not in first])
    dbt("run", chdb_path, work)
    second_run_sql = next((work / "target" / "run").rglob("fct_engagements.sql")).read_text()
    with clickhouse_client(f"chdb://{chdb_path}") as client:
        marts = {
            name: client.query_df(f"select * from {DBT_DATABASES.marts_database}.{name}")
            for name in MARTS
        }
        for name in INTERMEDIATE:
            marts[name] = client.query_df(
                f"select * from {DBT_DATABASES.intermediate_database}.{name}"
            )

    events: list[dict[str, Any]] = []
    split_ms = (SPLIT - EPOCH) // timedelta(milliseconds=1)
    late = 0
    first_load_likes: set[tuple[int, int]] = set()
    unlikes_of_first_load_likes = 0
    for record in workload.records:
        if record.is_bad:
            continue
        event = orjson.loads(record.line)
        event["t"] = epoch_ms(event["occurred_at"])
        in_first_load = record.produced_at.replace(minute=0, second=0, microsecond=0) < SPLIT
        late += not in_first_load and event["t"] < split_ms
        pair = (event["user_id"], event.get("post_id", 0))
        if event["event_type"] == "like" and in_first_load:
            first_load_likes.add(pair)
        if event["event_type"] == "unlike" and not in_first_load and pair in first_load_likes:
            unlikes_of_first_load_likes += 1
        events.append(event)
    events.sort(key=lambda e: (e["t"], e["event_id"]))
    return Built(workload, events, marts, late, unlikes_of_first_load_likes, second_run_sql)


# --- helpers -----------------------------------------------------------------------------------


def of_type(built: Built, *types: str) -> list[dict[str, Any]]:
    return [e for e in built.events if e["event_type"] in types]


def as_ms(values: pd.Series) -> pd.Series:
    """Timestamps (UTC, naive or aware) as epoch milliseconds; missing ones as None."""
    stamps = pd.to_datetime(values, utc=True)
    millis = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    return millis.astype(object).where(stamps.notna(), None)


def rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    """The columns as tuples of plain Python values, missing ones as None."""
    values = [[None if pd.isna(v) else v for v in frame[c].tolist()] for c in columns]
    return list(zip(*values, strict=True))


def assert_rows_equal(
    actual: pd.DataFrame, expected: pd.DataFrame, *, floats: Iterable[str] = ()
) -> None:
    """The same rows over the expected columns; the `floats` columns to a relative 1e-9."""
    floats = list(floats)
    exact = [c for c in expected.columns if c not in floats]
    got, want = rows(actual, exact), rows(expected, exact)
    missing = list((Counter(want) - Counter(got)).elements())
    unexpected = list((Counter(got) - Counter(want)).elements())
    assert not missing and not unexpected, (
        f"{len(got)} rows, expected {len(want)}; missing {missing[:5]}, unexpected {unexpected[:5]}"
    )
    if floats:
        got_floats = dict(zip(got, rows(actual, floats), strict=True))
        for key, values in zip(want, rows(expected, floats), strict=True):
            for column, value, expected_value in zip(floats, got_floats[key], values, strict=True):
                assert math.isclose(value, expected_value, rel_tol=1e-9, abs_tol=1e-12), (
                    f"{column} of {key}: {value} != {expected_value}"
                )


def follow_graph(built: Built) -> dict[tuple[int, int], int]:
    """(follower, followee) -> followed since: the events replayed in time order."""
    following: dict[tuple[int, int], int] = {}
    ends = {"unfollow", "block"}
    relationships = of_type(built, "follow", "follow_approved", "unfollow", "block")
    for e in sorted(relationships, key=lambda e: (e["t"], e["event_type"] in ends)):
        actor, target, kind = e["user_id"], e["target_user_id"], e["event_type"]
        if kind == "follow":
            following.setdefault((actor, target), e["t"])
        elif kind == "follow_approved":  # the private account approves its requester
            following.setdefault((target, actor), e["t"])
        elif kind == "unfollow":
            following.pop((actor, target), None)
        else:  # a block ends both directions
            following.pop((actor, target), None)
            following.pop((target, actor), None)
    return following


def standing_likes(built: Built) -> dict[tuple[int, int], dict[str, Any]]:
    """(viewer, post) -> the like event that stands after every unlike."""
    current: dict[tuple[int, int], dict[str, Any] | None] = {}
    changes = of_type(built, "like", "unlike")
    for e in sorted(changes, key=lambda e: (e["t"], e["event_type"] == "unlike")):
        current[(e["user_id"], e["post_id"])] = e if e["event_type"] == "like" else None
    return {pair: e for pair, e in current.items() if e is not None}


def posts(built: Built) -> dict[int, dict[str, Any]]:
    created = {e["post_id"]: dict(e) for e in of_type(built, "post_created")}
    for post in created.values():
        post["deleted_t"] = None
    for e in of_type(built, "post_deleted"):
        created[e["post_id"]]["deleted_t"] = e["t"]
    return created


def stories(built: Built) -> dict[int, dict[str, Any]]:
    return {e["story_id"]: e for e in of_type(built, "story_created")}


def engagement_facts(built: Built) -> list[dict[str, Any]]:
    """Standing likes and every comment, share and save, with the post's author."""
    authors = {post_id: p["user_id"] for post_id, p in posts(built).items()}
    facts = list(standing_likes(built).values()) + of_type(built, "comment", "share", "save")
    return [
        {
            "engagement_id": e["event_id"],
            "engagement_type": e["event_type"],
            "viewer_id": e["user_id"],
            "post_id": e["post_id"],
            "author_id": authors[e["post_id"]],
            "t": e["t"],
        }
        for e in facts
    ]


def impression_labels(built: Built) -> dict[str, bool]:
    """impression event_id -> the viewer engaged with the post within the label window after."""
    window = VARS["engagement_label_window_hours"] * HOUR_MS
    actions: dict[tuple[int, int], list[int]] = defaultdict(list)
    for e in of_type(built, *ACTIONS):
        actions[(e["user_id"], e["post_id"])].append(e["t"])
    return {
        e["event_id"]: any(
            0 <= t - e["t"] <= window for t in actions.get((e["user_id"], e["post_id"]), [])
        )
        for e in of_type(built, "impression")
    }


def usernames(built: Built) -> dict[int, str]:
    names: dict[int, str] = {}
    for e in of_type(built, "user_created", "profile_updated"):
        if e.get("username") is not None:
            names[e["user_id"]] = e["username"]
    return names


def story_views_in_life(built: Built) -> list[dict[str, Any]]:
    by_id = stories(built)
    return [
        e
        for e in of_type(built, "story_view")
        if by_id[e["story_id"]]["t"] <= e["t"] < epoch_ms(by_id[e["story_id"]]["expires_at"])
        and e["user_id"] != by_id[e["story_id"]]["user_id"]
    ]


def tier(followers: int) -> str:
    if followers >= VARS["tier_celebrity_min_followers"]:
        return "celebrity"
    if followers >= VARS["tier_popular_min_followers"]:
        return "popular"
    return "ordinary"


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def utc_date(ms: int) -> date:
    return (EPOCH + timedelta(milliseconds=ms)).date()


# --- the tests ---------------------------------------------------------------------------------


def test_the_second_run_was_incremental_over_late_data(built: Built) -> None:
    assert "max(ingested_at)" in built.second_run_sql  # the is_incremental() branch was compiled
    assert built.late_events_in_second_load > 0
    assert built.unlikes_of_first_load_likes > 0


def test_dim_users_matches_the_replayed_follow_graph(built: Built) -> None:
    following = follow_graph(built)
    followers: dict[int, int] = defaultdict(int)
    followees: dict[int, int] = defaultdict(int)
    for follower, followee in following:
        followers[followee] += 1
        followees[follower] += 1
    latest: dict[int, dict[str, Any]] = defaultdict(dict)
    created: dict[int, int] = {}
    for e in of_type(built, "user_created", "profile_updated"):
        latest[e["user_id"]].update(
            {k: e[k] for k in ("username", "country", "is_private", "bio") if k in e}
        )
        if e["event_type"] == "user_created":
            created[e["user_id"]] = e["t"]
    expected = pd.DataFrame(
        [
            {
                "user_id": user,
                "username": latest[user]["username"],
                "country": latest[user]["country"],
                "is_private": latest[user]["is_private"],
                "bio": latest[user].get("bio"),
                "created_at": created[user],
                "follower_count": followers[user],
                "following_count": followees[user],
                "tier": tier(followers[user]),
            }
            for user in created
        ]
    )
    actual = built.marts["dim_users"].assign(created_at=lambda f: as_ms(f["created_at"]))
    assert_rows_equal(actual, expected)
    assert expected["follower_count"].sum() == len(following) > 0
    assert set(expected["tier"]) >= {"ordinary", "popular"}
    private = set(built.workload.ground_truth.parameters["private_users"])
    assert set(expected.loc[expected["is_private"], "user_id"]) == private


def test_current_follows_blocks_and_mutes(built: Built) -> None:
    follows = pd.DataFrame(
        [
            {"follower_id": follower, "followee_id": followee, "followed_since": since}
            for (follower, followee), since in follow_graph(built).items()
        ]
    )
    actual = built.marts["int_follow_graph"]
    assert_rows_equal(actual.assign(followed_since=as_ms(actual["followed_since"])), follows)

    for model, on, off, columns in (
        ("int_blocks", "block", "unblock", ["blocker_id", "blocked_id", "blocked_at"]),
        ("int_mutes", "mute", "unmute", ["muter_id", "muted_id", "muted_at"]),
    ):
        current: dict[tuple[int, int], int | None] = {}
        for e in of_type(built, on, off):
            current[(e["user_id"], e["target_user_id"])] = e["t"] if e["event_type"] == on else None
        expected = pd.DataFrame(
            [(a, b, t) for (a, b), t in current.items() if t is not None], columns=columns
        )
        actual = built.marts[model]
        assert_rows_equal(actual.assign(**{columns[2]: as_ms(actual[columns[2]])}), expected)
        assert len(expected) > 0


def test_follow_requests_resolve_like_the_replay(built: Built) -> None:
    open_requests: dict[tuple[int, int], list[str]] = defaultdict(list)
    status: dict[str, str] = {}
    for e in of_type(built, "follow_request", "follow_approved", "unfollow", "block"):
        actor, target, kind = e["user_id"], e["target_user_id"], e["event_type"]
        if kind == "follow_request":
            open_requests[(actor, target)].append(e["event_id"])
            status[e["event_id"]] = "pending"
        elif kind == "follow_approved" and open_requests[(target, actor)]:
            status[open_requests[(target, actor)].pop()] = "approved"
        elif kind in ("unfollow", "block"):
            pairs = [(actor, target)] + ([(target, actor)] if kind == "block" else [])
            for pair in pairs:
                for request in open_requests.pop(pair, []):
                    status[request] = "cancelled"
    actual = built.marts["int_follow_requests"]
    assert dict(zip(actual["request_id"].astype(str), actual["status"], strict=True)) == status
    approvals = len(of_type(built, "follow_approved"))
    assert sum(s == "approved" for s in status.values()) == approvals > 0


def test_dim_posts_summarise_the_post_events(built: Built) -> None:
    rows = []
    for post_id, p in posts(built).items():
        media = p["media"]
        rows.append(
            {
                "post_id": post_id,
                "author_id": p["user_id"],
                "created_at": p["t"],
                "media_type": p["media_type"],
                "media_count": len(media),
                "first_media_width": media[0]["width"],
                "first_media_height": media[0]["height"],
                "first_media_size_bytes": media[0]["size_bytes"],
                "has_video": any(m["mime_type"].startswith("video/") for m in media),
                "total_duration_ms": sum(m.get("duration_ms") or 0 for m in media),
                "hashtag_count": len(p.get("hashtags", [])),
                "location_id": p.get("location_id"),
                "caption_length": len(p.get("caption") or ""),
                "is_deleted": p["deleted_t"] is not None,
                "deleted_at": p["deleted_t"],
            }
        )
    actual = built.marts["dim_posts"].assign(
        created_at=lambda f: as_ms(f["created_at"]), deleted_at=lambda f: as_ms(f["deleted_at"])
    )
    assert_rows_equal(actual, pd.DataFrame(rows))
    hashtags = dict(zip(actual["post_id"], actual["hashtags"], strict=True))
    assert all(list(hashtags[i]) == p.get("hashtags", []) for i, p in posts(built).items())
    assert actual["is_deleted"].sum() == len(of_type(built, "post_deleted")) > 0


def test_fct_engagements_keep_only_standing_likes(built: Built) -> None:
    expected = pd.DataFrame(engagement_facts(built)).rename(columns={"t": "engaged_at"})
    actual = built.marts["fct_engagements"].assign(engaged_at=lambda f: as_ms(f["engaged_at"]))
    actual = actual.assign(engagement_id=actual["engagement_id"].astype(str))
    assert_rows_equal(actual, expected)
    likes, unlikes = len(of_type(built, "like")), len(of_type(built, "unlike"))
    assert (expected["engagement_type"] == "like").sum() == likes - unlikes  # nobody re-liked


def test_training_labels_match_the_log_and_the_ground_truth(built: Built) -> None:
    labels = impression_labels(built)
    actual = built.marts["fct_training_impressions"]
    got = dict(zip(actual["impression_id"].astype(str), actual["is_engaged"], strict=True))
    assert got == labels
    truth = built.workload.ground_truth.impressions
    assert got == dict(zip(truth["event_id"], truth["engaged"].astype(bool), strict=True))
    authors = {post_id: p["user_id"] for post_id, p in posts(built).items()}
    expected = pd.DataFrame(
        [
            {
                "impression_id": e["event_id"],
                "viewer_id": e["user_id"],
                "post_id": e["post_id"],
                "author_id": authors[e["post_id"]],
                "impressed_at": e["t"],
                "surface": e["surface"],
                "position": e["position"],
                "dwell_ms": e["dwell_ms"],
            }
            for e in of_type(built, "impression")
        ]
    )
    actual = actual.assign(
        impression_id=actual["impression_id"].astype(str),
        impressed_at=as_ms(actual["impressed_at"]),
    )
    assert_rows_equal(actual, expected)


def test_fct_post_engagement_counts_windows_and_rate(built: Built) -> None:
    windows = {"1h": HOUR_MS, "24h": DAY_MS, "7d": 7 * DAY_MS}
    all_posts = posts(built)
    counts: dict[int, dict[str, Any]] = {
        post_id: {"post_id": post_id, "is_deleted": p["deleted_t"] is not None}
        | {
            f"{kind}s{suffix}": 0
            for kind in (*ACTIONS, "impression")
            for suffix in ("", *[f"_{w}" for w in windows])
        }
        | {"engaged_impressions": 0}
        for post_id, p in all_posts.items()
    }

    def count(kind: str, post_id: int, t: int) -> None:
        row = counts[post_id]
        row[f"{kind}s"] += 1
        for name, span in windows.items():
            row[f"{kind}s_{name}"] += t - all_posts[post_id]["t"] <= span

    for fact in engagement_facts(built):
        count(fact["engagement_type"], fact["post_id"], fact["t"])
    labels = impression_labels(built)
    viewers: dict[int, set[int]] = defaultdict(set)
    for e in of_type(built, "impression"):
        count("impression", e["post_id"], e["t"])
        counts[e["post_id"]]["engaged_impressions"] += labels[e["event_id"]]
        viewers[e["post_id"]].add(e["user_id"])
    for post_id, row in counts.items():
        row["reach"] = len(viewers[post_id])
        row["engagement_rate"] = (
            row["engaged_impressions"] / row["impressions"] if row["impressions"] else 0.0
        )
    expected = pd.DataFrame(list(counts.values()))
    assert_rows_equal(built.marts["fct_post_engagement"], expected, floats=["engagement_rate"])
    assert expected["impressions_1h"].sum() < expected["impressions_24h"].sum()


def test_fct_user_author_affinity_decays_by_the_half_life(built: Built) -> None:
    facts = engagement_facts(built)
    as_of = max(f["t"] for f in facts)
    half_life = VARS["affinity_half_life_days"] * DAY_MS
    weights = VARS["affinity_weights"]
    scores: dict[tuple[int, int], float] = defaultdict(float)
    interactions: dict[tuple[int, int], int] = defaultdict(int)
    for f in facts:
        if f["viewer_id"] == f["author_id"]:
            continue
        pair = (f["viewer_id"], f["author_id"])
        scores[pair] += weights[f["engagement_type"]] * 0.5 ** ((as_of - f["t"]) / half_life)
        interactions[pair] += 1
    expected = pd.DataFrame(
        [
            {
                "viewer_id": v,
                "author_id": a,
                "affinity_score": s,
                "interactions": interactions[(v, a)],
            }
            for (v, a), s in scores.items()
        ]
    )
    actual = built.marts["fct_user_author_affinity"]
    assert_rows_equal(actual, expected, floats=["affinity_score"])
    assert set(as_ms(actual["as_of_at"])) == {as_of}


def test_daily_active_users_and_weekly_retention(built: Built) -> None:
    active: dict[date, set[int]] = defaultdict(set)
    events: dict[date, int] = defaultdict(int)
    for e in built.events:  # every event names its actor in user_id
        active[utc_date(e["t"])].add(e["user_id"])
        events[utc_date(e["t"])] += 1
    signups = {e["user_id"]: utc_date(e["t"]) for e in of_type(built, "user_created")}
    expected_dau = pd.DataFrame(
        [
            {
                "activity_date": pd.Timestamp(day),
                "active_users": len(users),
                "new_users": sum(signup == day for signup in signups.values()),
                "events": events[day],
            }
            for day, users in active.items()
        ]
    )
    actual_dau = built.marts["fct_daily_active_users"]
    actual_dau = actual_dau.assign(activity_date=pd.to_datetime(actual_dau["activity_date"]))
    assert_rows_equal(actual_dau, expected_dau)
    assert len(expected_dau) == built.workload.config.days

    cohorts: dict[date, set[int]] = defaultdict(set)
    for user, day in signups.items():
        cohorts[monday(day)].add(user)
    active_weeks: dict[date, set[int]] = defaultdict(set)
    for day, users in active.items():
        active_weeks[monday(day)] |= users
    newest = max(active_weeks)
    rows = []
    for cohort, members in cohorts.items():
        for week in range((newest - cohort).days // 7 + 1):
            retained = len(members & active_weeks.get(cohort + timedelta(weeks=week), set()))
            rows.append(
                {
                    "cohort_week": pd.Timestamp(cohort),
                    "weeks_since_signup": week,
                    "cohort_size": len(members),
                    "retained_users": retained,
                    "retention_rate": retained / len(members),
                }
            )
    actual = built.marts["fct_weekly_retention"]
    actual = actual.assign(cohort_week=pd.to_datetime(actual["cohort_week"]))
    assert_rows_equal(actual, pd.DataFrame(rows), floats=["retention_rate"])
    assert len(rows) >= 3  # START is a Sunday: two cohorts, the first one seen for two weeks


def test_fct_creator_stats(built: Built) -> None:
    all_posts = posts(built)
    stats: dict[int, dict[str, Any]] = defaultdict(
        lambda: {
            "posts": 0,
            "deleted_posts": 0,
            "stories": 0,
            "likes_received": 0,
            "comments_received": 0,
            "shares_received": 0,
            "saves_received": 0,
            "impressions": 0,
            "engaged": 0,
            "viewers": set(),
            "story_views": 0,
        }
    )
    for p in all_posts.values():
        stats[p["user_id"]]["posts"] += 1
        stats[p["user_id"]]["deleted_posts"] += p["deleted_t"] is not None
    for s in stories(built).values():
        stats[s["user_id"]]["stories"] += 1
    for f in engagement_facts(built):
        stats[f["author_id"]][f"{f['engagement_type']}s_received"] += 1
    labels = impression_labels(built)
    for e in of_type(built, "impression"):
        author = stats[all_posts[e["post_id"]]["user_id"]]
        author["impressions"] += 1
        author["engaged"] += labels[e["event_id"]]
        author["viewers"].add(e["user_id"])
    story_authors = {i: s["user_id"] for i, s in stories(built).items()}
    for e in story_views_in_life(built):
        stats[story_authors[e["story_id"]]]["story_views"] += 1
    followers: dict[int, int] = defaultdict(int)
    for _, followee in follow_graph(built):
        followers[followee] += 1
    expected = pd.DataFrame(
        [
            {
                "author_id": author,
                "tier": tier(followers[author]),
                "follower_count": followers[author],
                **{k: v for k, v in s.items() if k not in ("engaged", "viewers")},
                "reach": len(s["viewers"]),
                "likes_per_post": s["likes_received"] / s["posts"] if s["posts"] else 0.0,
                "engagement_rate": s["engaged"] / s["impressions"] if s["impressions"] else 0.0,
            }
            for author, s in stats.items()
        ]
    )
    actual = built.marts["fct_creator_stats"]
    assert_rows_equal(actual, expected, floats=["likes_per_post", "engagement_rate"])


def test_fct_hashtag_trends_and_the_hidden_trends(built: Built) -> None:
    volume: dict[tuple[str, int], set[int]] = defaultdict(set)
    authors: dict[tuple[str, int], set[int]] = defaultdict(set)
    private = set(built.workload.ground_truth.parameters["private_users"])
    for post_id, p in posts(built).items():
        if p["deleted_t"] is not None or p["user_id"] in private:  # public trending only
            continue
        for tag in p.get("hashtags", []):
            key = (tag.lower(), p["t"] // HOUR_MS)
            volume[key].add(post_id)
            authors[key].add(p["user_id"])
    first_hour = min(hour for _, hour in volume)
    rows = []
    for (tag, hour), post_ids in volume.items():
        previous = len(volume.get((tag, hour - 1), ()))
        before = sum(len(volume.get((tag, h), ())) for h in range(hour - 24, hour))
        history = min(24, hour - first_hour)
        baseline = before / history if history else 0.0
        rows.append(
            {
                "hashtag": tag,
                "hour_at": hour * HOUR_MS,
                "posts": len(post_ids),
                "authors": len(authors[(tag, hour)]),
                "velocity": len(post_ids) - previous,
                "trending_score": (len(post_ids) - baseline) / math.sqrt(baseline + 1),
            }
        )
    expected = pd.DataFrame(rows)
    actual = built.marts["fct_hashtag_trends"].assign(hour_at=lambda f: as_ms(f["hour_at"]))
    assert_rows_equal(actual, expected, floats=["trending_score"])

    # the generator's trending tags peak inside their burst and among the top peaks of all tags
    peaks = expected.sort_values("trending_score").groupby("hashtag").tail(1).set_index("hashtag")
    top = set(peaks["trending_score"].nlargest(5).index)
    for trend in built.workload.ground_truth.parameters["trending"]:
        start = epoch_ms(trend["start"]) // HOUR_MS * HOUR_MS
        assert start <= peaks.loc[trend["hashtag"], "hour_at"] < epoch_ms(trend["end"]), trend
        assert trend["hashtag"] in top, (trend, peaks["trending_score"].nlargest(5))


def test_fct_story_views_count_views_and_reach_in_life(built: Built) -> None:
    views: dict[int, int] = defaultdict(int)
    viewers: dict[int, set[int]] = defaultdict(set)
    for e in story_views_in_life(built):
        views[e["story_id"]] += 1
        viewers[e["story_id"]].add(e["user_id"])
    expected = pd.DataFrame(
        [
            {
                "story_id": story_id,
                "author_id": s["user_id"],
                "views": views[story_id],
                "reach": len(viewers[story_id]),
            }
            for story_id, s in stories(built).items()
        ]
    )
    assert_rows_equal(built.marts["fct_story_views"], expected)
    assert expected["views"].sum() == len(of_type(built, "story_view")) > 0  # all in their life


def test_fct_notification_digests(built: Built) -> None:
    window = VARS["notification_digest_window_hours"] * HOUR_MS
    kept = {i: p for i, p in posts(built).items() if p["deleted_t"] is None}
    notes: list[tuple[str, int, int | None, int, int]] = []  # kind, recipient, post, actor, t
    for f in engagement_facts(built):
        if f["engagement_type"] in ("like", "comment") and f["post_id"] in kept:
            notes.append(
                (f["engagement_type"], f["author_id"], f["post_id"], f["viewer_id"], f["t"])
            )
    for e in of_type(built, "follow", "follow_approved"):
        follower, followee = e["user_id"], e["target_user_id"]
        if e["event_type"] == "follow_approved":
            follower, followee = followee, follower
        notes.append(("follow", followee, None, follower, e["t"]))
    for kept_id, p in kept.items():
        for mentioned in p.get("mentions", []):
            notes.append(("mention", mentioned, kept_id, p["user_id"], p["t"]))
    digests: dict[tuple[int, str, int | None, int], list[tuple[int, int]]] = defaultdict(list)
    for kind, recipient, about, actor, t in notes:
        if actor != recipient:
            digests[(recipient, kind, about, t // window * window)].append((t, actor))
    names = usernames(built)
    verbs = {
        "like": "liked your post",
        "comment": "commented on your post",
        "follow": "started following you",
        "mention": "mentioned you in a post",
    }
    rows = []
    newest_first: dict[tuple[int, str, int | None, int], list[int]] = {}
    for (recipient, kind, about, start), happenings in digests.items():
        actors = {actor for _, actor in happenings}
        ordered = [actor for _, actor in sorted(happenings, reverse=True)]
        newest_first[(recipient, kind, about, start)] = list(dict.fromkeys(ordered))
        latest = max(happenings)[1]
        others = {1: "", 2: " and 1 other"}.get(len(actors), f" and {len(actors) - 1} others")
        rows.append(
            {
                "recipient_id": recipient,
                "kind": kind,
                "post_id": about,
                "window_start_at": start,
                "latest_actor_id": latest,
                "actors": len(actors),
                "events": len(happenings),
                "message": f"{names[latest]}{others} {verbs[kind]}",
            }
        )
    expected = pd.DataFrame(rows)
    actual = built.marts["fct_notification_digests"].assign(
        window_start_at=lambda f: as_ms(f["window_start_at"])
    )
    assert_rows_equal(actual, expected)
    assert (expected["actors"] > 1).any() and set(expected["kind"]) == set(verbs)
    for row in actual.itertuples(index=False):
        about = None if pd.isna(row.post_id) else int(row.post_id)
        key = (int(row.recipient_id), str(row.kind), about, int(row.window_start_at))
        assert list(row.actor_ids) == newest_first[key], key
