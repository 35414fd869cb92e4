"""What is searchable: one document per post, user, hashtag and location, keyed by the entity.

A document's `key` is its entity's id (the post, user or location id, the lower-cased tag), so
writing the same entity twice replaces it: re-delivered events and re-run builds never duplicate.
Documents come from the marts (the batch build) or from events (the streaming indexer).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from contracts.timestamps import parse_timestamp

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from appconfig import Settings

Kind = Literal["posts", "users", "hashtags", "locations"]
KINDS: tuple[Kind, ...] = ("posts", "users", "hashtags", "locations")


@dataclass(frozen=True)
class PostDoc:
    post_id: int
    author_id: int
    created_ts: int  # epoch seconds
    caption: str = ""
    hashtags: tuple[str, ...] = ()
    location_id: int = 0  # 0 = none
    location_name: str = ""
    media_type: str = ""
    author_username: str = ""
    author_private: bool = False
    engagement: float = 0.0  # standing likes + comments + shares + saves
    deleted: bool = False  # a tombstone: kept so a late or replayed create cannot revive it

    @property
    def key(self) -> str:
        return str(self.post_id)


@dataclass(frozen=True)
class UserDoc:
    user_id: int
    username: str
    bio: str = ""
    is_private: bool = False
    followers: float = 0.0

    @property
    def key(self) -> str:
        return str(self.user_id)


@dataclass(frozen=True)
class HashtagDoc:
    hashtag: str  # lower-cased, without '#'
    posts: float = 0.0

    @property
    def key(self) -> str:
        return self.hashtag


@dataclass(frozen=True)
class LocationDoc:
    location_id: int
    name: str
    posts: float = 0.0

    @property
    def key(self) -> str:
        return str(self.location_id)


Doc = PostDoc | UserDoc | HashtagDoc | LocationDoc
DOC_TYPES: dict[Kind, type[Any]] = {
    "posts": PostDoc,
    "users": UserDoc,
    "hashtags": HashtagDoc,
    "locations": LocationDoc,
}


def kind_of(doc: Doc) -> Kind:
    for kind, cls in DOC_TYPES.items():
        if isinstance(doc, cls):
            return kind
    raise TypeError(f"not a search document: {doc!r}")


def as_fields(doc: Doc) -> dict[str, Any]:
    return asdict(doc)


def from_fields(kind: Kind, fields: Mapping[str, Any]) -> Doc:
    """A document back from its stored fields (tuples where the dataclass has tuples)."""
    cls = DOC_TYPES[kind]
    values = dict(fields)
    if kind == "posts":
        values["hashtags"] = tuple(values.get("hashtags") or ())
    doc: Doc = cls(**values)
    return doc


def with_changes(doc: Doc, **changes: Any) -> Doc:
    return replace(doc, **changes)


def _tags(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list | tuple):
        return ()
    return tuple(dict.fromkeys(str(v).lower().lstrip("#") for v in values if isinstance(v, str)))


def post_from_event(event: Mapping[str, Any]) -> PostDoc | None:
    """A `post_created` event as a document (None if it lacks what a document needs; raw
    ingestion dead-letters such events with their reasons)."""
    post, author = event.get("post_id"), event.get("user_id")
    if not (isinstance(post, int) and isinstance(author, int)):
        return None
    if not (_positive(post) and _positive(author)):
        return None
    try:
        created = int(parse_timestamp(str(event["occurred_at"])).timestamp())
    except (KeyError, TypeError, ValueError):
        return None
    location = event.get("location_id")
    return PostDoc(
        post_id=int(post),
        author_id=int(author),
        created_ts=created,
        caption=str(event.get("caption") or ""),
        hashtags=_tags(event.get("hashtags")),
        location_id=location if isinstance(location, int) and _positive(location) else 0,
        location_name=str(event.get("location_name") or ""),
        media_type=str(event.get("media_type") or ""),
    )


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# --- from the marts --------------------------------------------------------------------------


@dataclass
class MartDocuments:
    posts: list[PostDoc] = field(default_factory=list)
    users: list[UserDoc] = field(default_factory=list)
    hashtags: list[HashtagDoc] = field(default_factory=list)
    locations: list[LocationDoc] = field(default_factory=list)

    def by_kind(self) -> Iterator[tuple[Kind, list[Any]]]:
        yield "posts", self.posts
        yield "users", self.users
        yield "hashtags", self.hashtags
        yield "locations", self.locations


def load_from_marts(client: Client, settings: Settings) -> MartDocuments:
    """Every post (deleted ones as tombstones), user, hashtag and location of the marts.

    Hashtag and location counts (`posts`, also the autocomplete weight) come only from posts
    anyone may see: undeleted, not hidden by moderation, of public accounts; a hashtag or place
    used by no such post has no document (hidden posts are matched and filtered per viewer)."""
    marts = settings.marts_database
    users = client.query(
        f"select user_id, username, ifNull(bio, ''), is_private, ifNull(follower_count, 0)"
        f" from {marts}.dim_users"
    ).result_rows
    user_docs = [UserDoc(int(u), str(n), str(b), bool(p), float(f)) for u, n, b, p, f in users]
    names = {d.user_id: (d.username, d.is_private) for d in user_docs}
    posts = client.query(
        f"""
        select p.post_id, p.author_id, toUnixTimestamp(p.created_at), ifNull(p.caption, ''),
               p.hashtags, ifNull(p.location_id, 0), ifNull(p.location_name, ''),
               toString(p.media_type), p.is_deleted, ifNull(e.engagements, 0)
        from {marts}.dim_posts as p
        left join {marts}.fct_post_engagement as e on p.post_id = e.post_id
        """
    ).result_rows
    post_docs = []
    for pid, author, ts, caption, tags, loc, loc_name, media, deleted, eng in posts:
        username, private = names.get(int(author), ("", False))
        post_docs.append(
            PostDoc(
                int(pid),
                int(author),
                int(ts),
                str(caption),
                _tags(list(tags)),
                int(loc),
                str(loc_name),
                str(media),
                username,
                private,
                float(eng),
                bool(deleted),
            )
        )
    hashtags = client.query(
        f"select hashtag, sum(posts) from {marts}.fct_hashtag_trends group by hashtag"
    ).result_rows
    # as hashtags (fct_hashtag_trends): only public, undeleted posts not hidden by moderation
    locations = client.query(
        f"select p.location_id, any(p.location_name), count() from {marts}.dim_posts as p"
        f" left join {marts}.dim_users as u on p.author_id = u.user_id"
        f" where p.location_id is not null and not p.is_deleted and not p.is_moderation_hidden"
        f" and not ifNull(u.is_private, false) group by p.location_id"
    ).result_rows
    return MartDocuments(
        posts=post_docs,
        users=user_docs,
        hashtags=[HashtagDoc(str(t).lower(), float(n)) for t, n in hashtags],
        locations=[LocationDoc(int(i), str(n or ""), float(c)) for i, n, c in locations],
    )
