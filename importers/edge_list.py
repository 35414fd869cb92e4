"""A follow-graph edge list as platform events: a sign-up per node and a follow per edge.

Input is text with one edge per line, `follower, followee[, timestamp]` (SNAP's tab- or
space-separated files and CSV both read; the delimiter comes from the first data line). Lines
starting with `#` are comments and blank lines are ignored (both counted). The first data line is
a header when its first two fields are not integers. Node ids must be non-negative integers;
node `n` becomes platform user `id_offset + n` (username `<prefix><n>`, public, country `ZZ`:
unknown), created one day before its first accepted edge.

A timestamp is unix seconds or ISO-8601 (naive means UTC). A line without one gets
`synthetic_start + (line number - 1) * synthetic_step`, so the same file always gives the same
events and later lines follow later.

A line that cannot become a valid follow is never dropped silently: it goes to `rejects` with its
number, its text and the reason (wrong field count, bad node id, self-follow, bad or future
timestamp, repeated edge, or whatever the event contract says).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.progress import track

from importers.events import MAX_ID, EventLog, build_event

PRODUCER = "importer-edge-list"
DEFAULT_ID_OFFSET = 3_000_000_000
DEFAULT_USERNAME_PREFIX = "edge_"
SYNTHETIC_START = datetime(2025, 1, 1, tzinfo=UTC)
SYNTHETIC_STEP = timedelta(seconds=1)
SIGNUP_LEAD = timedelta(days=1)
UNKNOWN_COUNTRY = "ZZ"  # ISO 3166 user-assigned code; edge lists carry no country

_NODE_RE = re.compile(r"^\d+$")


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

    @property
    def synthesized_timestamps(self) -> int:
        return sum(e.synthesized for e in self.edges)

    def manifest(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "received_at": self.log.received_at.isoformat(),
            "nodes": self.nodes,
            "edges": len(self.edges),
            "rejected_lines": len(self.rejects),
            "rejects_by_reason": _by_reason(self.rejects),
            "header": self.header,
            "comment_lines": self.comment_lines,
            "blank_lines": self.blank_lines,
            "synthesized_timestamps": self.synthesized_timestamps,
            "events_by_type": dict(sorted(self.log.counts.items())),
        }


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


@dataclass
class _Parser:
    """Turns lines into edges or rejects; state: delimiter, header, edges seen."""

    id_offset: int
    synthetic_start: datetime
    synthetic_step: timedelta
    received_at: datetime
    result: EdgeListImport
    delimiter: str | None = None
    started: bool = False
    seen: dict[tuple[int, int], int] = field(default_factory=dict)

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
            if len(fields) >= 2 and not (_NODE_RE.match(fields[0]) or _NODE_RE.match(fields[1])):
                self.result.header = stripped
                return
        edge_or_reason = self._edge(number, stripped)
        if isinstance(edge_or_reason, str):
            self.result.rejects.append(Reject(number, line, edge_or_reason))
        else:
            self.result.edges.append(edge_or_reason)

    def _edge(self, number: int, line: str) -> Edge | str:
        fields = _split(line, self.delimiter)
        if len(fields) == 3 and fields[2] == "":
            fields = fields[:2]
        if len(fields) not in (2, 3):
            return f"fields: expected follower, followee[, timestamp], got {len(fields)} fields"
        ids = []
        for name, text in zip(("follower", "followee"), fields[:2], strict=True):
            if not _NODE_RE.match(text):
                return f"{name}: {text!r} is not a non-negative integer node id"
            platform_id = self.id_offset + int(text)
            if platform_id > MAX_ID or platform_id < 1:
                return f"{name}: node {text} + offset {self.id_offset} is outside the id range"
            ids.append(platform_id)
        follower, followee = ids
        if follower == followee:
            return "self-follow: follower and followee are the same node"
        if len(fields) == 3:
            try:
                at = parse_timestamp_field(fields[2])
            except ValueError:
                return f"timestamp: {fields[2]!r} is neither unix seconds nor ISO-8601"
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
        first = self.seen.setdefault((follower, followee), number)
        if first != number:
            return f"duplicate: the same edge is on line {first}"
        return Edge(number, follower, followee, at, synthesized, line)


def import_edge_list(
    lines: Iterable[str],
    *,
    source: str,
    received_at: datetime,
    id_offset: int = DEFAULT_ID_OFFSET,
    username_prefix: str = DEFAULT_USERNAME_PREFIX,
    synthetic_start: datetime = SYNTHETIC_START,
    synthetic_step: timedelta = SYNTHETIC_STEP,
    progress: bool = False,
) -> EdgeListImport:
    """Parse the lines (numbered from 1) and build the sign-up and follow events.

    `source` names the dataset; it seeds the event ids, so re-importing the same source gives the
    same events.
    """
    if id_offset < 0:
        raise ValueError("id_offset must be >= 0")
    log = EventLog(received_at)
    result = EdgeListImport(log=log, source=source)
    parser = _Parser(id_offset, synthetic_start, synthetic_step, log.received_at, result)
    numbered = enumerate(lines, start=1)
    for number, raw in track(numbered, description="edges") if progress else numbered:
        parser.feed(number, raw)

    kept: list[Edge] = []
    follows: list[dict[str, Any]] = []
    for edge in result.edges:
        event = _follow_event(source, edge)
        reasons = log.reasons(event)
        if reasons:
            result.rejects.append(Reject(edge.line, edge.text, "contract: " + "; ".join(reasons)))
            continue
        kept.append(edge)
        follows.append(event)
    result.edges = kept

    first_seen: dict[int, datetime] = {}
    for edge in kept:
        for node in (edge.follower, edge.followee):
            if node not in first_seen or edge.followed_at < first_seen[node]:
                first_seen[node] = edge.followed_at
    for node in sorted(first_seen):
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
    for event in follows:
        log.append(event, checked=True)
    result.nodes = len(first_seen)
    result.rejects.sort(key=lambda r: r.line)
    return result


def _follow_event(source: str, edge: Edge) -> dict[str, Any]:
    return build_event(
        source=source,
        producer=PRODUCER,
        event_type="follow",
        key=f"{edge.follower}:{edge.followee}",
        occurred_at=edge.followed_at,
        payload={"user_id": edge.follower, "target_user_id": edge.followee},
    )


def import_edge_file(path: Path, **options: Any) -> EdgeListImport:
    """`import_edge_list` over a file; the source name defaults to `edges:<file stem>`."""
    options.setdefault("source", f"edges:{path.stem}")
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        return import_edge_list(handle, **options)
