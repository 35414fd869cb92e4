"""The Spark path of training-set preparation gives the pandas path's split and statistics.

The built platform's feed-ranker training set is written as Parquet the way the
`features/training_set` asset writes it; Spark splits it by time and fits the per-feature
statistics; the pandas path (`time_split`, `Preprocessing.fit`) must agree row for row and to
floating-point precision.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import pytest
from platform_support import BuiltPlatform
from recommend_support import spark_for_tests

from appconfig import Settings
from ml.ranking.dataset import time_split
from ml.ranking.preprocessing import Preprocessing
from ml.spark_training import feature_columns, prepare_training_set


@pytest.fixture(scope="module")
def parquet(built_platform: BuiltPlatform, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("training") / "training_set.parquet"
    buffer = io.BytesIO()
    built_platform.training_set.frame.to_parquet(buffer, index=False)
    path.write_bytes(buffer.getvalue())
    return path


def test_spark_split_and_statistics_equal_the_pandas_path(parquet: Path, tmp_path: Path) -> None:
    frame = pd.read_parquet(parquet)
    assert len(frame) > 500
    spark = spark_for_tests(tmp_path / "spark")
    prepared = prepare_training_set(spark, parquet, output=tmp_path / "splits")

    splits = time_split(frame)
    assert prepared.validation_starts_at == splits.validation_starts_at
    assert prepared.holdout_starts_at == splits.holdout_starts_at
    for name, part in splits.items():
        assert prepared.rows[name] == len(part), name
        written = pd.read_parquet(tmp_path / "splits" / name)
        assert sorted(written["impression_id"]) == sorted(part["impression_id"]), name

    columns = feature_columns(spark.read.parquet(str(parquet)))
    expected = Preprocessing.fit(splits.train, columns, derive=False)
    assert [c.name for c in prepared.preprocessing.numeric] == [c.name for c in expected.numeric]
    for ours, theirs in zip(prepared.preprocessing.numeric, expected.numeric, strict=True):
        assert ours.log1p == theirs.log1p, ours.name
        assert ours.missing_indicator == theirs.missing_indicator, ours.name
        assert math.isclose(ours.mean, theirs.mean, rel_tol=1e-9, abs_tol=1e-9), ours.name
        assert math.isclose(ours.std, theirs.std, rel_tol=1e-6, abs_tol=1e-9), ours.name
        assert math.isclose(ours.low, theirs.low, rel_tol=1e-6, abs_tol=1e-6), ours.name
        assert math.isclose(ours.high, theirs.high, rel_tol=1e-6, abs_tol=1e-6), ours.name
        assert ours.observed == theirs.observed, ours.name
    assert [c.name for c in prepared.preprocessing.categorical] == [
        c.name for c in expected.categorical
    ]
    for ours_c, theirs_c in zip(
        prepared.preprocessing.categorical, expected.categorical, strict=True
    ):
        assert ours_c.vocabulary == theirs_c.vocabulary, ours_c.name
    assert expected.numeric and expected.categorical  # the comparison covered both kinds


def test_bad_shares_and_empty_splits_are_refused(parquet: Path, tmp_path: Path) -> None:
    spark = spark_for_tests(tmp_path / "spark")
    with pytest.raises(ValueError, match="shares"):
        prepare_training_set(spark, parquet, validation=0.6, holdout=0.5)


def test_one_spark_session_per_process_from_settings(tmp_path: Path) -> None:
    first = spark_for_tests(tmp_path / "spark")
    assert spark_for_tests(tmp_path / "other") is first  # started once, then shared
    assert first.sparkContext.master == Settings().spark_master == "local[2]"
    assert first.conf.get("spark.sql.session.timeZone") == "UTC"
