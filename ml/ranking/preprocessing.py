"""The ranker's preprocessing: fitted on the training split, stored as JSON, applied identically
in training, evaluation and serving.

Numeric features: nulls become 0 (plus a missing indicator when the training split had nulls,
because "no affinity yet" is not the same as "affinity 0"), non-negative heavy-tailed counts go
through log1p, then everything is standardised with the training split's mean and standard
deviation. String features (tier, media type, country, surface) become indices into a vocabulary
learnt on the training split; index 0 is "unknown or missing", so a new country at serving time
is not an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.ranking.columns import Block, ColumnTable, Table, floats, texts
from ml.ranking.derived import BY_NAME, DERIVATIONS

# columns of a training set that identify a row, carry its label or say how it was served
# (`explored`, which training may select or weight by): never features
ROW_COLUMNS = (
    "impression_id",
    "user_id",
    "post_id",
    "author_id",
    "event_timestamp",
    "is_engaged",
    "explored",
)
# request context the ranker uses besides the feature service's columns; serving passes
# position 0 (the top slot) and the surface it ranks for
CONTEXT_COLUMNS = ("position", "surface")
MAX_VOCABULARY = 64


@dataclass
class NumericColumn:
    name: str
    log1p: bool
    mean: float
    std: float
    missing_indicator: bool
    derived_from: list[str] = field(default_factory=list)  # empty: a column of the input
    # the training split's range after standardizing; `transform` clips to it, so a value the
    # model never saw (a column empty or constant in training that later fills, a count far
    # beyond the training range) cannot saturate the score. Unbounded in scorers saved before.
    low: float = -math.inf
    high: float = math.inf
    # False: no value at all in the training split; read as missing whatever the input holds
    observed: bool = True


@dataclass
class CategoricalColumn:
    name: str
    vocabulary: list[str]
    most_frequent: str  # the occlusion baseline of explanations

    @property
    def size(self) -> int:
        return len(self.vocabulary) + 1  # + unknown/missing at index 0


@dataclass(frozen=True)
class _Steps:
    """`Preprocessing.transform`'s per-column constants, in `Preprocessing.numeric` order."""

    inputs: list[str]  # the input columns ("" for one never observed: read as missing)
    derived: list[str]
    logs: np.ndarray
    means: np.ndarray
    stds: np.ndarray
    lows: np.ndarray
    highs: np.ndarray
    indicators: list[bool]
    indicator_columns: np.ndarray  # the columns with a missing indicator, in order
    offsets: np.ndarray  # each categorical's start in the shared embedding table


@dataclass
class Preprocessing:
    numeric: list[NumericColumn] = field(default_factory=list)
    categorical: list[CategoricalColumn] = field(default_factory=list)

    @property
    def feature_names(self) -> list[str]:
        """The input columns the ranker reads (numeric first); derived columns are not inputs."""
        return [c.name for c in self.numeric if not c.derived_from] + [
            c.name for c in self.categorical
        ]

    @property
    def numeric_width(self) -> int:
        """Width of the numeric input: one value per column plus its missing indicators."""
        return len(self.numeric) + sum(c.missing_indicator for c in self.numeric)

    @property
    def category_count(self) -> int:
        """Size of the one embedding table shared by every categorical (each column its range)."""
        return sum(c.size for c in self.categorical)

    def category_offsets(self) -> list[int]:
        offsets, start = [], 0
        for column in self.categorical:
            offsets.append(start)
            start += column.size
        return offsets

    def numeric_slots(self) -> list[list[int]]:
        """For each numeric column, the positions in the numeric input that belong to it."""
        slots = [[i] for i in range(len(self.numeric))]
        extra = len(self.numeric)
        for i, column in enumerate(self.numeric):
            if column.missing_indicator:
                slots[i].append(extra)
                extra += 1
        return slots

    def feature_slots(self) -> list[tuple[list[int], list[int]]]:
        """For each of `feature_names`: its numeric input positions (with those of the derived
        columns computed from it) and its categorical positions."""
        numeric_slots = self.numeric_slots()
        by_name: dict[str, tuple[list[int], list[int]]] = {
            name: ([], []) for name in self.feature_names
        }
        for column, slots in zip(self.numeric, numeric_slots, strict=True):
            for owner in column.derived_from or [column.name]:
                if owner in by_name:
                    by_name[owner][0].extend(slots)
        for j, category in enumerate(self.categorical):
            by_name[category.name][1].append(j)
        return [by_name[name] for name in self.feature_names]

    # --- fit / transform -----------------------------------------------------------------------

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str], derive: bool = True) -> Preprocessing:
        """Learn statistics and vocabularies from the training split only (no leakage); add the
        derived columns (`ml.ranking.derived`) whose inputs are among `columns`."""
        spec = cls()
        for name in columns:
            series = frame[name]
            if _is_datetime(series):
                continue  # absolute times do not generalise; ages are features of their own
            if _is_text(series):
                counts = series.dropna().astype(str).value_counts()
                vocabulary = sorted(counts.index[:MAX_VOCABULARY].tolist())
                most = str(counts.index[0]) if len(counts) else ""
                spec.categorical.append(CategoricalColumn(name, vocabulary, most))
                continue
            values = _as_float(series)
            present = values[~np.isnan(values)]
            log1p = bool(len(present) and present.min() >= 0 and present.max() > 1.0)
            filled = np.nan_to_num(values, nan=0.0)
            if log1p:
                filled = np.log1p(np.maximum(filled, 0.0))
            spec.numeric.append(
                _standardized(
                    name,
                    filled,
                    log1p=log1p,
                    missing_indicator=bool(len(present) < len(values)),
                    observed=bool(len(present)),
                )
            )
        for derivation in DERIVATIONS if derive else ():
            if not set(derivation.inputs) <= set(columns):
                continue
            derived = np.asarray(derivation.compute(frame), dtype=np.float64)
            spec.numeric.append(
                _standardized(
                    derivation.name,
                    derived,
                    log1p=False,
                    missing_indicator=False,
                    derived_from=list(derivation.inputs),
                )
            )
        return spec

    def transform(self, frame: Table) -> dict[str, np.ndarray]:
        """Model inputs: `numeric` float32 [rows, numeric_width], `categorical` int32 [rows, k]
        (indices into the shared embedding table: column offset + vocabulary index).

        `frame` is a DataFrame (training) or a `ColumnTable` of arrays (serving): the same steps.
        Absent columns count as missing for every row, exactly like nulls."""
        rows, width = len(frame), len(self.numeric)
        steps = self._steps()
        # columns holding one value on every row (the viewer's features, which serving
        # broadcasts; absent ones) are scaled once, as one row: ~40% of a feed's matrix
        varying, constant, constant_values = _split_constant(frame, steps.inputs, rows)
        # columns still in the online reader's entity matrices: scaled once per entity
        varying, blocked = _blocked(frame, steps.inputs, varying)
        # column-major, filled in place: one matrix, no temporaries of its size (serving speed)
        raw = _numeric_matrix(
            frame, [steps.inputs[j] for j in varying], rows, len(varying) + len(steps.derived)
        )
        for j, name in enumerate(steps.derived, start=len(varying)):
            raw[:, j] = BY_NAME[name].compute(frame)
        varying += range(len(steps.inputs), width)  # fit puts the derived columns last
        missing = _scale(raw, steps, varying)
        numeric = np.empty((rows, self.numeric_width), dtype=np.float32)
        if not constant and not blocked:  # a training frame: every column as it is
            numeric[:, :width] = raw
            numeric[:, width:] = missing[:, steps.indicator_columns]
        else:
            one = np.array([constant_values], dtype=np.float64)
            missing_one = _scale(one, steps, constant)
            numeric[:, varying] = raw
            numeric[:, constant] = one
            missings = [missing]
            for block, positions, sources in blocked:
                values, absent = self._scaled_rows(block, positions, sources)
                numeric[:, positions] = values
                missings.append(absent)
                varying += positions
            numeric[:, width:] = _indicators(
                steps.indicator_columns,
                varying,
                np.concatenate(missings, axis=1) if blocked else missing,
                constant,
                missing_one,
                width,
            )
        categorical = np.tile(steps.offsets, (rows, 1))
        for j, column in enumerate(self.categorical):
            if column.name not in frame:
                continue
            lookup = self._vocabulary_lookup(j)  # 1-based; not a string or unknown: 0
            coded = frame.coded(column.name) if isinstance(frame, ColumnTable) else None
            if coded is not None and "" not in lookup:  # codes hold "" as missing
                codes, encoder = coded
                categorical[:, j] += encoder.lookup(codes, lookup)
                continue
            values = texts(frame[column.name])
            if rows and values.strides == (0,):  # one value broadcast (the viewer's, serving)
                first = values[0]
                categorical[:, j] += lookup.get(first, 0) if isinstance(first, str) else 0
                continue
            categorical[:, j] += np.fromiter(
                (lookup.get(t, 0) if isinstance(t, str) else 0 for t in values),
                dtype=np.int32,
                count=rows,
            )
        return {"numeric": numeric, "categorical": categorical}

    def _steps(self) -> _Steps:
        """The column lists and per-column constants `transform` applies, built once (a spec is
        not edited after fitting; rebuilding them cost ~0.1 ms per call at 120 columns)."""
        steps: _Steps | None = self.__dict__.get("_steps_cache")
        if steps is None:
            numeric = self.numeric
            steps = _Steps(
                inputs=[c.name if c.observed else "" for c in numeric if not c.derived_from],
                derived=[c.name for c in numeric if c.derived_from],  # fit puts them last
                logs=np.array([c.log1p for c in numeric], dtype=bool),
                means=np.array([c.mean for c in numeric], dtype=np.float64),
                stds=np.array([c.std for c in numeric], dtype=np.float64),
                lows=np.array([c.low for c in numeric], dtype=np.float64),
                highs=np.array([c.high for c in numeric], dtype=np.float64),
                indicators=[c.missing_indicator for c in numeric],
                indicator_columns=np.flatnonzero([c.missing_indicator for c in numeric]),
                offsets=np.array(self.category_offsets(), dtype=np.int32),
            )
            self.__dict__["_steps_cache"] = steps
        return steps

    def _scaled_rows(
        self, block: Block, positions: list[int], sources: list[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The scaled values and missing flags, one row per table row, of the numeric columns at
        `positions` whose raw values are the columns `sources` of `block`'s entity matrix: each
        entity's row scaled once (`_scale`, the same steps as on a table's columns) and kept
        beside the entity rows (`Block.derived_rows`, dropped with them); an expired row reads as
        missing, as a null does."""
        steps = self._steps()
        owners: dict[tuple[int, ...], object] = self.__dict__.setdefault("_block_owners", {})
        key = (*positions, -1, *sources)
        owner = owners.setdefault(key, _Owner())

        def scale(entities: np.ndarray) -> tuple[np.ndarray, ...]:
            matrix = np.asfortranarray(entities[:, sources])
            return matrix, _scale(matrix, steps, positions)

        values, flags = block.derived_rows(owner, scale)
        expired = block.expired
        if expired is not None and expired.any():
            empty = np.full((1, len(positions)), np.nan, order="F")
            empty_flags = _scale(empty, steps, positions)
            values[expired] = empty
            flags[expired] = empty_flags
        return values, flags

    def _vocabulary_lookup(self, j: int) -> dict[str, int]:
        """The j-th categorical's vocabulary -> 1-based index, built once (a dict lookup per
        row is several times faster than `pd.Index.get_indexer` on 1,000 objects)."""
        cache: dict[int, dict[str, int]] = self.__dict__.setdefault("_lookups", {})
        if j not in cache:
            vocabulary = self.categorical[j].vocabulary
            cache[j] = {text: i + 1 for i, text in enumerate(vocabulary)}
        return cache[j]

    def baseline(self) -> dict[str, np.ndarray]:
        """One reference input: every numeric at its training mean (not missing), every
        categorical at its most frequent value; explanations measure against it."""
        numeric = np.zeros((1, self.numeric_width), dtype=np.float32)
        local = [
            c.vocabulary.index(c.most_frequent) + 1 if c.most_frequent in c.vocabulary else 0
            for c in self.categorical
        ]
        categorical = np.array(
            [[o + i for o, i in zip(self.category_offsets(), local, strict=True)]], dtype=np.int32
        ).reshape(1, len(self.categorical))
        return {"numeric": numeric, "categorical": categorical}

    # --- JSON ----------------------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(
            {
                "numeric": [asdict(c) for c in self.numeric],
                "categorical": [asdict(c) for c in self.categorical],
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Preprocessing:
        data: dict[str, Any] = json.loads(text)
        return cls(
            numeric=[NumericColumn(**c) for c in data["numeric"]],
            categorical=[CategoricalColumn(**c) for c in data["categorical"]],
        )


def _standardized(
    name: str, filled: np.ndarray, *, log1p: bool, missing_indicator: bool, **extra: Any
) -> NumericColumn:
    """A numeric column's statistics from its training values (missing already 0, log1p done)."""
    if not len(filled):
        return NumericColumn(name, log1p, 0.0, 1.0, missing_indicator, **extra)
    mean, std = float(filled.mean()), float(filled.std())
    std = std if std > 1e-9 else 1.0
    low, high = (float(filled.min()) - mean) / std, (float(filled.max()) - mean) / std
    return NumericColumn(name, log1p, mean, std, missing_indicator, low=low, high=high, **extra)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every column of a training set that may be a feature: the feature service's columns and
    the request context (position, surface)."""
    return [c for c in frame.columns if c not in ROW_COLUMNS]


def _is_datetime(series: pd.Series) -> bool:
    return bool(pd.api.types.is_datetime64_any_dtype(series))


def _is_text(series: pd.Series) -> bool:
    if pd.api.types.is_string_dtype(series) and not pd.api.types.is_bool_dtype(series):
        sample = series.dropna()
        return bool(len(sample) == 0 or isinstance(sample.iloc[0], str))
    return False


def _as_float(series: pd.Series) -> np.ndarray:
    """Any numeric, boolean or nullable column as float64 with NaN for nulls."""
    try:
        return np.asarray(series.astype("float64"), dtype=np.float64)
    except (TypeError, ValueError):
        return np.asarray(pd.to_numeric(series, errors="coerce"), dtype=np.float64)


def _split_constant(
    frame: Table, names: list[str], rows: int
) -> tuple[list[int], list[int], list[float]]:
    """Positions in `names` of the columns varying by row, of those with one value on every row
    (a numeric array broadcast with stride 0, as serving passes the viewer's features; an
    absent name: missing), and the constant columns' values (float64, NaN = missing)."""
    varying: list[int] = []
    constant: list[int] = []
    values: list[float] = []
    for j, name in enumerate(names):
        if not name or name not in frame:
            constant.append(j)
            values.append(math.nan)
            continue
        column = frame[name]
        if (
            rows
            and isinstance(column, np.ndarray)
            and column.strides == (0,)
            and column.dtype.kind in "biuf"
        ):
            constant.append(j)
            values.append(float(column[0]))
        else:
            varying.append(j)
    return varying, constant, values


class _Owner:
    """Keys one preprocessing's scaled columns of one view in the reader's cache (by identity;
    held there, so its id is not reused while they are)."""


def _blocked(
    frame: Table, names: list[str], varying: list[int]
) -> tuple[list[int], list[tuple[Block, list[int], list[int]]]]:
    """`varying` split into the columns to read from the table and, per `Block` of the table,
    the positions in `names` of its columns and their columns in the block's entity matrix."""
    blocks = frame.blocks if isinstance(frame, ColumnTable) else None
    if not blocks:
        return varying, []
    loose: list[int] = []
    by_block: dict[int, tuple[Block, list[int], list[int]]] = {}
    for j in varying:
        found = blocks.get(names[j])
        if found is None:
            loose.append(j)
            continue
        block, column = found
        entry = by_block.get(id(block))
        if entry is None:
            entry = by_block[id(block)] = (block, [], [])
        entry[1].append(j)
        entry[2].append(column)
    return loose, list(by_block.values())


def _scale(matrix: np.ndarray, steps: _Steps, columns: list[int]) -> np.ndarray:
    """Standardize, in place, `matrix` holding the numeric columns at `columns` (positions in
    `Preprocessing.numeric`): nulls to 0, log1p where fitted, mean and std, clipped to the
    training range. Returns where the values were missing."""
    if len(columns) == len(steps.logs):
        logs, means, stds, lows, highs = (
            steps.logs,
            steps.means,
            steps.stds,
            steps.lows,
            steps.highs,
        )
    else:
        logs, means, stds = steps.logs[columns], steps.means[columns], steps.stds[columns]
        lows, highs = steps.lows[columns], steps.highs[columns]
    missing = np.isnan(matrix)
    np.copyto(matrix, 0.0, where=missing)
    if logs.any():
        np.maximum(matrix, 0.0, out=matrix, where=logs)
        np.log1p(matrix, out=matrix, where=logs)
    matrix -= means
    matrix /= stds
    np.clip(matrix, lows, highs, out=matrix)
    return missing


def _indicators(
    chosen: np.ndarray,
    varying: list[int],
    missing: np.ndarray,
    constant: list[int],
    missing_one: np.ndarray,
    width: int,
) -> np.ndarray:
    """The missing indicators of the columns `chosen`, from the varying columns' `missing`
    (rows x varying) or the constant ones' `missing_one` (1 x constant)."""
    place = np.empty(width, dtype=np.int64)  # each column's position among its kind
    place[varying] = np.arange(len(varying))
    place[constant] = np.arange(len(constant))
    is_varying = np.zeros(width, dtype=bool)
    is_varying[varying] = True
    by_row = is_varying[chosen]
    out = np.empty((len(missing), len(chosen)), dtype=bool)
    out[:, by_row] = missing[:, place[chosen[by_row]]]
    out[:, ~by_row] = missing_one[:, place[chosen[~by_row]]]
    return out


def _numeric_matrix(frame: Table, names: list[str], rows: int, width: int) -> np.ndarray:
    """The numeric columns as the first of `width` columns of a float64 matrix (NaN = missing),
    column-major; a name "" stays missing."""
    matrix = np.full((rows, width), np.nan, order="F")
    for j, name in enumerate(names):
        if name and name in frame:
            matrix[:, j] = floats(frame[name])
    return matrix
