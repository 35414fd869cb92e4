"""Decoded feature vectors kept in memory between requests, one matrix per feature view.

An uncached feed reads about 1,000 candidates x 15 views. Caching the raw blobs saved the SQLite
round trip but every request still joined, parsed and fingerprint-checked 15,000 blobs (a third
of the feature stage). Here each entity is decoded once: every view keyed by the same entity
(user, post, author, viewer x author) shares one row index, so a request costs one dict lookup
per entity and one numpy gather per view.

Texts are kept twice: as decoded (object arrays, what the ranker's categoricals read) and as
int64 codes of one `feature_repo.text_codes.TextCodes` per cache, so the on-demand views that
compare texts (same home city, topic overlap) run as array code on them.

A group keyed by (something, viewer) can be read a viewer at a time (`ReadViewer`): the missing
entities' blobs come from one range read of everything the store holds for their viewer, rather
than one seek per key and view (a viewer's first feed sought ~250 (author, viewer) keys x 4
views: ~2.5 of its ~10 ms). Only the entities asked for are decoded and kept, as by key.

A pair group read a viewer at a time is also indexed per viewer (`ByViewer`): a warm request
then looks its ~1,000 (author, viewer) pairs up by the author's int in the viewer's own dict,
without building and hashing a tuple per pair.

`RowBlock` hands a caller one view's rows of a request (which cached rows, which expired) so it
can keep values derived from each entity's row (the ranker's scaled columns) beside the rows
themselves (`RowBlock.derived_rows`): computed once per entity, dropped with the rows. A view
keeps one such set, the newest owner's (a promoted model's): an older owner still asking (the
other arm of an experiment) gets its rows computed per read instead of a second set.

Correctness is the online store's: the whole cache starts over when the store's version changes
(`PRAGMA data_version`: any commit, e.g. a materialization; the text codes start over with it),
or when a kind of entity holds `max_rows` rows (the codes when they number `max_rows`); a
value's ttl is applied by the caller at request time on the event times kept here.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, cast

import numpy as np

from feature_repo.text_codes import TextCodes
from featurestore.vectors import VectorLayout

Fetch = Callable[[list[tuple[str, list[bytes]]]], list[list[bytes | None]]]
# the store's keys of entities given by id: (join keys, ids) -> one key per id
Encode = Callable[[tuple[str, ...], list[Hashable]], list[bytes]]
# every entity of one viewer: (views, viewer) -> per view, the store's key -> blob
ReadViewer = Callable[[list[str], Hashable], list[dict[bytes, bytes]]]
# times, numbers, strings (object 2-D), the strings' codes (int64 2-D, -1 missing)
Decoded = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]


@dataclass
class _ViewRows:
    """One view's decoded rows (capacity grows by doubling)."""

    name: str
    layout: VectorLayout
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    numbers: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    strings: np.ndarray | None = None
    codes: np.ndarray | None = None
    # the newest owner's (owner, its arrays over rows 0..n, n): `RowBlock.derived_rows`
    derived: tuple[object, tuple[np.ndarray, ...], int] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.numbers = np.zeros((0, len(self.layout.numeric)))
        if self.layout.strings:
            self.strings = np.empty((0, len(self.layout.strings)), dtype=object)
            self.codes = np.empty((0, len(self.layout.strings)), dtype="int64")

    def put(self, start: int, decoded: Decoded) -> None:
        times, numbers, strings, codes = decoded
        stop = start + len(times)
        if stop > len(self.times):
            capacity = max(stop, 2 * len(self.times), 1024)
            self.times = _grow(self.times, capacity)
            self.numbers = _grow(self.numbers, capacity)
            if self.strings is not None and self.codes is not None:
                self.strings = _grow(self.strings, capacity)
                self.codes = _grow(self.codes, capacity)
        self.times[start:stop] = times
        self.numbers[start:stop] = numbers
        if self.strings is not None and self.codes is not None:
            self.strings[start:stop] = strings
            self.codes[start:stop] = codes


class ByViewer(NamedTuple):
    """The ids of a pair group with one viewer, without a tuple per pair: `others[i]` with
    `viewer`, the viewer at `position` of each pair (join keys sorted: (author, user) -> 1)."""

    others: list[int]
    viewer: int
    position: int

    def pairs(self) -> list[tuple[int, int]]:
        if self.position == 1:
            return [(other, self.viewer) for other in self.others]
        return [(self.viewer, other) for other in self.others]


Derive = Callable[[np.ndarray], tuple[np.ndarray, ...]]


@dataclass(frozen=True)
class RowBlock:
    """One view's rows of a read: `rows[i]` is the cached row of the read's i-th entity, and
    `expired[i]` (None: none) says its value was past the view's ttl at request time (read as
    missing). The caller may keep arrays derived from the cached rows with `derived`."""

    view: _ViewRows
    rows: np.ndarray
    expired: np.ndarray | None = None

    def derived_rows(self, owner: object, compute: Derive) -> tuple[np.ndarray, ...]:
        """`compute(numbers)` of this read's rows (each array's first axis one entry per row,
        each row's entries depending on that row only), kept for every cached row up to the
        highest of `rows` (the rows are appended, never changed, until the cache starts over
        with new `_ViewRows`) and computed for the rows not seen yet only.

        One set per view, the newest `owner`'s (first seen last, e.g. a promoted model's
        preprocessing; held, so its id cannot be reused): a newer owner replaces the set, so a
        retired model's set does not stay beside its successor's until the store changes; an
        older owner still asking (an experiment's other arm) computes its rows per read."""
        view = self.view
        rank = _first_seen(owner)
        upto = int(self.rows.max()) + 1 if len(self.rows) else 0
        with view.lock:
            held = view.derived
            if held is not None and held[0] is not owner and _first_seen(held[0]) > rank:
                older = True
            else:
                older = False
                mine = held if held is not None and held[0] is owner else None
                done = mine[2] if mine is not None else 0
                if mine is None or done < upto:
                    new = compute(view.numbers[done:upto])
                    arrays = new
                    if mine is not None and done:
                        arrays = tuple(
                            _append(old, part, done) for old, part in zip(mine[1], new, strict=True)
                        )
                    mine = (owner, arrays, max(upto, done))
                    view.derived = mine
                return tuple(array[self.rows] for array in mine[1])
        # outside the lock: reads of the (append-only) rows a read saw
        assert older
        return compute(view.numbers[self.rows])


_SEEN: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
_SEEN_LOCK = threading.Lock()
_SEEN_ORDER = itertools.count()


def _first_seen(owner: object) -> int:
    """When `derived_rows` first saw `owner` (weakly held: an owner must take weak references)."""
    with _SEEN_LOCK:
        seen = _SEEN.get(owner)
        if seen is None:
            seen = _SEEN[owner] = next(_SEEN_ORDER)
        return seen


def _append(array: np.ndarray, part: np.ndarray, done: int) -> np.ndarray:
    """`array[:done]` followed by `part`, growing the capacity by doubling."""
    stop = done + len(part)
    if stop > len(array):
        array = _grow(array[:done], max(stop, 2 * len(array)))
    array[done:stop] = part
    return array


def _grow(array: np.ndarray, rows: int) -> np.ndarray:
    grown = np.empty((rows, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


class _Group:
    """The views keyed by one kind of entity, sharing a row per entity key."""

    def __init__(self, views: Sequence[tuple[str, VectorLayout]]) -> None:
        self.views = [_ViewRows(name, layout) for name, layout in views]
        self.index: dict[Hashable, int] = {}  # entity id (or store key) -> row
        # a pair group read by viewer: viewer -> the other id -> row (the same rows as `index`)
        self.by_viewer: dict[int, dict[int, int]] = {}

    def __len__(self) -> int:
        return len(self.index)


def strings_matrix(rows: list[list[str | None]] | None, width: int) -> np.ndarray | None:
    """`VectorLayout.decode_many`'s per-row string lists as a rows x width object array."""
    if rows is None:
        return None
    out = np.empty((len(rows), width), dtype=object)
    if rows:
        out[:] = rows
    return out


def decode(layout: VectorLayout, blobs: list[bytes | None], texts: TextCodes) -> Decoded:
    """`layout.decode_many` with the strings as a matrix and as codes of `texts`."""
    times, numbers, rows = layout.decode_many(blobs)
    strings = strings_matrix(rows, len(layout.strings))
    return times, numbers, strings, texts.encode(strings) if strings is not None else None


class DecodedVectors:
    """Decoded rows of every entity read since the store last changed."""

    def __init__(
        self,
        groups: dict[tuple[str, ...], list[tuple[str, VectorLayout]]],
        fetch: Fetch,
        version: Callable[[], int],
        max_rows: int,
        viewers: Mapping[tuple[str, ...], tuple[int, ReadViewer]] | None = None,
    ) -> None:
        """`groups`: the views (name, layout) of each join-key tuple; `fetch` reads blobs
        uncached; `version` changes whenever the store does. `viewers`: the groups read a
        viewer at a time, with where the viewer sits in their ids and how to read one."""
        self.layouts = groups
        self.fetch = fetch
        self.viewers = dict(viewers or {})
        self.version = version
        self.max_rows = max_rows
        self.groups: dict[tuple[str, ...], _Group] = {}
        self.texts = TextCodes()
        self.seen_version: int | None = None
        self.lock = threading.Lock()  # one request fills the cache at a time

    def read(
        self,
        keys: Mapping[tuple[str, ...], Sequence[Hashable] | ByViewer],
        encode: Encode | None = None,
        blocks: dict[str, RowBlock] | None = None,
    ) -> tuple[dict[str, Decoded], TextCodes]:
        """Times, numbers, strings and their codes of every view, one row per key (in key
        order), and the `TextCodes` those codes belong to.

        `keys` are the entities' ids as the cache indexes them (a post id, an (author, user)
        pair, or a `ByViewer` for a group read a viewer at a time), and `encode(join_keys, ids)`
        turns those not cached yet into the store's keys; without it the ids are the store's
        keys already. Ids rather than store keys: a warm request then looks its ~3,000 entities
        up by int without building a key per entity. `blocks`, if given, receives each view's
        `RowBlock` (without expiry: the caller applies ttls)."""
        with self.lock:
            version = self.version()
            if version != self.seen_version or len(self.texts) >= self.max_rows:
                self.groups, self.texts, self.seen_version = {}, TextCodes(), version
            out: dict[str, Decoded] = {}
            for join_keys, group_keys in keys.items():
                wanted = group_keys.others if isinstance(group_keys, ByViewer) else group_keys
                group = self._group(join_keys, len(wanted))
                rows = self._rows(group, join_keys, group_keys, encode)
                for view in group.views:
                    strings = codes = None
                    if view.strings is not None and view.codes is not None:
                        strings, codes = view.strings[rows], view.codes[rows]
                    out[view.name] = (view.times[rows], view.numbers[rows], strings, codes)
                    if blocks is not None:
                        blocks[view.name] = RowBlock(view, rows)
            return out, self.texts

    def _rows(
        self,
        group: _Group,
        join_keys: tuple[str, ...],
        group_keys: Sequence[Hashable] | ByViewer,
        encode: Encode | None,
    ) -> np.ndarray:
        """The cached row of each key, loading the missing ones."""
        if isinstance(group_keys, ByViewer):
            others = group_keys.others
            mine = group.by_viewer.get(group_keys.viewer)
            if mine is not None:
                try:  # warm: one int lookup per pair
                    return np.fromiter(map(mine.__getitem__, others), "int64", len(others))
                except KeyError:
                    pass
            pairs = group_keys.pairs()
            self._load_missing(group, join_keys, pairs, encode)
            rows = np.fromiter(map(group.index.__getitem__, pairs), "int64", len(pairs))
            mine = group.by_viewer.setdefault(group_keys.viewer, {})
            mine.update(zip(others, rows.tolist(), strict=True))
            return rows
        index = group.index
        try:  # warm: every entity cached, one pass
            return np.fromiter(map(index.__getitem__, group_keys), "int64", len(group_keys))
        except KeyError:
            self._load_missing(group, join_keys, group_keys, encode)
            return np.fromiter(map(index.__getitem__, group_keys), "int64", len(group_keys))

    def _group(self, join_keys: tuple[str, ...], wanted: int) -> _Group:
        group = self.groups.get(join_keys)
        if group is None or len(group) + wanted > self.max_rows:
            group = self.groups[join_keys] = _Group(self.layouts[join_keys])
        return group

    def _load_missing(
        self,
        group: _Group,
        join_keys: tuple[str, ...],
        keys: Sequence[Hashable],
        encode: Encode | None,
    ) -> None:
        index = group.index
        missing = [k for k in dict.fromkeys(keys) if k not in index]
        if not missing:
            return
        store_keys = (
            encode(join_keys, missing) if encode is not None else cast(list[bytes], missing)
        )
        if join_keys in self.viewers:
            blobs = self._viewer_blobs(group, join_keys, missing, store_keys)
        else:
            blobs = self.fetch([(view.name, store_keys) for view in group.views])
        start = len(index)
        for view, view_blobs in zip(group.views, blobs, strict=True):
            view.put(start, decode(view.layout, view_blobs, self.texts))
        for i, key in enumerate(missing):
            index[key] = start + i

    def _viewer_blobs(
        self,
        group: _Group,
        join_keys: tuple[str, ...],
        missing: list[Hashable],
        store_keys: list[bytes],
    ) -> list[list[bytes | None]]:
        """`fetch`'s answer for `missing`, from one read per viewer among them."""
        position, read_viewer = self.viewers[join_keys]
        names = [view.name for view in group.views]
        found: list[dict[bytes, bytes]] = [{} for _ in names]
        for viewer in dict.fromkeys(cast(tuple, key)[position] for key in missing):
            for mine, theirs in zip(found, read_viewer(names, viewer), strict=True):
                mine.update(theirs)
        return [[blobs.get(key) for key in store_keys] for blobs in found]
