"""The Spark path of training-set preparation: the same time split and the same per-feature
training statistics as the pandas path (`ml.ranking.dataset.time_split` and
`ml.ranking.preprocessing.Preprocessing.fit`), computed where the data is too big for one
process. `SPARK_MASTER` decides where it runs; the result is a `Preprocessing` the ranker loads
unchanged, and the three splits written back as Parquet.

Equivalences kept on purpose:
- boundaries are exact quantiles of `event_timestamp` with linear interpolation (Spark's
  `percentile`, as pandas' `quantile`), and a row goes to the later split when it is at or after
  a boundary;
- numeric statistics use nulls (and NaN) as 0, log1p when the present values are non-negative
  with a maximum above 1, the population standard deviation (numpy's default), and a missing
  indicator when any value is missing;
- vocabularies are the 64 most frequent strings, sorted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ml.ranking.preprocessing import (
    MAX_VOCABULARY,
    ROW_COLUMNS,
    CategoricalColumn,
    NumericColumn,
    Preprocessing,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

TIME = "event_timestamp"
CONTEXT = ("position", "surface")


@dataclass
class SparkPreparation:
    rows: dict[str, int]
    validation_starts_at: pd.Timestamp
    holdout_starts_at: pd.Timestamp
    preprocessing: Preprocessing
    output: Path | None


def time_boundaries(
    frame: DataFrame, validation: float = 0.15, holdout: float = 0.15, unit: str = "us"
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(validation start, holdout start): the `1 - holdout - validation` and `1 - holdout`
    quantiles of event_timestamp, interpolated linearly and then truncated to the column's
    `unit` (s, ms or us), as pandas does for a datetime column of that unit."""
    from pyspark.sql import functions as F

    if not 0 < validation < 1 or not 0 < holdout < 1 or validation + holdout >= 1:
        raise ValueError(
            f"validation ({validation}) and holdout ({holdout}) must be shares in (0, 1) "
            "that leave rows to train on"
        )
    if TIME not in frame.columns:
        raise ValueError("a training set needs an event_timestamp column to split by time")
    micros = F.unix_micros(F.col(TIME).cast("timestamp")).cast("double")
    row = frame.select(
        F.percentile(micros, 1 - holdout - validation).alias("validation"),
        F.percentile(micros, 1 - holdout).alias("holdout"),
    ).first()
    if row is None or row["holdout"] is None:
        raise ValueError("the training set is empty")
    return _timestamp(row["validation"], unit), _timestamp(row["holdout"], unit)


UNIT_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1}


def _timestamp(micros: float, unit: str) -> pd.Timestamp:
    """Spark's interpolated microseconds (a double, within a fraction of a microsecond of the
    exact value) truncated to the unit: rounding to whole microseconds first keeps a boundary
    that falls exactly on a row's time from slipping below it."""
    step = UNIT_MICROS[unit]
    whole = (round(micros) // step) * step
    return pd.Timestamp(whole * 1000, unit="ns", tz="UTC")


def timestamp_unit(parquet: str | Path) -> str:
    """The unit of event_timestamp in a Parquet file or directory (Spark reads all as us)."""
    import pyarrow.dataset as ds

    field = ds.dataset(str(parquet), format="parquet").schema.field(TIME)
    unit = getattr(field.type, "unit", "us")
    if unit not in UNIT_MICROS:
        raise ValueError(f"{TIME} is stored in {unit}; Spark reads only s, ms or us precision")
    return str(unit)


def feature_columns(frame: DataFrame) -> list[str]:
    """Every column but the row identifiers and label; request context kept (as in training)."""
    return [c for c in frame.columns if c not in ROW_COLUMNS]


def fit_statistics(train: DataFrame, columns: list[str]) -> Preprocessing:
    """`Preprocessing.fit(train, columns, derive=False)`, computed by Spark in two passes."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, StringType, TimestampNTZType, TimestampType

    types = dict((f.name, f.dataType) for f in train.schema.fields)
    numeric = [
        c
        for c in columns
        if not isinstance(types[c], StringType | TimestampType | TimestampNTZType | DateType)
    ]
    text = [c for c in columns if isinstance(types[c], StringType)]

    def value(name: str) -> Column:
        column = F.col(name).cast("double")
        return F.when(F.isnan(column), None).otherwise(column)

    # pass 1: what decides log1p and the missing indicator
    first_pass = train.select(
        F.count(F.lit(1)).alias("rows"),
        *[F.min(value(c)).alias(f"min_{i}") for i, c in enumerate(numeric)],
        *[F.max(value(c)).alias(f"max_{i}") for i, c in enumerate(numeric)],
        *[F.count(value(c)).alias(f"present_{i}") for i, c in enumerate(numeric)],
    ).first()
    assert first_pass is not None
    rows = int(first_pass["rows"])
    log1p = [
        first_pass[f"present_{i}"] > 0
        and first_pass[f"min_{i}"] >= 0
        and first_pass[f"max_{i}"] > 1.0
        for i in range(len(numeric))
    ]

    # pass 2: mean and population std of the transformed values
    def transformed(i: int, name: str) -> Column:
        filled = F.coalesce(value(name), F.lit(0.0))
        return F.log1p(F.greatest(filled, F.lit(0.0))) if log1p[i] else filled

    second_pass = train.select(
        *[F.avg(transformed(i, c)).alias(f"mean_{i}") for i, c in enumerate(numeric)],
        *[F.stddev_pop(transformed(i, c)).alias(f"std_{i}") for i, c in enumerate(numeric)],
        *[F.min(transformed(i, c)).alias(f"low_{i}") for i, c in enumerate(numeric)],
        *[F.max(transformed(i, c)).alias(f"high_{i}") for i, c in enumerate(numeric)],
    ).first()
    assert second_pass is not None
    spec = Preprocessing()
    for i, name in enumerate(numeric):
        std = second_pass[f"std_{i}"]
        std = float(std) if std is not None and std > 1e-9 else 1.0
        mean = float(second_pass[f"mean_{i}"] or 0.0)
        low, high = second_pass[f"low_{i}"], second_pass[f"high_{i}"]
        spec.numeric.append(
            NumericColumn(
                name=name,
                log1p=bool(log1p[i]),
                mean=mean,
                std=std,
                missing_indicator=bool(first_pass[f"present_{i}"] < rows),
                low=(float(low) - mean) / std if low is not None else -math.inf,
                high=(float(high) - mean) / std if high is not None else math.inf,
                observed=bool(first_pass[f"present_{i}"]),
            )
        )
    for name in text:
        counts = (
            train.where(F.col(name).isNotNull())
            .groupBy(name)
            .count()
            .orderBy(F.desc("count"), F.asc(name))
            .limit(MAX_VOCABULARY)
            .collect()
        )
        vocabulary = sorted(str(r[name]) for r in counts)
        most = str(counts[0][name]) if counts else ""
        spec.categorical.append(CategoricalColumn(name, vocabulary, most))
    # the pandas path keeps the caller's column order: numeric first, then text, each in order
    return spec


def prepare_training_set(
    spark: SparkSession,
    parquet: str | Path,
    *,
    validation: float = 0.15,
    holdout: float = 0.15,
    columns: list[str] | None = None,
    output: Path | None = None,
) -> SparkPreparation:
    """Split a training-set Parquet by time and fit the feature statistics on its train split;
    with `output`, write `train/`, `validation/` and `holdout/` Parquet directories there."""
    from pyspark.sql import functions as F

    frame = spark.read.parquet(str(parquet))
    validation_starts, holdout_starts = time_boundaries(
        frame, validation, holdout, timestamp_unit(parquet)
    )
    times = F.col(TIME).cast("timestamp")
    # literals in whole microseconds: the boundaries were truncated to the column's unit
    validation_starts = validation_starts.as_unit("us")
    holdout_starts = holdout_starts.as_unit("us")
    parts = {
        "train": frame.where(times < F.lit(validation_starts.to_pydatetime())),
        "validation": frame.where(
            (times >= F.lit(validation_starts.to_pydatetime()))
            & (times < F.lit(holdout_starts.to_pydatetime()))
        ),
        "holdout": frame.where(times >= F.lit(holdout_starts.to_pydatetime())),
    }
    rows = {name: part.count() for name, part in parts.items()}
    if min(rows.values()) == 0:
        raise ValueError(f"a split is empty ({rows}): the training set is too small or too short")
    preprocessing = fit_statistics(parts["train"], columns or feature_columns(frame))
    if output is not None:
        for name, part in parts.items():
            part.write.mode("overwrite").parquet(str(output / name))
    return SparkPreparation(rows, validation_starts, holdout_starts, preprocessing, output)
