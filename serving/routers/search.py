"""`GET /v1/search` (posts, users, hashtags, locations) and `GET /v1/search/autocomplete`.

Search reads the index the batch build (Dagster `search/indexes`) and the streaming indexer
(`python -m search.indexer`) write: tantivy under the data dir, or OpenSearch when
`OPENSEARCH_URL` is set (`search.engines` picks); the viewer's privacy comes from
the snapshot's `VisibilityGraph` plus what the index knows (see `search.privacy`). Bad text is a
422 with why (empty, too long, nothing but punctuation); engine trouble is a 503, never a 500.
Autocomplete reads Redis sorted sets when `REDIS_URL` is set (written by the same build and
indexer), else the snapshot's in-memory prefix index.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from search.autocomplete import RedisAutocomplete
from search.documents import HashtagDoc, LocationDoc, PostDoc, UserDoc
from search.engine import EngineUnavailable, Filters
from search.engines import engine_exists, open_engine
from search.query import MAX_QUERY_CHARS, QueryError
from search.ranking import Ranked
from search.service import SearchService
from serving.cursor import Cursor, CursorCodec, InvalidCursor
from serving.dependencies import (
    MAX_ID,
    Config,
    Snapshot,
    State,
    check_limit,
    known_viewer,
    require,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["search"], dependencies=[require("discovery")])
_open_lock = threading.Lock()


class SearchItem(BaseModel):
    kind: Literal["post", "user", "hashtag", "location"]
    id: int | None
    text: str  # caption, username, #tag or place name
    score: float
    text_score: float
    author_id: int | None = None
    author_username: str | None = None
    hashtags: list[str] | None = None
    location_id: int | None = None
    location_name: str | None = None
    created_at: datetime | None = None
    engagement: float | None = None  # engagements of a post, followers, posts with a tag/place


class SearchResponse(BaseModel):
    q: str
    type: str
    terms: list[str]
    items: list[SearchItem]
    next_cursor: str | None


class Completion(BaseModel):
    kind: str
    text: str
    id: int | None


class AutocompleteResponse(BaseModel):
    q: str
    items: list[Completion]


# --- shared per-app objects ---------------------------------------------------------------------


def _app_object(request: Request, name: str, make: Any) -> Any:
    value = getattr(request.app.state, name, None)
    if value is None:
        with _open_lock:
            value = getattr(request.app.state, name, None)
            if value is None:
                value = make()
                setattr(request.app.state, name, value)
    return value


def search_service(request: Request, state: Any) -> SearchService:
    settings = state.settings

    def make() -> SearchService:
        if not engine_exists(settings):
            raise HTTPException(
                503,
                "the search index is not built yet: materialize the Dagster asset "
                "search/indexes (or run python -m search.build)",
            )
        return SearchService(open_engine(settings))

    try:
        service: SearchService = _app_object(request, "search_service", make)
    except EngineUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    return service


def cursor_codec(request: Request) -> CursorCodec:
    codec: CursorCodec = _app_object(
        request, "search_cursors", lambda: CursorCodec(secrets.token_bytes(32))
    )
    return codec


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _ts(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def _item(ranked: Ranked) -> SearchItem:
    doc, score, text_score = ranked.match.doc, round(ranked.score, 6), ranked.match.text_score
    if isinstance(doc, PostDoc):
        return SearchItem(
            kind="post",
            id=doc.post_id,
            text=doc.caption,
            score=score,
            text_score=text_score,
            author_id=doc.author_id,
            author_username=doc.author_username or None,
            hashtags=list(doc.hashtags),
            location_id=doc.location_id or None,
            location_name=doc.location_name or None,
            created_at=datetime.fromtimestamp(doc.created_ts, UTC),
            engagement=doc.engagement,
        )
    if isinstance(doc, UserDoc):
        return SearchItem(
            kind="user",
            id=doc.user_id,
            text=doc.username,
            score=score,
            text_score=text_score,
            engagement=doc.followers,
        )
    if isinstance(doc, HashtagDoc):
        return SearchItem(
            kind="hashtag",
            id=None,
            text=f"#{doc.hashtag}",
            score=score,
            text_score=text_score,
            engagement=doc.posts,
        )
    assert isinstance(doc, LocationDoc)
    return SearchItem(
        kind="location",
        id=doc.location_id,
        text=doc.name,
        score=score,
        text_score=text_score,
        location_id=doc.location_id,
        location_name=doc.name,
        engagement=doc.posts,
    )


# --- endpoints ----------------------------------------------------------------------------------


@router.get("/search/autocomplete", response_model=AutocompleteResponse)
def autocomplete(
    request: Request,
    state: State,
    snapshot: Snapshot,
    config: Config,
    q: Annotated[str, Query(min_length=1, max_length=64, description="a prefix; # or @ narrow")],
    viewer_id: Annotated[
        int,
        Query(ge=1, le=MAX_ID, description="who is typing: accounts blocked either way are hidden"),
    ],
    limit: Annotated[int | None, Query()] = None,
) -> AutocompleteResponse:
    """Usernames and hashtags starting with `q`, heaviest first; never an account that blocked
    the viewer or that the viewer blocked."""
    k = check_limit(limit, 10, config.max_list_limit)
    known_viewer(state, snapshot, viewer_id)
    kinds = frozenset({"hashtag"}) if q.startswith("#") else None
    kinds = frozenset({"user"}) if q.startswith("@") else kinds
    graph = snapshot.visibility
    fetch = k * 4 + 20

    def allowed(kind: str, ident: int | None) -> bool:
        return (
            kind != "user"
            or ident is None
            or ident == viewer_id
            or not graph.is_blocked_either_way(viewer_id, ident)
        )

    redis_url = state.settings.redis_url
    found: list[tuple[str, str, int | None]]
    if redis_url:
        redis_ac: RedisAutocomplete = _app_object(
            request,
            "search_autocomplete",
            lambda: RedisAutocomplete.from_url(redis_url),
        )
        try:
            rows = redis_ac.search(q, k, kinds, fetch=fetch)
        except Exception as exc:  # Redis down: the in-memory index still answers
            log.warning("autocomplete on Redis failed, answering from memory: %s", exc)
            rows = None
        if rows is not None:
            found = [(c.kind, c.text, c.id) for c in rows]
        else:
            found = [(s.kind, s.text, s.id) for s in snapshot.search.search(q, fetch, kinds)]
    else:
        found = [(s.kind, s.text, s.id) for s in snapshot.search.search(q, fetch, kinds)]
    items = [Completion(kind=kd, text=t, id=i) for kd, t, i in found if allowed(kd, i)][:k]
    return AutocompleteResponse(q=q, items=items)


@router.get("/search", response_model=SearchResponse)
def search(
    request: Request,
    state: State,
    snapshot: Snapshot,
    config: Config,
    q: Annotated[
        str,
        Query(
            max_length=MAX_QUERY_CHARS,
            description="words to look for; punctuation and query syntax are matched literally"
            " (as word separators); #tag weighs hashtags, @name usernames; one typo per word"
            " (4+ letters) is forgiven",
        ),
    ],
    type: Annotated[Literal["posts", "users", "hashtags", "locations"], Query()] = "posts",
    viewer_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="who is searching (privacy)")
    ] = None,
    since: Annotated[datetime | None, Query(description="posts created at or after")] = None,
    until: Annotated[datetime | None, Query(description="posts created at or before")] = None,
    author_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    location_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> SearchResponse:
    k = check_limit(limit, 20, config.max_list_limit)
    filters = Filters(_ts(since), _ts(until), author_id, location_id)
    since_ts, until_ts = filters.since_ts, filters.until_ts
    if since_ts is not None and until_ts is not None and since_ts > until_ts:
        raise HTTPException(422, "since must not be after until")
    codec = cursor_codec(request)
    fingerprint = _fingerprint(q, type, filters)
    owner = viewer_id or 0
    if cursor is None:
        now_ts = int(snapshot.clock.now().timestamp())
        offset = 0
    else:
        try:
            decoded = codec.decode(cursor, owner)
            stamp, _, mark = decoded.snapshot_id.partition(":")
            now_ts, offset = int(stamp), decoded.offset
        except (InvalidCursor, ValueError) as exc:
            raise HTTPException(422, f"invalid cursor: {exc}") from exc
        if mark != fingerprint:
            raise HTTPException(422, "invalid cursor: it belongs to another query")
    service = search_service(request, state)
    try:
        page = service.search(
            type,
            q,
            graph=snapshot.visibility,
            viewer=viewer_id,
            now_ts=now_ts,
            filters=filters,
            offset=offset,
            limit=k,
        )
    except QueryError as exc:
        raise HTTPException(422, str(exc)) from exc
    except EngineUnavailable as exc:
        raise HTTPException(503, f"search is unavailable: {exc}") from exc
    next_cursor = None
    if page.next_offset is not None:
        next_cursor = codec.encode(Cursor(f"{now_ts}:{fingerprint}", owner, page.next_offset))
    return SearchResponse(
        q=q,
        type=type,
        terms=list(page.query.terms),
        items=[_item(r) for r in page.items],
        next_cursor=next_cursor,
    )
