"""A graph edge list as platform events: a sign-up per node, a follow, block or mute per edge.

Input is text with one edge per line, `follower, followee[, timestamp]` (SNAP's tab- or
space-separated files and CSV both read; the delimiter comes from the first data line). Lines
starting with `#` are comments and blank lines are ignored (both counted). The first data line is
a header when it names columns (`COLUMNS`: `follower`/`source`/`from`, `followee`/`target`/`to`,
`timestamp`, `relation`) or when its first two fields are not node ids; a header naming a
column this importer does not know refuses the whole file (`EdgeListFormatError`), so a file read
with the wrong layout never lands.

What each edge is: `kind` (follows, blocks or mutes) for the whole file, or a `relation` column
per line (`follow`, `block`, `mute`, plural or not). Mutes and blocks reach `int_mutes` /
`int_blocks`, hence the `VisibilityGraph`: a muted or blocked account is never suggested.

Node ids are non-negative integers (`node_ids="integer"`) or hex keys (`"hex"`, e.g. hashed
account ids of a real export; `0x` optional): a key maps to the integer of its first
`HEX_DIGITS` hex digits, the same in every file, so a follows file and a mutes file of one export
agree; two keys mapping to one integer are a reject. `"auto"` picks hex when the first data lines'
ids are mostly hex keys with letters. Node `n` becomes platform user `id_offset + n` (username
`<prefix><n>`, public, country `ZZ`: unknown), created one day before its first accepted edge;
`node_ids` in the result maps each key to its node.

A timestamp is unix seconds or ISO-8601 (naive means UTC). A line without one gets
`synthetic_start + (line number - 1) * synthetic_step`, so the same file always gives the same
events and later lines follow later.

A line that cannot become a valid event is never dropped silently: it goes to `rejects` with its
number, its text and the reason (wrong field count, bad node id, self-follow, unknown relation,
bad or future timestamp, repeated edge, or whatever the event contract says).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from rich.progress import track

from importers.events import MAX_ID, EventLog, build_event

PRODUCER = "importer-edge-list"
DEFAULT_ID_OFFSET = 3_000_000_000
DEFAULT_USERNAME_PREFIX = "edge_"
SYNTHETIC_START = datetime(2025, 1, 1, tzinfo=UTC)
SYNTHETIC_STEP = timedelta(seconds=1)
SIGNUP_LEAD = timedelta(days=1)
UNKNOWN_COUNTRY = "ZZ"  # ISO 3166 user-assigned code; edge lists carry no country
HEX_DIGITS = 12  # 48 bits: room for millions of keys with rare (rejected) collisions
AUTO_SAMPLE_LINES = 1000

Kind = Literal["follows", "blocks", "mutes"]
NodeIds = Literal["integer", "hex", "auto"]
KINDS: dict[str, str] = {"follows": "follow", "blocks": "block", "mutes": "mute"}
RELATIONS: dict[str, str] = {
    **{k: v for k, v in KINDS.items()},
    **{v: v for v in KINDS.values()},
}
# header names each column may go by in real exports
COLUMNS: dict[str, tuple[str, ...]] = {
    "follower": ("follower", "follower_id", "source", "source_id", "src", "from", "from_id",
                 "user_id", "user", "actor", "actor_id"),
    "followee": ("followee", "followee_id", "target", "target_id", "dst", "to", "to_id",
                 "target_user_id", "followed", "followed_id"),
    "timestamp": ("timestamp", "time", "ts", "created_at", "occurred_at", "followed_at", "date"),
    "relation": ("relation", "relationship", "kind", "type", "edge_type"),
}  # fmt: skip
_ALIASES = {alias: column for column, names in COLUMNS.items() for alias in names}

_NODE_RE = re.compile(r"^\d+$")
_HEX_RE = re.compile(r"^(0x)?[0-9a-f]+$")
_HEX_LETTER_RE = re.compile(r"[a-f]")


class EdgeListFormatError(ValueError):
    """The file as a whole cannot be read (unknown columns, options that contradict it)."""


@dataclass(frozen=True)
class Reject:
    line: int
    text: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "text": self.text, "reason": self.reason}


@dataclass(frozen=True)
class Edge:
    line: int
    follower: int
    followee: int
    followed_at: datetime
    synthesized: bool
    text: str = ""
    relation: str = "follow"  # the event type: follow, block or mute


@dataclass
class EdgeListImport:
    log: EventLog
    source: str
    edges: list[Edge] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    nodes: int = 0
    header: str | None = None
    comment_lines: int = 0
    blank_lines: int = 0
    node_id_kind: str = "integer"
    node_ids: dict[str, int] = field(default_factory=dict)  # hex key -> node (hex files only)
    id_offset: int = DEFAULT_ID_OFFSET

    @property
    def synthesized_timestamps(self) -> int:
        return sum(e.synthesized for e in self.edges)

    def by_relation(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for edge in self.edges:
            out[edge.relation] = out.get(edge.relation, 0) + 1
        return dict(sorted(out.items()))

    def manifest(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "received_at": self.log.received_at.isoformat(),
            "nodes": self.nodes,
            "edges": len(self.edges),
            "edges_by_relation": self.by_relation(),
            "node_ids": self.node_id_kind,
            "mapped_keys": len(self.node_ids),
            "rejected_lines": len(self.rejects),
            "rejects_by_reason": _by_reason(self.rejects),
            "header": self.header,
            "comment_lines": self.comment_lines,
            "blank_lines": self.blank_lines,
            "synthesized_timestamps": self.synthesized_timestamps,
            "events_by_type": dict(sorted(self.log.counts.items())),
        }

    def node_id_csv(self) -> bytes:
        """`key,node,user_id` per mapped hex key: how to find an account of the export."""
        rows = ["key,node,user_id"]
        rows += [f"{k},{n},{self.id_offset + n}" for k, n in sorted(self.node_ids.items())]
        return ("\n".join(rows) + "\n").encode()


def _by_reason(rejects: list[Reject]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rejects:
        kind = r.reason.split(":", 1)[0] if ":" in r.reason else r.reason
        out[kind] = out.get(kind, 0) + 1
    return dict(sorted(out.items()))


def _split(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return line.split()
    return [part.strip() for part in line.split(delimiter)]


def _detect_delimiter(line: str) -> str | None:
    if "," in line:
        return ","
    if "\t" in line:
        return "\t"
    return None  # runs of whitespace


def parse_timestamp_field(text: str) -> datetime:
    """Unix seconds (int or float) or ISO-8601; naive ISO values are UTC. ValueError otherwise."""
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _is_hex_key(text: str) -> bool:
    lowered = text.lower()
    return bool(_HEX_RE.match(lowered)) and bool(_HEX_LETTER_RE.search(lowered.removeprefix("0x")))


def detect_node_ids(lines: list[str]) -> str:
    """ "hex" when most ids of the first data lines are hex keys with a letter, else "integer"."""
    tokens: list[str] = []
    delimiter: str | None = None
    started = False
    for raw in lines:
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not started:
            started = True
            delimiter = _detect_delimiter(stripped)
        tokens += _split(stripped, delimiter)[:2]
        if len(tokens) >= 2 * AUTO_SAMPLE_LINES:
            break
    hexes = sum(_is_hex_key(t) for t in tokens)
    return "hex" if tokens and hexes * 2 >= len(tokens) else "integer"


@dataclass
class _Layout:
    """Where each column is on a line: follower, followee, then the optional ones."""

    follower: int = 0
    followee: int = 1
    timestamp: int | None = 2
    relation: int | None = None
    width: int = 2  # required fields
    max_width: int = 3
    named: bool = False

    @classmethod
    def from_header(cls, fields: list[str]) -> _Layout:
        names = [f.strip().lower() for f in fields]
        unknown = [f for f, n in zip(fields, names, strict=True) if n not in _ALIASES]
        if unknown:
            known = ", ".join(f"{c} ({'/'.join(a[:4])}...)" for c, a in COLUMNS.items())
            raise EdgeListFormatError(
                f"unknown columns {unknown} in the header; known columns: {known}"
            )
        columns = [_ALIASES[n] for n in names]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise EdgeListFormatError(f"the header names {repeated} more than once: {fields}")
        for required in ("follower", "followee"):
            if required not in columns:
                raise EdgeListFormatError(f"the header has no {required} column: {fields}")
        return cls(
            follower=columns.index("follower"),
            followee=columns.index("followee"),
            timestamp=columns.index("timestamp") if "timestamp" in columns else None,
            relation=columns.index("relation") if "relation" in columns else None,
            # a line may stop before optional trailing columns (a missing timestamp)
            width=1 + max(columns.index(c) for c in columns if c != "timestamp"),
            max_width=len(columns),
            named=True,
        )


@dataclass
class _Parser:
    """Turns lines into edges or rejects; state: delimiter, header, edges and keys seen."""

    id_offset: int
    synthetic_start: datetime
    synthetic_step: timedelta
    received_at: datetime
    result: EdgeListImport
    hex_ids: bool
    kind: str | None
    delimiter: str | None = None
    started: bool = False
    layout: _Layout = field(default_factory=_Layout)
    seen: dict[tuple[str, int, int], int] = field(default_factory=dict)
    key_of_node: dict[int, str] = field(default_factory=dict)

    def feed(self, number: int, raw: str) -> None:
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if not stripped:
            self.result.blank_lines += 1
            return
        if stripped.startswith("#"):
            self.result.comment_lines += 1
            return
        if not self.started:
            self.started = True
            self.delimiter = _detect_delimiter(stripped)
            fields = _split(stripped, self.delimiter)
            if self._is_header(fields):
                self.result.header = stripped
                self.layout = _Layout.from_header(fields)
                if self.layout.relation is not None and self.kind is not None:
                    raise EdgeListFormatError(
                        f"the file has a relation column and kind={self.kind!r} was given: "
                        "choose one"
                    )
                return
        edge_or_reason = self._edge(number, stripped)
        if isinstance(edge_or_reason, str):
            self.result.rejects.append(Reject(number, line, edge_or_reason))
        else:
            self.result.edges.append(edge_or_reason)

    def _is_header(self, fields: list[str]) -> bool:
        if len(fields) < 2:
            return False
        if any(f.strip().lower() in _ALIASES for f in fields):
            return True
        pattern = _HEX_RE if self.hex_ids else _NODE_RE
        return not (pattern.match(fields[0].lower()) or pattern.match(fields[1].lower()))

    def _node(self, name: str, text: str) -> int | str:
        """The node of an id field, or the reason it has none."""
        if self.hex_ids:
            key = text.lower().removeprefix("0x")
            if not _HEX_RE.match(key):
                return f"{name}: {text!r} is not a hex key"
            node = int(key[:HEX_DIGITS], 16)
            other = self.key_of_node.setdefault(node, key)
            if other != key:
                return (
                    f"{name}: hex key {text!r} maps to node {node} like key {other!r} "
                    f"(first {HEX_DIGITS} hex digits)"
                )
            return node
        if not _NODE_RE.match(text):
            return f"{name}: {text!r} is not a non-negative integer node id"
        return int(text)

    def _edge(self, number: int, line: str) -> Edge | str:
        layout = self.layout
        fields = _split(line, self.delimiter)
        if not layout.named and len(fields) == 3 and fields[2] == "":
            fields = fields[:2]
        if not layout.width <= len(fields) <= layout.max_width:
            expected = (
                f"the header's {layout.max_width} fields"
                if layout.named
                else "follower, followee[, timestamp]"
            )
            return f"fields: expected {expected}, got {len(fields)} fields"
        relation = KINDS[self.kind or "follows"]
        if layout.relation is not None:
            value = fields[layout.relation].lower()
            if value not in RELATIONS:
                return (
                    f"relation: {fields[layout.relation]!r} is not one of "
                    f"{', '.join(sorted(RELATIONS))}"
                )
            relation = RELATIONS[value]
        ids = []
        for name, position in (("follower", layout.follower), ("followee", layout.followee)):
            node = self._node(name, fields[position])
            if isinstance(node, str):
                return node
            platform_id = self.id_offset + node
            if platform_id > MAX_ID or platform_id < 1:
                return f"{name}: node {node} + offset {self.id_offset} is outside the id range"
            ids.append(platform_id)
        follower, followee = ids
        if follower == followee:
            return f"self-{relation}: follower and followee are the same node"
        stamp = (
            fields[layout.timestamp]
            if layout.timestamp is not None and len(fields) > layout.timestamp
            else ""
        )
        if stamp:
            try:
                at = parse_timestamp_field(stamp)
            except ValueError:
                return f"timestamp: {stamp!r} is neither unix seconds nor ISO-8601"
            synthesized = False
        else:
            at = self.synthetic_start + (number - 1) * self.synthetic_step
            synthesized = True
        if at > self.received_at:
            return (
                f"timestamp: {at.isoformat()} is after the import ({self.received_at.isoformat()})"
            )
        if at - SIGNUP_LEAD < datetime(1970, 1, 2, tzinfo=UTC):
            return f"timestamp: {at.isoformat()} is before 1970-01-02"
        first = self.seen.setdefault((relation, follower, followee), number)
        if first != number:
            return f"duplicate: the same {relation} edge is on line {first}"
        return Edge(number, follower, followee, at, synthesized, line, relation)


def import_edge_list(
    lines: Iterable[str],
    *,
    source: str,
    received_at: datetime,
    id_offset: int = DEFAULT_ID_OFFSET,
    username_prefix: str = DEFAULT_USERNAME_PREFIX,
    synthetic_start: datetime = SYNTHETIC_START,
    synthetic_step: timedelta = SYNTHETIC_STEP,
    kind: Kind | None = None,
    node_ids: NodeIds = "integer",
    signups: bool | None = None,
    progress: bool = False,
) -> EdgeListImport:
    """Parse the lines (numbered from 1) and build the sign-up and relationship events.

    `source` names the dataset; it seeds the event ids, so re-importing the same source gives the
    same events. `kind`: what every edge is (default follows) unless a relation column says.
    `signups`: one `user_created` per node; default yes unless the file is only blocks or mutes
    (their accounts come with the follows). Raises `EdgeListFormatError` for an unreadable file.
    """
    if id_offset < 0:
        raise ValueError("id_offset must be >= 0")
    if kind is not None and kind not in KINDS:
        raise EdgeListFormatError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if node_ids not in ("integer", "hex", "auto"):
        raise EdgeListFormatError(f"node_ids {node_ids!r} is not integer, hex or auto")
    if node_ids == "auto":
        lines = list(lines)
        node_ids = "hex" if detect_node_ids(lines) == "hex" else "integer"
    log = EventLog(received_at)
    result = EdgeListImport(log=log, source=source, node_id_kind=node_ids, id_offset=id_offset)
    parser = _Parser(
        id_offset,
        synthetic_start,
        synthetic_step,
        log.received_at,
        result,
        hex_ids=node_ids == "hex",
        kind=kind,
    )
    numbered = enumerate(lines, start=1)
    for number, raw in track(numbered, description="edges") if progress else numbered:
        parser.feed(number, raw)
    if signups is None:
        signups = kind in (None, "follows")

    kept: list[Edge] = []
    relations: list[dict[str, Any]] = []
    for edge in result.edges:
        event = _relation_event(source, edge)
        reasons = log.reasons(event)
        if reasons:
            result.rejects.append(Reject(edge.line, edge.text, "contract: " + "; ".join(reasons)))
            continue
        kept.append(edge)
        relations.append(event)
    result.edges = kept

    first_seen: dict[int, datetime] = {}
    for edge in kept:
        for node in (edge.follower, edge.followee):
            if node not in first_seen or edge.followed_at < first_seen[node]:
                first_seen[node] = edge.followed_at
    if parser.hex_ids:
        used = {n - id_offset for n in first_seen}
        result.node_ids = {k: n for n, k in parser.key_of_node.items() if n in used}
    for node in sorted(first_seen) if signups else ():
        payload = {
            "user_id": node,
            "username": f"{username_prefix}{node - id_offset}"[:30],
            "is_private": False,
            "country": UNKNOWN_COUNTRY,
        }
        log.append(
            build_event(
                source=source,
                producer=PRODUCER,
                event_type="user_created",
                key=node,
                occurred_at=first_seen[node] - SIGNUP_LEAD,
                payload=payload,
            )
        )
    for event in relations:
        log.append(event, checked=True)
    result.nodes = len(first_seen)
    result.rejects.sort(key=lambda r: r.line)
    return result


def _relation_event(source: str, edge: Edge) -> dict[str, Any]:
    return build_event(
        source=source,
        producer=PRODUCER,
        event_type=edge.relation,
        key=f"{edge.follower}:{edge.followee}",
        occurred_at=edge.followed_at,
        payload={"user_id": edge.follower, "target_user_id": edge.followee},
    )


def import_edge_file(path: Path, **options: Any) -> EdgeListImport:
    """`import_edge_list` over a file; the source name defaults to `edges:<file stem>`."""
    options.setdefault("source", f"edges:{path.stem}")
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        return import_edge_list(handle, **options)
