"""`SearchEngine` on OpenSearch (the services profile): one index per kind, `<prefix>-<kind>`,
spoken to over plain HTTP (httpx), the same fields and the same scoring as `TantivyEngine`.

Why it matches tantivy: text fields use an analyzer that cuts words like tantivy's `default`
tokenizer (runs of letters and digits, lower-cased, longer than 40 characters dropped), so the
words `search.query` makes are exactly the indexed terms and are looked up with `term` queries;
per word the best field wins (`dis_max`), BM25 times the same boosts as `tantivy_engine.SPECS`,
plus a constant for a one-typo match (`FUZZY_WEIGHT` of the field's weight) and, for users,
hashtags and locations, a constant for a prefix. Both engines score with BM25 (k1 1.2, b 0.75),
so the service above ranks and filters the same way on either.

Writes are `_bulk` index actions keyed by `_id` = the document key (so writing an entity again
replaces it: exactly-once in effect), durable on return (the translog is fsynced per request,
OpenSearch's default) and visible on return (the touched indexes are refreshed before
`upsert` returns). Connection errors, timeouts, 5xx and unexpected answers are
`EngineUnavailable` (the API answers 503).

Reads are one HTTP round trip per search: the candidates come back with their whole `_source`
(`hydrate` has nothing left to do), over the engine's one `httpx.Client`, whose pooled
keep-alive connection the API reuses (it keeps one engine for the app's life). Typo matching
stays as tantivy's (any letter, all terms within one edit): `prefix_length` 1 or
`max_expansions` 10 changed the node's time by under 0.1 ms on the benchmark corpus (fuzzy
clauses cost ~1.2 ms of its ~3.2 ms mean), not worth answering differently from tantivy. No
shard request cache: the streaming indexer refreshes after every write, which empties it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import httpx

from search.documents import KINDS, Doc, Kind, PostDoc, as_fields, from_fields, kind_of
from search.engine import EngineUnavailable, Filters, Match
from search.query import MAX_TOKEN_CHARS, ParsedQuery
from search.tantivy_engine import (
    FUZZY_MIN_CHARS,
    FUZZY_WEIGHT,
    PREFIX_MIN_CHARS,
    PREFIX_WEIGHT,
    SPECS,
)

BULK_CHUNK = 5_000  # documents per _bulk request
SCAN_PAGE = 5_000  # hits per page when reading every id of a flag
TIMEOUT_SECONDS = 30.0
HIT_FIELDS = "hits.hits._score,hits.hits._source"  # filter_path: the rest of an answer unread

# tantivy's `default` tokenizer: split on anything but letters and digits, lower-case, drop
# tokens longer than 40 characters
ANALYSIS = {
    "tokenizer": {
        "words": {"type": "pattern", "pattern": "[\\W_]+", "flags": "UNICODE_CHARACTER_CLASS"}
    },
    "filter": {"not_too_long": {"type": "length", "max": MAX_TOKEN_CHARS}},
    "analyzer": {
        "words": {"type": "custom", "tokenizer": "words", "filter": ["lowercase", "not_too_long"]}
    },
}


def _mapping(kind: Kind) -> dict[str, Any]:
    spec = SPECS[kind]
    props: dict[str, Any] = {"key": {"type": "keyword"}}
    props |= {name: {"type": "long"} for name in spec.ints}
    props |= {name: {"type": "boolean"} for name in spec.bools}
    props |= {name: {"type": "double"} for name in spec.floats}
    props |= {name: {"type": "text", "analyzer": "words"} for name in spec.texts}
    props |= {name: {"type": "keyword"} for name in spec.raws}
    return {"dynamic": "strict", "properties": props}


ID_FIELD: dict[Kind, str] = {
    "posts": "post_id",
    "users": "user_id",
    "hashtags": "key",
    "locations": "location_id",
}


class OpenSearchEngine:
    """Four OpenSearch indexes (posts, users, hashtags, locations) named `<prefix>-<kind>`."""

    def __init__(
        self,
        url: str,
        prefix: str = "search",
        *,
        create: bool = True,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.url = url.rstrip("/")
        self.prefix = prefix.lower()
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        if create:
            self.ensure_indexes()

    def index_name(self, kind: Kind) -> str:
        return f"{self.prefix}-{kind}"

    # --- HTTP ------------------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200,), **kw: Any
    ) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=body, **kw)
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"OpenSearch at {self.url}: {exc}") from exc
        if response.status_code not in ok:
            raise EngineUnavailable(
                f"OpenSearch {method} {path}: HTTP {response.status_code} {response.text[:300]}"
            )
        return response

    def _json(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        data: dict[str, Any] = self._call(method, path, body, **kw).json()
        return data

    # --- indexes ---------------------------------------------------------------------------------

    def ensure_indexes(self) -> None:
        """Create the missing indexes (one shard, no replica: a single node is green)."""
        for kind in KINDS:
            name = self.index_name(kind)
            if self._call("HEAD", f"/{name}", ok=(200, 404)).status_code == 200:
                continue
            body = {
                "settings": {
                    "number_of_shards": 1,
                    "number_of_replicas": 0,
                    "analysis": ANALYSIS,
                },
                "mappings": _mapping(kind),
            }
            response = self._call("PUT", f"/{name}", body, ok=(200, 400))
            if response.status_code == 400 and "already_exists" not in response.text:
                raise EngineUnavailable(f"OpenSearch cannot create {name}: {response.text[:300]}")

    def exists(self) -> bool:
        return all(
            self._call("HEAD", f"/{self.index_name(k)}", ok=(200, 404)).status_code == 200
            for k in KINDS
        )

    def remove(self) -> None:
        """Drop the indexes (a rebuild); `ensure_indexes` makes them again."""
        for kind in KINDS:
            self._call("DELETE", f"/{self.index_name(kind)}", ok=(200, 404))

    def clear(self) -> None:
        self.remove()
        self.ensure_indexes()

    def close(self) -> None:
        self._http.close()

    # --- writes ----------------------------------------------------------------------------------

    def upsert(self, docs: Iterable[Doc]) -> int:
        latest: dict[tuple[Kind, str], Doc] = {}
        for doc in docs:
            latest[(kind_of(doc), doc.key)] = doc  # the last write of a key wins
        if not latest:
            return 0
        items = list(latest.items())
        for start in range(0, len(items), BULK_CHUNK):
            lines: list[str] = []
            for (kind, key), doc in items[start : start + BULK_CHUNK]:
                lines.append(_ndjson({"index": {"_index": self.index_name(kind), "_id": key}}))
                lines.append(_ndjson({"key": key} | as_fields(doc)))
            result = self._json(
                "POST",
                "/_bulk",
                content="\n".join(lines) + "\n",
                headers={"Content-Type": "application/x-ndjson"},
            )
            if result.get("errors"):
                failed = [i for i in result["items"] if "error" in next(iter(i.values()))]
                raise EngineUnavailable(f"OpenSearch bulk write failed: {failed[:1]}")
        touched = ",".join(sorted({self.index_name(kind) for kind, _ in latest}))
        self._call("POST", f"/{touched}/_refresh")  # visible to every reader on return
        return len(items)

    # --- reads -----------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reads are current after every `upsert` (it refreshes): nothing to reload."""

    def _search(self, kind: Kind, body: dict[str, Any]) -> list[dict[str, Any]]:
        result = self._json("POST", f"/{self.index_name(kind)}/_search", body)
        hits: list[dict[str, Any]] = result["hits"]["hits"]
        return hits

    def _doc(self, kind: Kind, source: dict[str, Any]) -> Doc:
        fields = {k: v for k, v in source.items() if k != "key"}
        return from_fields(kind, fields)

    def get(self, kind: Kind, keys: Iterable[str]) -> dict[str, Doc]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        result = self._json("POST", f"/{self.index_name(kind)}/_mget", {"ids": wanted})
        return {d["_id"]: self._doc(kind, d["_source"]) for d in result["docs"] if d.get("found")}

    def text_query(self, kind: Kind, query: ParsedQuery, fuzzy: bool) -> dict[str, Any]:
        """As `tantivy_engine._KindIndex.text_query`: per word the best field of BM25 x boost,
        plus a constant for a one-typo match and (users, hashtags, locations) for a prefix."""
        spec = SPECS[kind]
        words = []
        for term in query.terms:
            per_field = []
            for field, boost in spec.texts.items():
                weight = boost * (2.0 if term in query.hashtags and field == "hashtags" else 1.0)
                weight *= 2.0 if term in query.mentions and field == "username" else 1.0
                options: list[dict[str, Any]] = [
                    {"term": {field: {"value": term, "boost": weight}}}
                ]
                if fuzzy and len(term) >= FUZZY_MIN_CHARS:
                    typo = {
                        "fuzzy": {
                            field: {
                                "value": term,
                                "fuzziness": 1,
                                "transpositions": True,
                                "prefix_length": 0,
                            }
                        }
                    }
                    options.append(
                        {"constant_score": {"filter": typo, "boost": FUZZY_WEIGHT * weight}}
                    )
                if spec.prefix and len(term) >= PREFIX_MIN_CHARS:
                    start = {"prefix": {field: {"value": term}}}
                    options.append(
                        {"constant_score": {"filter": start, "boost": PREFIX_WEIGHT * weight}}
                    )
                per_field.append({"bool": {"should": options}})
            words.append({"dis_max": {"queries": per_field, "tie_breaker": 0.0}})
        return {"bool": {"should": words, "minimum_should_match": 1}}

    def filter_clauses(self, kind: Kind, filters: Filters) -> dict[str, list[dict[str, Any]]]:
        if kind != "posts":
            return {}
        must: list[dict[str, Any]] = []
        if filters.since_ts is not None or filters.until_ts is not None:
            bounds = {"gte": filters.since_ts, "lte": filters.until_ts}
            must.append(
                {"range": {"created_ts": {k: v for k, v in bounds.items() if v is not None}}}
            )
        if filters.author_id is not None:
            must.append({"term": {"author_id": filters.author_id}})
        if filters.location_id is not None:
            must.append({"term": {"location_id": filters.location_id}})
        return {"filter": must, "must_not": [{"term": {"deleted": True}}]}

    def match(
        self, kind: Kind, query: ParsedQuery, filters: Filters, limit: int, *, fuzzy: bool = True
    ) -> list[Match]:
        """The candidates come back whole, in the one round trip: the page is chosen above the
        engine (privacy, blend), so a second request for its documents (`_mget`) would cost
        another HTTP round trip (~3.5 ms here) against ~1 ms more JSON for 200 documents."""
        text = self.text_query(kind, query, fuzzy)
        clauses = self.filter_clauses(kind, filters)
        full = {"bool": {"must": [text], **clauses}} if clauses else text
        body: dict[str, Any] = {"query": full, "size": limit, "track_total_hits": False}
        result = self._json(
            "POST", f"/{self.index_name(kind)}/_search", body, params={"filter_path": HIT_FIELDS}
        )
        hits = result.get("hits", {}).get("hits", [])  # filter_path drops an empty list
        return [Match(self._doc(kind, h["_source"]), float(h["_score"])) for h in hits]

    def hydrate(self, kind: Kind, matches: list[Match]) -> list[Match]:
        """`match` already returns whole documents."""
        return matches

    def _scan(
        self, kind: Kind, query: dict[str, Any], source: list[str] | bool
    ) -> Iterator[dict[str, Any]]:
        """Every hit of `query`, in pages sorted by the kind's id (search_after): no 10,000 cap."""
        sort_field = ID_FIELD[kind]
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "query": query,
                "size": SCAN_PAGE,
                "sort": [{sort_field: "asc"}],
                "_source": source,
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            hits = self._search(kind, body)
            yield from hits
            if len(hits) < SCAN_PAGE:
                return
            after = hits[-1]["sort"]

    def posts_of(self, author_id: int) -> list[PostDoc]:
        hits = self._scan("posts", {"term": {"author_id": author_id}}, True)
        docs = [self._doc("posts", h["_source"]) for h in hits]
        return [d for d in docs if isinstance(d, PostDoc)]

    def deleted_posts(self) -> set[int]:
        hits = self._scan("posts", {"term": {"deleted": True}}, ["post_id"])
        return {int(h["_source"]["post_id"]) for h in hits}

    def private_users(self) -> set[int]:
        hits = self._scan("users", {"term": {"is_private": True}}, ["user_id"])
        return {int(h["_source"]["user_id"]) for h in hits}

    def count(self, kind: Kind) -> int:
        return int(self._json("GET", f"/{self.index_name(kind)}/_count")["count"])

    def size_bytes(self) -> int:
        names = ",".join(self.index_name(k) for k in KINDS)
        stats = self._json("GET", f"/{names}/_stats/store")
        return int(stats["_all"]["primaries"]["store"]["size_in_bytes"])


def _ndjson(value: dict[str, Any]) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))
