"""`POST /v1/rank`: rank posts the caller chose, for one user, with the champion ranker (or the
viewer's experiment arm's; both arms merged by team draft in an interleaving experiment).

Posts the user may not see (blocked, muted, blocking, private, deleted) are never ranked: they
come back under `excluded`, as do unknown ids and duplicates.
"""

import logging
import uuid
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from ml.ranking.columns import Table, take_rows
from serving.dependencies import Snapshot, State, known_viewer, require
from serving.home_feed import RECENCY
from serving.schemas import RankRequest, RankResponse, iso_texts
from serving.scoring import score
from serving.snapshot import ServingSnapshot
from serving.stages import stage
from serving.state import ServingState

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["rank"], dependencies=[require("rank")])


def rank_posts(state: ServingState, snapshot: ServingSnapshot, body: RankRequest) -> dict[str, Any]:
    """The ranked answer as `RankResponse`'s fields (plain data, for `rank_body`)."""
    posts = snapshot.posts
    user = body.user_id
    # each id's fate in array steps (in request order): duplicate of an earlier id, deleted,
    # unknown or too old, else its row
    ids = np.asarray(body.post_ids, dtype=np.int64)
    first = np.zeros(len(ids), dtype=bool)
    first[np.unique(ids, return_index=True)[1]] = True
    if posts.deleted.isdisjoint(body.post_ids):  # one C loop; the usual case
        deleted = np.zeros(len(ids), dtype=bool)
    else:
        deleted = np.fromiter(map(posts.deleted.__contains__, body.post_ids), bool, len(ids))
    found = posts.rows_or_missing(ids)
    keep = first & ~deleted & (found >= 0)
    # `Excluded`'s fields as plain dicts (what `model_dump` gave, without a model per id)
    excluded = [
        {
            "post_id": post_id,
            "reason": "duplicate"
            if not first[i]
            else "deleted"
            if deleted[i]
            else "unknown or too old to serve",
        }
        for i, post_id in zip(np.flatnonzero(~keep).tolist(), ids[~keep].tolist(), strict=True)
    ]
    chosen = found[keep]
    post_ids, authors = posts.post_ids[chosen], posts.author_ids[chosen]
    visible = snapshot.visibility.visible_posts_mask(user, post_ids, authors)
    excluded += [
        {"post_id": p, "reason": "not visible to this user"} for p in post_ids[~visible].tolist()
    ]
    post_ids, authors, created = (
        post_ids[visible],
        authors[visible],
        posts.created_ts[chosen][visible],
    )

    assert state.home_feed is not None
    now = snapshot.clock.now()
    assert state.experiments is not None  # the viewer's arm ranks, as on the home feed
    routed = state.experiments.route("home_feed", user)
    scorer, reason = routed.models.scorer, None
    frame: Table | None = None
    if len(post_ids) and state.features is not None:
        try:
            with stage("rank", "features"):
                frame = state.features.ranking_columns(user, post_ids, authors, now, "home_feed")
            scores = score(scorer, frame, "rank")
        except Exception as exc:
            frame, reason = None, f"ranking unavailable ({type(exc).__name__}): recency-ranked"
    elif state.features is None:
        reason = "online features unavailable: recency-ranked"
    if frame is None:
        scorer = RECENCY
        import pandas as pd

        frame = pd.DataFrame({RECENCY.feature_names[0]: (now.timestamp() - created) / 3600.0})
        scores = scorer.predict(frame)
    order = np.argsort(-scores, kind="stable")
    experiment, arms, version = routed.experiment, None, scorer.version
    if routed.partner is not None:  # interleaving: both arms rank, team draft merges
        experiment = None  # unless both ranked
        scores_b = None
        if reason is None and len(order):
            try:
                scores_b = np.asarray(score(routed.partner.scorer, frame, "rank"))
            except Exception as exc:  # the second ranker failed: the first one's order
                log.warning("interleaving for %s: second ranker failed: %s", user, exc)
        if scores_b is not None:
            order_b = np.argsort(-scores_b, kind="stable")
            order, arms = routed.interleave(order, order_b, len(order), user, uuid.uuid4().hex)
            mine = arms == (routed.arms or ("",))[0]
            scores = np.array(scores, dtype=np.float64)  # each item's score by its arm
            scores[order[~mine]] = scores_b[order[~mine]]
            experiment, version = routed.experiment, routed.version
    contributions = None
    if body.explain and len(order):
        table = scorer.explain(take_rows(frame, order))
        contributions = [
            {k: round(float(v), 6) for k, v in row.items() if v == v and abs(v) > 1e-9}
            for row in table.to_dict(orient="records")
        ]
    # plain Python values column by column (one `tolist` each), not numpy scalars per item
    arm_of = arms.tolist() if arms is not None else [routed.arm] * len(order)
    explained: list[Any] = [None] * len(order)
    if contributions is not None:
        explained = contributions
    items = [
        {
            "post_id": post_id,
            "author_id": author_id,
            "rank": i,
            "score": item_score,
            "created_at": created_at,
            "source": "request",
            "contributions": explained[i],
            "arm": arm,
            "explored": False,  # /v1/rank orders the given posts: no exploration slice
        }
        for i, (post_id, author_id, item_score, created_at, arm) in enumerate(
            zip(
                post_ids[order].tolist(),
                authors[order].tolist(),
                np.asarray(scores, dtype=np.float64)[order].tolist(),
                iso_texts(created[order].tolist()),
                arm_of,
                strict=True,
            )
        )
    ]
    return {
        "user_id": user,
        "model_version": version,
        "degraded": reason is not None,
        "reason": reason,
        "experiment": experiment,
        "arm": routed.arm,
        "items": items,
        "excluded": excluded,
    }


def rank_body(response: dict[str, Any]) -> bytes:
    """The `RankResponse` JSON of `rank_posts`'s dict: orjson, with UTC times ending in `Z` as
    pydantic writes them. Building 1,000 `RankedPost` models and dumping them cost more than
    scoring the candidates."""
    return orjson.dumps(response, option=orjson.OPT_UTC_Z)


@router.post("/rank", response_model=RankResponse)
async def rank(body: RankRequest, state: State, snapshot: Snapshot) -> Response:
    known_viewer(state, snapshot, body.user_id)
    ranked = await run_in_threadpool(rank_posts, state, snapshot, body)
    # not through FastAPI's response_model path, which re-validates the model and walks 1,000
    # items through jsonable_encoder (tens of ms); the schema still documents the body
    with stage("rank", "serialization"):
        body_bytes = rank_body(ranked)
    return Response(body_bytes, media_type="application/json")
