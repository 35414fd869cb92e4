"""`SearchEngine` on tantivy (a Lucene-class engine in Rust): one on-disk index per kind under
`<data dir>/search/<kind>`.

Writes open a short-lived writer per call (a few MB of heap, one thread) and commit before
returning, so the streaming indexer, the batch build and another process can take turns on the
writer lock; `LockBusy` is retried for a while, then surfaces as `EngineUnavailable`. Readers in
other processes (the API) see commits after `refresh()`, which the service throttles.

An upsert deletes the key's term and adds the document in the same commit (tantivy applies the
delete first), so writing an entity again replaces it: exactly-once in effect.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy

from search.documents import (
    KINDS,
    Doc,
    Kind,
    PostDoc,
    UserDoc,
    as_fields,
    from_fields,
    kind_of,
)
from search.engine import EngineUnavailable, Filters, Match
from search.query import ParsedQuery

WRITER_HEAP = 32_000_000
LOCK_RETRY_SECONDS = 30.0
WAIT_FOR_MERGES_FROM = 1_000  # documents; smaller (streaming) commits do not wait for merges
FUZZY_MIN_CHARS = 4  # shorter words match too much with one typo
FUZZY_WEIGHT = 0.3  # a typo match scores below any exact BM25 match of the same field
PREFIX_MIN_CHARS = 2  # a one-letter prefix matches nearly everything
PREFIX_WEIGHT = 0.5  # users and hashtags: a word that starts a name (autocomplete-like)


@dataclass(frozen=True)
class KindSpec:
    ints: tuple[str, ...]  # i64, indexed, fast, stored
    floats: tuple[str, ...]  # f64, fast, stored
    texts: dict[str, float]  # default tokenizer, stored: field -> boost
    raws: tuple[str, ...] = ()  # raw tokenizer, stored
    lists: tuple[str, ...] = ()  # text fields holding a tuple, one value per entry
    bools: tuple[str, ...] = ()  # stored as i64 0/1, indexed
    prefix: bool = False


SPECS: dict[Kind, KindSpec] = {
    "posts": KindSpec(
        ints=("post_id", "author_id", "created_ts", "location_id"),
        floats=("engagement",),
        texts={"caption": 1.0, "hashtags": 1.5, "location_name": 0.5, "author_username": 0.5},
        raws=("media_type",),
        lists=("hashtags",),
        bools=("author_private", "deleted"),
    ),
    "users": KindSpec(
        ints=("user_id",),
        floats=("followers",),
        texts={"username": 2.0, "bio": 0.5},
        bools=("is_private",),
        prefix=True,
    ),
    "hashtags": KindSpec(ints=(), floats=("posts",), texts={"hashtag": 1.0}, prefix=True),
    "locations": KindSpec(
        ints=("location_id",), floats=("posts",), texts={"name": 1.0}, prefix=True
    ),
}


THIN: dict[Kind, tuple[str, ...]] = {
    "posts": (
        "post_id", "author_id", "created_ts", "location_id", "engagement", "author_private",
        "deleted",
    ),
    "users": ("user_id", "followers", "is_private"),
}  # fmt: skip


def _schema(spec: KindSpec) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("key", stored=True, tokenizer_name="raw")
    for name in spec.ints + spec.bools:
        builder.add_integer_field(name, stored=True, indexed=True, fast=True)
    for name in spec.floats:
        builder.add_float_field(name, stored=True, fast=True)
    for name in spec.texts:
        builder.add_text_field(name, stored=True)
    for name in spec.raws:
        builder.add_text_field(name, stored=True, tokenizer_name="raw")
    return builder.build()


class _KindIndex:
    def __init__(self, kind: Kind, path: Path) -> None:
        self.kind = kind
        self.spec = SPECS[kind]
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.schema = _schema(self.spec)
        try:
            self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        except (OSError, ValueError) as exc:
            raise EngineUnavailable(f"search index {path} cannot be opened: {exc}") from exc

    # --- documents <-> tantivy ---------------------------------------------------------------

    def to_tantivy(self, doc: Doc) -> tantivy.Document:
        fields = as_fields(doc)
        out = tantivy.Document()
        out.add_text("key", doc.key)
        spec = self.spec
        for name in spec.ints:
            out.add_integer(name, int(fields[name]))
        for name in spec.bools:
            out.add_integer(name, int(bool(fields[name])))
        for name in spec.floats:
            out.add_float(name, float(fields[name]))
        for name in spec.texts:
            values = fields[name] if name in spec.lists else (fields[name],)
            for value in values:
                out.add_text(name, str(value))
        for name in spec.raws:
            out.add_text(name, str(fields[name]))
        return out

    def from_tantivy(self, stored: dict[str, list[Any]]) -> Doc:
        spec = self.spec
        fields: dict[str, Any] = {}
        for name in spec.ints:
            fields[name] = int(stored.get(name, [0])[0])
        for name in spec.bools:
            fields[name] = bool(stored.get(name, [0])[0])
        for name in spec.floats:
            fields[name] = float(stored.get(name, [0.0])[0])
        for name in spec.texts:
            values = stored.get(name, [])
            fields[name] = tuple(values) if name in spec.lists else (values[0] if values else "")
        for name in spec.raws:
            values = stored.get(name, [])
            fields[name] = values[0] if values else ""
        return from_fields(self.kind, fields)

    # --- queries -------------------------------------------------------------------------------

    def text_query(self, query: ParsedQuery, fuzzy: bool) -> tantivy.Query:
        """Per word, the best field of: BM25 x the field's boost, plus a constant for a match
        within one typo (which an exact match also is, so exact always beats a typo), plus a
        constant for a prefix (users, hashtags, locations). Words add up."""
        should = tantivy.Occur.Should
        words = []
        for term in query.terms:
            per_field = []
            for field, boost in self.spec.texts.items():
                weight = boost * (2.0 if term in query.hashtags and field == "hashtags" else 1.0)
                weight *= 2.0 if term in query.mentions and field == "username" else 1.0
                options = [
                    tantivy.Query.boost_query(
                        tantivy.Query.term_query(self.schema, field, term), weight
                    )
                ]
                if fuzzy and len(term) >= FUZZY_MIN_CHARS:
                    options.append(
                        tantivy.Query.boost_query(
                            tantivy.Query.fuzzy_term_query(self.schema, field, term, 1, True),
                            FUZZY_WEIGHT * weight,
                        )
                    )
                if self.spec.prefix and len(term) >= PREFIX_MIN_CHARS:
                    options.append(
                        tantivy.Query.boost_query(
                            tantivy.Query.fuzzy_term_query(self.schema, field, term, 0, True, True),
                            PREFIX_WEIGHT * weight,
                        )
                    )
                per_field.append(tantivy.Query.boolean_query([(should, o) for o in options]))
            words.append(tantivy.Query.disjunction_max_query(per_field))
        return tantivy.Query.boolean_query([(should, w) for w in words])

    def filter_clauses(self, filters: Filters) -> list[tuple[Any, tantivy.Query]]:
        if self.kind != "posts":
            return []
        must = tantivy.Occur.Must
        clauses: list[tuple[Any, tantivy.Query]] = [
            (tantivy.Occur.MustNot, tantivy.Query.term_query(self.schema, "deleted", 1))
        ]
        if filters.since_ts is not None or filters.until_ts is not None:
            clauses.append(
                (
                    must,
                    tantivy.Query.range_query(
                        self.schema,
                        "created_ts",
                        tantivy.FieldType.Integer,
                        filters.since_ts,
                        filters.until_ts,
                    ),
                )
            )
        if filters.author_id is not None:
            clauses.append(
                (must, tantivy.Query.term_query(self.schema, "author_id", filters.author_id))
            )
        if filters.location_id is not None:
            clauses.append(
                (must, tantivy.Query.term_query(self.schema, "location_id", filters.location_id))
            )
        return clauses


class TantivyEngine:
    """Four tantivy indexes (posts, users, hashtags, locations) under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._kinds = {kind: _KindIndex(kind, self.root / kind) for kind in KINDS}
        self._write_lock = threading.Lock()

    @classmethod
    def at_data_dir(cls, data_dir: Path) -> TantivyEngine:
        return cls(Path(data_dir) / "search")

    @staticmethod
    def exists(root: Path) -> bool:
        return all((Path(root) / kind / "meta.json").exists() for kind in KINDS)

    @staticmethod
    def remove(root: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)

    # --- writes --------------------------------------------------------------------------------

    def _writer(self, index: _KindIndex) -> Any:
        deadline = time.monotonic() + LOCK_RETRY_SECONDS
        while True:
            try:
                return index.index.writer(WRITER_HEAP, 1)
            except ValueError as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise EngineUnavailable(f"search index {index.path}: {exc}") from exc
                time.sleep(0.05)

    def upsert(self, docs: Iterable[Doc]) -> int:
        grouped: dict[Kind, dict[str, Doc]] = {}
        for doc in docs:
            grouped.setdefault(kind_of(doc), {})[doc.key] = doc  # the last write of a key wins
        written = 0
        with self._write_lock:
            for kind, by_key in grouped.items():
                index = self._kinds[kind]
                writer = self._writer(index)
                try:
                    for key, doc in by_key.items():
                        writer.delete_documents_by_term("key", key)
                        writer.add_document(index.to_tantivy(doc))
                    writer.commit()
                    if len(by_key) >= WAIT_FOR_MERGES_FROM:
                        writer.wait_merging_threads()  # a bulk build: leave merged segments
                except BaseException:
                    writer.rollback()
                    raise
                del writer  # releases the lock for the next writer (another process, too)
                written += len(by_key)
                index.index.reload()
        return written

    def clear(self) -> None:
        """Drop every document (a full rebuild); readers keep their view until refreshed."""
        with self._write_lock:
            for index in self._kinds.values():
                writer = self._writer(index)
                writer.delete_all_documents()
                writer.commit()
                writer.wait_merging_threads()
        self.refresh()

    # --- reads ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        for index in self._kinds.values():
            index.index.reload()

    def _docs(self, index: _KindIndex, query: tantivy.Query, limit: int) -> list[tuple[float, Doc]]:
        searcher = index.index.searcher()
        hits = searcher.search(query, limit, count=False).hits
        return [(float(s), index.from_tantivy(searcher.doc(a).to_dict())) for s, a in hits]

    def get(self, kind: Kind, keys: Iterable[str]) -> dict[str, Doc]:
        index = self._kinds[kind]
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        query = tantivy.Query.term_set_query(index.schema, "key", wanted)
        return {doc.key: doc for _, doc in self._docs(index, query, len(wanted))}

    def match(
        self, kind: Kind, query: ParsedQuery, filters: Filters, limit: int, *, fuzzy: bool = True
    ) -> list[Match]:
        """Posts and users come back thin (ids, flags and numbers from the fast fields, no
        text): enough to filter and rank hundreds of candidates without reading stored
        documents; `hydrate` fills in the page. Hashtags and locations come back whole."""
        index = self._kinds[kind]
        text = index.text_query(query, fuzzy)
        clauses = index.filter_clauses(filters)
        full = (
            tantivy.Query.boolean_query([(tantivy.Occur.Must, text), *clauses]) if clauses else text
        )
        try:
            if kind not in THIN:
                return [Match(doc, score) for score, doc in self._docs(index, full, limit)]
            searcher = index.index.searcher()
            hits = searcher.search(full, limit, count=False).hits
            addresses = [a for _, a in hits]
            columns = {f: searcher.fast_field_values(f, addresses) for f in THIN[kind]}
        except ValueError as exc:  # never pass an engine error through as a 500
            raise EngineUnavailable(f"search failed: {exc}") from exc
        out = []
        for i, (score, _) in enumerate(hits):
            values = {f: columns[f][i] for f in THIN[kind]}
            doc: Doc
            if kind == "posts":
                doc = PostDoc(
                    post_id=int(values["post_id"] or 0),
                    author_id=int(values["author_id"] or 0),
                    created_ts=int(values["created_ts"] or 0),
                    location_id=int(values["location_id"] or 0),
                    engagement=float(values["engagement"] or 0.0),
                    author_private=bool(values["author_private"]),
                    deleted=bool(values["deleted"]),
                )
            else:
                doc = UserDoc(
                    user_id=int(values["user_id"] or 0),
                    username="",
                    followers=float(values["followers"] or 0.0),
                    is_private=bool(values["is_private"]),
                )
            out.append(Match(doc, float(score)))
        return out

    def hydrate(self, kind: Kind, matches: list[Match]) -> list[Match]:
        """The same matches with their whole stored documents (one lookup for the page)."""
        if kind not in THIN or not matches:
            return matches
        stored = self.get(kind, [m.doc.key for m in matches])
        return [Match(stored.get(m.doc.key, m.doc), m.text_score) for m in matches]

    def posts_of(self, author_id: int) -> list[PostDoc]:
        index = self._kinds["posts"]
        searcher = index.index.searcher()
        query = tantivy.Query.term_query(index.schema, "author_id", author_id)
        docs = [d for _, d in self._docs(index, query, max(searcher.num_docs, 1))]
        return [d for d in docs if isinstance(d, PostDoc)]

    def flagged(self, kind: Kind, flag: str, id_field: str) -> set[int]:
        index = self._kinds[kind]
        searcher = index.index.searcher()
        query = tantivy.Query.term_query(index.schema, flag, 1)
        hits = searcher.search(query, max(searcher.num_docs, 1), count=False).hits
        values = searcher.fast_field_values(id_field, [a for _, a in hits])
        return {int(v) for v in values if isinstance(v, int)}

    def deleted_posts(self) -> set[int]:
        return self.flagged("posts", "deleted", "post_id")

    def private_users(self) -> set[int]:
        return self.flagged("users", "is_private", "user_id")

    def count(self, kind: Kind) -> int:
        return int(self._kinds[kind].index.searcher().num_docs)

    def size_bytes(self) -> int:
        return sum(
            os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(self.root) for f in files
        )
