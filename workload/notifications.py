"""Events that exist for notifications: story replies, live broadcasts, push settings.

Drawn from their own random stream (the sixth child of the seed), so adding them changed no
event that the other generators make (fault injection, which picks among all valid lines,
does pick differently).
"""

from __future__ import annotations

import numpy as np

from contracts.catalog import NOTIFICATION_PREFERENCES
from workload.config import WorkloadConfig
from workload.content import Content
from workload.events import EventBatch
from workload.graph import Graph
from workload.sampling import client_delay, server_delay

STORY_REPLY_SHARE = 0.03  # of story views
LIVE_SHARE = 0.02  # of users, one broadcast each
PREFERENCES_SHARE = 0.05  # of users, one settings change each
STORY_REPLIES = ("haha", "where is this??", "omg 😍", "miss you", "so jealous", "call me later")
SECOND_MS = 1_000


def notification_batches(
    config: WorkloadConfig,
    rng: np.random.Generator,
    graph: Graph,
    content: Content,
    story_views: EventBatch,
) -> list[EventBatch]:
    return [
        _story_replies(config, rng, graph, content, story_views),
        _live_started(config, rng, graph),
        _preferences(config, rng, graph),
    ]


def _story_replies(
    config: WorkloadConfig,
    rng: np.random.Generator,
    graph: Graph,
    content: Content,
    views: EventBatch,
) -> EventBatch:
    """A few story views end in a reply, seconds later, sent to the story's author."""
    author_user = graph.users["user_id"].to_numpy()[content.stories["author"].to_numpy()]
    authors = dict(zip(content.stories["story_id"].tolist(), author_user.tolist(), strict=True))
    user_ids = views.columns["user_id"]
    story_ids = views.columns["story_id"]
    n = len(views)
    occurred = views.occurred_ms + rng.integers(2 * SECOND_MS, 30 * SECOND_MS, n)
    produced = occurred + client_delay(rng, n, 0.0)
    texts = rng.integers(0, len(STORY_REPLIES), n)
    pick = rng.random(n) < STORY_REPLY_SHARE
    rows = np.flatnonzero(pick & (produced < config.end_ms)).tolist()
    author_ids = [int(authors[story_ids[i]]) for i in rows]
    keep = [k for k, i in enumerate(rows) if author_ids[k] != user_ids[i]]
    rows, author_ids = [rows[k] for k in keep], [author_ids[k] for k in keep]
    return EventBatch(
        "story_reply",
        occurred[rows],
        produced[rows],
        [views.producers[i] for i in rows],
        columns={
            "user_id": [user_ids[i] for i in rows],
            "story_id": [story_ids[i] for i in rows],
            "target_user_id": author_ids,
            "text": [STORY_REPLIES[texts[i]] for i in rows],
        },
    )


def _after_signup(
    config: WorkloadConfig, rng: np.random.Generator, graph: Graph, share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Some users, and a time for each between their sign-up and the end of the window."""
    users = graph.users
    chosen = np.flatnonzero(rng.random(len(users)) < share)
    created = users["created_ms"].to_numpy()[chosen]
    start = np.maximum(created + SECOND_MS, config.start_ms)
    occurred = start + (rng.random(len(chosen)) * (config.end_ms - start - 60 * SECOND_MS)).astype(
        np.int64
    )
    produced = occurred + server_delay(rng, len(chosen))
    ok = (occurred > start) & (produced < config.end_ms)
    return chosen[ok], occurred[ok], produced[ok]


def _live_started(config: WorkloadConfig, rng: np.random.Generator, graph: Graph) -> EventBatch:
    who, occurred, produced = _after_signup(config, rng, graph, LIVE_SHARE)
    user_ids = graph.users["user_id"].to_numpy()[who].tolist()
    return EventBatch(
        "live_started",
        occurred,
        produced,
        ["live-service"] * len(who),
        columns={
            "user_id": user_ids,
            "live_id": [int(u) * 1_000 + i for i, u in enumerate(user_ids, 1)],
            "title": ["live now"] * len(who),
        },
    )


def _preferences(config: WorkloadConfig, rng: np.random.Generator, graph: Graph) -> EventBatch:
    """Most changes turn likes or follows off; a few turn a setting back on."""
    who, occurred, produced = _after_signup(config, rng, graph, PREFERENCES_SHARE)
    user_ids = graph.users["user_id"].to_numpy()[who].tolist()
    settings = rng.integers(0, len(NOTIFICATION_PREFERENCES), len(who))
    turned_on = rng.random(len(who)) < 0.2
    payloads = [
        {"user_id": u, NOTIFICATION_PREFERENCES[int(s)]: bool(on)}
        for u, s, on in zip(user_ids, settings.tolist(), turned_on.tolist(), strict=True)
    ]
    return EventBatch(
        "notification_preferences_updated",
        occurred,
        produced,
        ["settings-service"] * len(who),
        payloads,
    )
