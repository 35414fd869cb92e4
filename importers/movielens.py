"""MovieLens 100K as platform events, so the whole pipeline runs on real people's choices.

Source: the RecBole layout of MovieLens 100K (`ml-100k.user`, `ml-100k.item`, `ml-100k.inter`:
tab-separated, typed headers such as `user_id:token`). The mapping, chosen so every count can be
recomputed from the files:

- each MovieLens user -> `user_created` for platform user `USER_ID_OFFSET + user_id`
  (username `ml_user_<id>`, public, country US), one day before their first rating. Age, gender,
  occupation and zip code are not mapped: no contract field holds them.
- each genre that is some movie's first listed genre (MovieLens lists them alphabetically) ->
  one public "channel" account `GENRE_ACCOUNT_ID_OFFSET + n` (n = 1-based rank of the genre in
  alphabetical order over all genres in the item file), created one day before its first post.
  A genre, not a studio, because the data has no studios and genre is what tastes follow.
- each movie -> one photo `post_created` (post `POST_ID_OFFSET + item_id`) by its first genre's
  account, one day before the movie's first rating (in the full file, so a subset import dates
  posts identically); caption "<title> (<year>)", hashtags = its genres as slugs, one nominal
  600x900 poster at `media/originals/<author>/<post>/0.jpg` (no image exists: the media
  pipeline records it as missing).
- each rating -> an `impression` (surface explore, position 0, dwell 10 s) ending at the rating
  time, and, for ratings >= `LIKE_MIN_RATING`, a `like` at the rating time. The impression is
  the exposure and the like the positive label, which is what the ranker's training set needs.
- with `follows`, a user's first like of a genre account's movie -> a `follow` of that account
  one second later.

All ids are 10 digits wide, so Feast's point-in-time join (which concatenates join keys as text)
cannot confuse two (user, post) pairs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.progress import track

from importers.events import EventLog, build_event
from importers.movielens_source import default_directory

SOURCE = "movielens-100k"
PRODUCER = "importer-movielens"
USER_ID_OFFSET = 1_000_000_000
GENRE_ACCOUNT_ID_OFFSET = 1_000_100_000
POST_ID_OFFSET = 2_000_000_000
LIKE_MIN_RATING = 4.0
SIGNUP_LEAD = timedelta(days=1)
IMPRESSION_DWELL = timedelta(seconds=10)
FOLLOW_DELAY = timedelta(seconds=1)
POSTER_WIDTH, POSTER_HEIGHT, POSTER_NOMINAL_BYTES = 600, 900, 120_000

# MOVIELENS_DIR, else the shared datasets folder beside the repository (../shared/datasets).
DEFAULT_DIRECTORY = default_directory()
FILES = {"users": "ml-100k.user", "items": "ml-100k.item", "ratings": "ml-100k.inter"}
COLUMNS = {
    "users": ("user_id",),
    "items": ("item_id", "movie_title", "release_year", "class"),
    "ratings": ("user_id", "item_id", "rating", "timestamp"),
}


class MovieLensFormatError(ValueError):
    """A source file does not have the expected layout; the message names the file and line."""


@dataclass(frozen=True)
class Movie:
    item_id: int
    title: str
    year: str
    genres: tuple[str, ...]


@dataclass(frozen=True)
class Rating:
    line: int
    user_id: int
    item_id: int
    rating: float
    rated_at: datetime


@dataclass
class MovieLens:
    """The three files, parsed; ids as in the source."""

    user_ids: list[int]
    movies: list[Movie]
    ratings: list[Rating]


@dataclass
class MovieLensImport:
    log: EventLog
    genre_accounts: dict[str, int]
    source_counts: dict[str, int]
    imported_users: int
    imported_ratings: int

    def manifest(self) -> dict[str, Any]:
        return {
            "source": SOURCE,
            "received_at": self.log.received_at.isoformat(),
            "source_counts": self.source_counts,
            "imported_users": self.imported_users,
            "imported_ratings": self.imported_ratings,
            "events_by_type": dict(sorted(self.log.counts.items())),
            "genre_accounts": self.genre_accounts,
            "id_offsets": {
                "user": USER_ID_OFFSET,
                "genre_account": GENRE_ACCOUNT_ID_OFFSET,
                "post": POST_ID_OFFSET,
            },
        }


def platform_user_id(movielens_user_id: int) -> int:
    return USER_ID_OFFSET + movielens_user_id


def platform_post_id(movielens_item_id: int) -> int:
    return POST_ID_OFFSET + movielens_item_id


def genre_slug(genre: str) -> str:
    """`Children's` -> `childrens`, `Film-Noir` -> `film_noir`: a usable hashtag and username."""
    return re.sub(r"[^a-z0-9]+", "_", genre.lower().replace("'", "")).strip("_")


# --- reading ---------------------------------------------------------------------------------


def _rows(path: Path, wanted: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: text}) for each data line; columns found by name in the typed
    header, so a reordered file still reads."""
    if not path.is_file():
        raise MovieLensFormatError(f"{path}: file not found")
    with path.open(encoding="utf-8", newline="\n") as handle:
        header = [name.split(":", 1)[0] for name in handle.readline().rstrip("\r\n").split("\t")]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise MovieLensFormatError(f"{path}:1: header lacks {', '.join(missing)}")
        for number, raw in enumerate(handle, start=2):
            line = raw.rstrip("\r\n")
            if not line:
                continue
            values = line.split("\t")
            if len(values) != len(header):
                raise MovieLensFormatError(
                    f"{path}:{number}: {len(values)} fields, the header has {len(header)}"
                )
            yield number, dict(zip(header, values, strict=True))


def _int(path: Path, number: int, name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise MovieLensFormatError(f"{path}:{number}: {name} {text!r} is not an integer") from None
    if value < 1:
        raise MovieLensFormatError(f"{path}:{number}: {name} {value} must be >= 1")
    return value


def read_movielens(directory: Path) -> MovieLens:
    """Parse the three files; any malformed line is an error naming the file and line."""
    paths = {kind: directory / name for kind, name in FILES.items()}
    user_ids = [
        _int(paths["users"], n, "user_id", row["user_id"])
        for n, row in _rows(paths["users"], COLUMNS["users"])
    ]
    movies = [
        Movie(
            _int(paths["items"], n, "item_id", row["item_id"]),
            row["movie_title"].strip(),
            row["release_year"].strip(),
            tuple(row["class"].split()),
        )
        for n, row in _rows(paths["items"], COLUMNS["items"])
    ]
    ratings = []
    for n, row in _rows(paths["ratings"], COLUMNS["ratings"]):
        try:
            rating, seconds = float(row["rating"]), float(row["timestamp"])
        except ValueError:
            raise MovieLensFormatError(
                f"{paths['ratings']}:{n}: rating or timestamp is not a number"
            ) from None
        ratings.append(
            Rating(
                n,
                _int(paths["ratings"], n, "user_id", row["user_id"]),
                _int(paths["ratings"], n, "item_id", row["item_id"]),
                rating,
                datetime.fromtimestamp(seconds, UTC),
            )
        )
    _check_references(paths, user_ids, movies, ratings)
    return MovieLens(user_ids, movies, ratings)


def _check_references(
    paths: dict[str, Path], user_ids: list[int], movies: list[Movie], ratings: list[Rating]
) -> None:
    for kind, ids in (("user_id", user_ids), ("item_id", [m.item_id for m in movies])):
        if len(set(ids)) != len(ids):
            path = paths["users" if kind == "user_id" else "items"]
            raise MovieLensFormatError(f"{path}: repeated {kind}")
    known_users, known_items = set(user_ids), {m.item_id for m in movies}
    for r in ratings:
        if r.user_id not in known_users:
            raise MovieLensFormatError(f"{paths['ratings']}:{r.line}: unknown user {r.user_id}")
        if r.item_id not in known_items:
            raise MovieLensFormatError(f"{paths['ratings']}:{r.line}: unknown item {r.item_id}")
    for movie in movies:
        if not movie.genres:
            raise MovieLensFormatError(f"{paths['items']}: item {movie.item_id} has no genre")


# --- mapping ---------------------------------------------------------------------------------


def genre_accounts(movies: Iterable[Movie]) -> dict[str, int]:
    """Platform account id of each genre that is some movie's first genre."""
    movies = list(movies)
    ranked = sorted({g for m in movies for g in m.genres})
    firsts = {m.genres[0] for m in movies}
    return {g: GENRE_ACCOUNT_ID_OFFSET + n for n, g in enumerate(ranked, start=1) if g in firsts}


def to_events(
    data: MovieLens,
    *,
    received_at: datetime,
    max_users: int | None = None,
    follows: bool = True,
    progress: bool = False,
) -> MovieLensImport:
    """Every event of the mapping above; `max_users` keeps only the users with the smallest ids
    (and their ratings) for quick runs; movies and genre accounts are always all imported."""
    if max_users is not None and max_users < 1:
        raise ValueError("max_users must be >= 1")
    log = EventLog(received_at)
    accounts = genre_accounts(data.movies)
    first_rated: dict[int, datetime] = {}
    for r in data.ratings:
        if r.item_id not in first_rated or r.rated_at < first_rated[r.item_id]:
            first_rated[r.item_id] = r.rated_at
    earliest = min(first_rated.values(), default=log.received_at)
    post_at = {m.item_id: first_rated.get(m.item_id, earliest) - SIGNUP_LEAD for m in data.movies}

    kept_users = sorted(data.user_ids)[:max_users] if max_users else sorted(data.user_ids)
    kept = set(kept_users)
    ratings = [r for r in data.ratings if r.user_id in kept]
    first_activity: dict[int, datetime] = {}
    for r in ratings:
        at = r.rated_at - IMPRESSION_DWELL
        if r.user_id not in first_activity or at < first_activity[r.user_id]:
            first_activity[r.user_id] = at

    def add(event_type: str, key: object, at: datetime, payload: dict[str, Any]) -> None:
        log.append(
            build_event(
                source=SOURCE,
                producer=PRODUCER,
                event_type=event_type,
                key=key,
                occurred_at=at,
                payload=payload,
            )
        )

    author_of = {m.item_id: accounts[m.genres[0]] for m in data.movies}
    for genre, account in accounts.items():
        first_post = min(post_at[m.item_id] for m in data.movies if m.genres[0] == genre)
        username = f"ml_genre_{genre_slug(genre)}"
        add("user_created", account, first_post - SIGNUP_LEAD, _profile(account, username))
    for user_id in kept_users:
        at = first_activity.get(user_id, earliest) - SIGNUP_LEAD
        add("user_created", user_id, at, _profile(platform_user_id(user_id), f"ml_user_{user_id}"))
    for movie in data.movies:
        author = author_of[movie.item_id]
        add("post_created", movie.item_id, post_at[movie.item_id], _post(movie, author))

    followed: set[tuple[int, int]] = set()
    rows = track(ratings, description="ratings -> events") if progress else ratings
    for r in rows:
        user, post = platform_user_id(r.user_id), platform_post_id(r.item_id)
        key = f"{r.user_id}:{r.item_id}:{r.line}"
        add(
            "impression",
            key,
            r.rated_at - IMPRESSION_DWELL,
            {
                "user_id": user,
                "post_id": post,
                "surface": "explore",
                "position": 0,
                "dwell_ms": int(IMPRESSION_DWELL.total_seconds() * 1000),
            },
        )
        if r.rating < LIKE_MIN_RATING:
            continue
        add("like", key, r.rated_at, {"user_id": user, "post_id": post})
        author = author_of[r.item_id]
        if follows and (user, author) not in followed:
            followed.add((user, author))
            add(
                "follow",
                f"{r.user_id}:{author}",
                r.rated_at + FOLLOW_DELAY,
                {"user_id": user, "target_user_id": author},
            )
    return MovieLensImport(
        log=log,
        genre_accounts=accounts,
        source_counts={
            "users": len(data.user_ids),
            "items": len(data.movies),
            "ratings": len(data.ratings),
        },
        imported_users=len(kept_users),
        imported_ratings=len(ratings),
    )


def _profile(user_id: int, username: str) -> dict[str, Any]:
    return {"user_id": user_id, "username": username, "is_private": False, "country": "US"}


def _post(movie: Movie, author: int) -> dict[str, Any]:
    post_id = platform_post_id(movie.item_id)
    return {
        "user_id": author,
        "post_id": post_id,
        "media_type": "photo",
        "media": [
            {
                "object_key": f"media/originals/{author}/{post_id}/0.jpg",
                "mime_type": "image/jpeg",
                "width": POSTER_WIDTH,
                "height": POSTER_HEIGHT,
                "size_bytes": POSTER_NOMINAL_BYTES,
            }
        ],
        "caption": f"{movie.title} ({movie.year})" if movie.year else movie.title,
        "hashtags": list(dict.fromkeys(genre_slug(g) for g in movie.genres)),
    }


def import_movielens(
    directory: Path,
    *,
    received_at: datetime,
    max_users: int | None = None,
    follows: bool = True,
    progress: bool = False,
) -> MovieLensImport:
    """Read the files in `directory` and map them to events (see the module docstring)."""
    return to_events(
        read_movielens(directory),
        received_at=received_at,
        max_users=max_users,
        follows=follows,
        progress=progress,
    )
