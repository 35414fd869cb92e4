"""Decoded feature vectors kept in memory between requests, one matrix per feature view.

An uncached feed reads about 1,000 candidates x 15 views. Caching the raw blobs saved the SQLite
round trip but every request still joined, parsed and fingerprint-checked 15,000 blobs (a third
of the feature stage). Here each entity is decoded once: every view keyed by the same entity
(user, post, author, viewer x author) shares one row index, so a request costs one dict lookup
per entity and one numpy gather per view.

Texts are kept twice: as decoded (object arrays, what the ranker's categoricals read) and as
int64 codes of one `feature_repo.text_codes.TextCodes` per cache, so the on-demand views that
compare texts (same home city, topic overlap) run as array code on them.

A group keyed by (something, viewer) can be read a viewer at a time (`ReadViewer`): the first
miss of a viewer loads every entity the store holds for that viewer in one range read, and the
viewer is then complete: a later miss of that viewer is absent from the store and gets the
group's blank row (what a missing blob decodes to) without asking it. A viewer's first feed
otherwise sought ~250 (author, viewer) keys x 4 views one by one (~2.5 of its ~10 ms).

Correctness is the online store's: the whole cache starts over when the store's version changes
(`PRAGMA data_version`: any commit, e.g. a materialization; the text codes start over with it),
or when a kind of entity holds `max_rows` rows (the codes when they number `max_rows`); a
value's ttl is applied by the caller at request time on the event times kept here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from feature_repo.text_codes import TextCodes
from featurestore.vectors import VectorLayout

Fetch = Callable[[list[tuple[str, list[bytes]]]], list[list[bytes | None]]]
# the store's keys of entities given by id: (join keys, ids) -> one key per id
Encode = Callable[[tuple[str, ...], list[Hashable]], list[bytes]]
# every entity of one viewer: (views, viewer) -> the entities' ids, and blobs per view aligned
ReadViewer = Callable[[list[str], Hashable], tuple[list[Hashable], list[list[bytes | None]]]]
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


def _grow(array: np.ndarray, rows: int) -> np.ndarray:
    grown = np.empty((rows, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


class _Group:
    """The views keyed by one kind of entity, sharing a row per entity key."""

    def __init__(self, views: Sequence[tuple[str, VectorLayout]]) -> None:
        self.views = [_ViewRows(name, layout) for name, layout in views]
        self.index: dict[Hashable, int] = {}  # entity id (or store key) -> row
        self.rows = 0  # rows filled (entities absent from the store may share the blank row)
        self.complete: set[Hashable] = set()  # viewers whose every entity is in `index`
        self.blank: int | None = None  # the row of an entity the store lacks (read by viewer)

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
        keys: Mapping[tuple[str, ...], Sequence[Hashable]],
        encode: Encode | None = None,
    ) -> tuple[dict[str, Decoded], TextCodes]:
        """Times, numbers, strings and their codes of every view, one row per key (in key
        order), and the `TextCodes` those codes belong to.

        `keys` are the entities' ids as the cache indexes them (a post id, an (author, user)
        pair), and `encode(join_keys, ids)` turns those not cached yet into the store's keys;
        without it the ids are the store's keys already. Ids rather than store keys: a warm
        request then looks its ~3,000 entities up by int without building a key per entity."""
        with self.lock:
            version = self.version()
            if version != self.seen_version or len(self.texts) >= self.max_rows:
                self.groups, self.texts, self.seen_version = {}, TextCodes(), version
            out: dict[str, Decoded] = {}
            for join_keys, group_keys in keys.items():
                group = self._group(join_keys, len(group_keys))
                index = group.index
                try:  # warm: every entity cached, one pass
                    rows = np.fromiter(map(index.__getitem__, group_keys), "int64", len(group_keys))
                except KeyError:
                    self._load_missing(group, join_keys, group_keys, encode)
                    rows = np.fromiter(map(index.__getitem__, group_keys), "int64", len(group_keys))
                for view in group.views:
                    strings = codes = None
                    if view.strings is not None and view.codes is not None:
                        strings, codes = view.strings[rows], view.codes[rows]
                    out[view.name] = (view.times[rows], view.numbers[rows], strings, codes)
            return out, self.texts

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
        if join_keys in self.viewers:
            self._load_viewers(group, join_keys, missing)
            return
        store_keys = (
            encode(join_keys, missing) if encode is not None else cast(list[bytes], missing)
        )
        blobs = self.fetch([(view.name, store_keys) for view in group.views])
        start = group.rows
        for view, view_blobs in zip(group.views, blobs, strict=True):
            view.put(start, decode(view.layout, view_blobs, self.texts))
        for i, key in enumerate(missing):
            index[key] = start + i
        group.rows += len(missing)

    def _load_viewers(
        self, group: _Group, join_keys: tuple[str, ...], missing: list[Hashable]
    ) -> None:
        """Every entity of each viewer among `missing` not complete yet; the rest (the store
        has no such entity) to the blank row."""
        position, read_viewer = self.viewers[join_keys]
        index = group.index
        names = [view.name for view in group.views]
        for viewer in dict.fromkeys(cast(tuple, k)[position] for k in missing):
            if viewer in group.complete:
                continue
            ids, blobs = read_viewer(names, viewer)
            new = [i for i, key in enumerate(ids) if key not in index]
            if new:
                start = group.rows
                for view, view_blobs in zip(group.views, blobs, strict=True):
                    view.put(start, decode(view.layout, [view_blobs[i] for i in new], self.texts))
                for offset, i in enumerate(new):
                    index[ids[i]] = start + offset
                group.rows += len(new)
            group.complete.add(viewer)
        absent = [k for k in missing if k not in index]
        if absent:
            if group.blank is None:
                group.blank = group.rows
                for view in group.views:
                    view.put(group.blank, decode(view.layout, [None], self.texts))
                group.rows += 1
            for key in absent:
                index[key] = group.blank
