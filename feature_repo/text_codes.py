"""Texts as integer codes, so on-demand views with text inputs run as array code.

Two request-time features compare texts: the viewer's home city against the author's (or the
post's tagged place), and the viewer's signup topics against the author's (a Jaccard overlap of
comma-joined lists). Done on Python strings, row by row, through Feast's pandas transformation,
they doubled the CPU of an uncached feed (~1,000 candidates). With codes, "same city" is one
integer comparison per row and the topic overlap two boolean reductions over each text's token
row; the online reader's decoded cache (`featurestore.decoded`) encodes each entity's texts once,
not once per request.

The same functions serve Feast's pandas transformations (`feature_repo.request_time`), which
encode their string columns with a fresh `TextCodes` first: one definition of the arithmetic.

Codes are only comparable within one `TextCodes`. Missing texts (None, NaN, NA, "") are -1,
which never equals a real code.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

MISSING = -1


class TextCodes:
    """Text -> code (0, 1, ... in order of first sight), and each text's set of tokens."""

    def __init__(self, separator: str = ",") -> None:
        self.separator = separator
        self.index: dict[str, int] = {}
        self.texts: list[str] = []
        self.token_index: dict[str, int] = {}
        # row 0: missing (no tokens); row c + 1: the tokens of code c, for codes seen by `tokens`
        self._tokens = np.zeros((1, 0), dtype=bool)
        # id(mapping) -> (mapping, table): row 0 missing, row c + 1 mapping's value of code c
        self._lookups: dict[int, tuple[dict[str, int], np.ndarray]] = {}
        self._lock = threading.Lock()  # encoders and readers may run in several threads

    def __len__(self) -> int:
        return len(self.texts)

    def encode(self, values: Any) -> np.ndarray:
        """Codes of `values` (any array-like of texts and missing values), same shape, int64."""
        array = np.asarray(values, dtype=object)
        flat = array.reshape(-1)
        index = self.index
        get = index.get
        # known texts in one pass (-2: a text not seen yet, or ""), then the new ones
        out = np.fromiter(
            (get(v, -2) if isinstance(v, str) else MISSING for v in flat), "int64", len(flat)
        )
        new = np.flatnonzero(out == -2)
        if len(new):
            with self._lock:
                for i in new:
                    text = flat[i]
                    if not text:
                        out[i] = MISSING
                        continue
                    code = index.get(text)
                    if code is None:  # listed before it is published: `tokens` needs its row
                        code = len(self.texts)
                        self.texts.append(text)
                        index[text] = code
                    out[i] = code
        return out.reshape(array.shape)

    def tokens(self, *codes: np.ndarray) -> list[np.ndarray]:
        """For each array of codes, bool [len(codes), tokens]: which separator-split tokens each
        text holds (a missing text: none). The arrays of one call share their columns."""
        with self._lock:
            if len(self._tokens) <= len(self.texts):
                self._add_token_rows()
            table = self._tokens
        return [table[np.asarray(c, dtype="int64") + 1] for c in codes]

    def lookup(self, codes: np.ndarray, mapping: dict[str, int]) -> np.ndarray:
        """`mapping.get(text, 0)` of each code's text, 0 for missing codes, as int32: one gather
        from a table per mapping (kept while the mapping is, extended as texts are added) instead
        of a dict lookup per row. The ranker's vocabularies map its categoricals this way."""
        with self._lock:
            held = self._lookups.get(id(mapping))
            table = held[1] if held is not None and held[0] is mapping else np.zeros(1, "int32")
            if len(table) <= len(self.texts):
                done = len(table) - 1
                new = [mapping.get(text, 0) for text in self.texts[done:]]
                table = np.concatenate([table, np.asarray(new, dtype="int32")])
                self._lookups[id(mapping)] = (mapping, table)
        return table[np.asarray(codes, dtype="int64") + 1]

    def _add_token_rows(self) -> None:
        done = len(self._tokens) - 1
        rows: list[list[int]] = []
        for text in self.texts[done:]:
            row = []
            for token in set(text.split(self.separator)):
                column = self.token_index.setdefault(token, len(self.token_index))
                row.append(column)
            rows.append(row)
        table = np.zeros((len(self.texts) + 1, len(self.token_index)), dtype=bool)
        table[: done + 1, : self._tokens.shape[1]] = self._tokens
        for offset, row in enumerate(rows):
            table[done + 1 + offset, row] = True
        self._tokens = table
