"""Feature columns as plain arrays: what serving hands the ranker instead of a DataFrame.

Building a 1,000 x 200 DataFrame per request and pulling every column back out of it cost about
half of an uncached feed (block construction, per-column `frame[name]`, nullable-array
conversions). `ColumnTable` is the few things the ranker's preprocessing reads from a frame
(`len`, `in`, `[name]`, `columns`), over a dict of numpy arrays; numbers arrive as float64 with
NaN for null, texts as object arrays with None. The preprocessing and derived columns read either
through `floats` and `texts`, so training (DataFrames) and serving (tables) share one code path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

import numpy as np
import pandas as pd

# nullable numbers and booleans: converted to float64 with NaN for NA in one call
MASKED_ARRAYS = (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)


class Codes(Protocol):
    """Texts as integer codes (`feature_repo.text_codes.TextCodes`), seen from here."""

    def lookup(self, codes: np.ndarray, mapping: dict[str, int]) -> np.ndarray: ...


class Block(Protocol):
    """Where some numeric columns come from (`featurestore.decoded.RowBlock`, seen from here):
    the rows of one feature view's entity matrix, row `rows[i]` for table row i, `expired[i]`
    read as missing; `derived_rows` keeps arrays computed from the entity rows between tables."""

    @property
    def rows(self) -> np.ndarray: ...

    @property
    def expired(self) -> np.ndarray | None: ...

    def derived_rows(
        self, owner: object, compute: Callable[[np.ndarray], tuple[np.ndarray, ...]]
    ) -> tuple[np.ndarray, ...]: ...


class ColumnTable:
    """Equal-length columns by name; `to_frame()` when a real DataFrame is needed (explain).

    `codes`: for some text columns, the same texts as int64 codes (-1 missing) of `encoder`, so
    the preprocessing maps them to vocabulary indices by one gather instead of a dict lookup
    per row (the online reader's decoded cache encodes each entity's texts once).

    `blocks`: for some numeric columns, their `Block` and column in its entity matrix (each
    still in `data` too): the preprocessing then scales each entity's row once and gathers the
    scaled values per table, rather than scaling ~1,000 rows of ~70 columns per feed."""

    def __init__(
        self,
        data: dict[str, Any],
        rows: int,
        codes: dict[str, np.ndarray] | None = None,
        encoder: Codes | None = None,
        blocks: Mapping[str, tuple[Block, int]] | None = None,
    ) -> None:
        self.data = data
        self.rows = rows
        self.codes = codes if encoder is not None and codes is not None else {}
        self.encoder = encoder
        self.blocks = blocks or {}

    def coded(self, name: str) -> tuple[np.ndarray, Codes] | None:
        """The codes of text column `name` and their encoder, if the table has them."""
        codes = self.codes.get(name)
        if codes is None or self.encoder is None:
            return None
        return codes, self.encoder

    def __len__(self) -> int:
        return self.rows

    def __contains__(self, name: object) -> bool:
        return name in self.data

    def __getitem__(self, name: str) -> Any:
        return self.data[name]

    @property
    def columns(self) -> list[str]:
        return list(self.data)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.data, index=pd.RangeIndex(self.rows), copy=False)

    def take(self, positions: Sequence[int] | np.ndarray) -> pd.DataFrame:
        """The rows at `positions` as a DataFrame (index 0..n-1), for explanations."""
        rows = np.asarray(positions, dtype="int64")
        data = {name: np.asarray(values)[rows] for name, values in self.data.items()}
        return pd.DataFrame(data, index=pd.RangeIndex(len(rows)), copy=False)


Table: TypeAlias = pd.DataFrame | ColumnTable


def take_rows(table: Table, positions: Sequence[int] | np.ndarray) -> pd.DataFrame:
    """The rows at `positions` of a DataFrame or a `ColumnTable`, as a DataFrame."""
    if isinstance(table, ColumnTable):
        return table.take(positions)
    return table.iloc[np.asarray(positions, dtype="int64")]


def floats(values: Any) -> np.ndarray:
    """Any numeric, boolean or nullable column (a Series or an array) as float64, NaN for null."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return values.astype(np.float64, copy=False)
    array = values.array if isinstance(values, pd.Series) else values
    if isinstance(array, pd.arrays.NumpyExtensionArray) and array.dtype.kind in "biuf":
        return np.asarray(array.to_numpy(), dtype=np.float64)
    if isinstance(array, MASKED_ARRAYS):
        return array.to_numpy(dtype=np.float64, na_value=np.nan)
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    try:
        return np.asarray(series.astype("float64"), dtype=np.float64)
    except (TypeError, ValueError):
        return np.asarray(pd.to_numeric(series, errors="coerce"), dtype=np.float64)


def texts(values: Any) -> np.ndarray:
    """A column as an object array (strings, and None/NA/NaN for missing)."""
    if isinstance(values, np.ndarray) and values.dtype == object:
        return values
    if isinstance(values, pd.Series):
        return values.astype(object).to_numpy()
    return np.asarray(values, dtype=object)
