"""`RankerParams.explored_rows`: how serving's exploration slice enters ranker training.

A synthetic training set where the served (ranked) rows and the explored ones disagree, as they
do under a feedback loop: among explored rows (a uniform sample) engagement rises with x, among
the ranked ones (chosen by an earlier ranker) it falls. The default trains on everything and
learns the majority's direction; `only` must learn the explored direction, `inverse_share` must
weight the explored rows up. A few seconds: a tiny network, a few epochs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from impression_frames import impression_keys

from ml.ranking.evaluate import safe_auc
from ml.ranking.explored_rows import NoExploredRows, select_rows
from ml.ranking.model import RankerParams
from ml.ranking.preprocessing import feature_columns
from ml.ranking.train import train_ranker

SHARE = 0.2  # explored share of the rows


def disagreeing_frame(rows: int = 4000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, rows)
    explored = rng.random(rows) < SHARE
    slope = np.where(explored, 5.0, -5.0)
    engaged = rng.random(rows) < 1 / (1 + np.exp(-slope * x))
    return pd.DataFrame(
        {
            **impression_keys(rng, rows),
            "is_engaged": engaged,
            "explored": explored,
            "x": x,
        }
    )


PARAMS = RankerParams(hidden=(4,), dropout=0.0, l2=1e-5, learning_rate=2e-2, epochs=15)


def explored_holdout_auc(mode: str) -> float:
    frame = disagreeing_frame()
    report = train_ranker(
        frame,
        RankerParams(**{**PARAMS.__dict__, "explored_rows": mode}),
        progress=False,
        ladder_enabled=False,
    )
    holdout = report.splits.holdout
    flags = holdout["explored"].to_numpy()
    scores = report.scorer.predict(holdout)[flags]
    y = holdout["is_engaged"].to_numpy()[flags].astype(np.int64)
    return safe_auc(y, scores)


def test_the_flag_is_a_row_attribute_not_a_feature() -> None:
    assert feature_columns(disagreeing_frame()) == ["x"]


def test_default_learns_the_served_rows_and_the_options_the_explored_ones() -> None:
    assert explored_holdout_auc("all") < 0.3  # the majority's (ranked) direction
    assert explored_holdout_auc("only") > 0.75  # the uniform slice's direction
    # explored rows (a fifth) weighted 5x outweigh the ranked ones: their direction wins
    assert explored_holdout_auc("inverse_share") > 0.6


def test_inverse_share_weights_explored_rows_up_and_all_leaves_every_weight_one() -> None:
    frame = disagreeing_frame()
    same, weights = select_rows(frame, "all", "train")
    assert same is frame and weights is None  # keras's default: the training of before
    same, weights = select_rows(frame, "inverse_share", "train")
    assert same is frame and weights is not None
    flags = frame["explored"].to_numpy()
    assert np.allclose(weights[~flags], 1.0)
    assert np.allclose(weights[flags], len(frame) / flags.sum())
    assert weights[flags].sum() == pytest.approx(len(frame), rel=1e-5)
    chosen, weights = select_rows(frame, "only", "train")
    assert weights is None and len(chosen) == flags.sum() and chosen["explored"].all()


def test_a_mode_that_needs_explored_rows_refuses_a_set_without_them() -> None:
    before_the_flag = disagreeing_frame().drop(columns="explored")
    assert select_rows(before_the_flag, "all", "train")[1] is None
    for mode in ("only", "inverse_share"):
        with pytest.raises(NoExploredRows, match="has none"):
            select_rows(before_the_flag, mode, "train")
    with pytest.raises(ValueError, match="explored_rows must be one of"):
        RankerParams(explored_rows="explored")
