"""The ablation ladder on a generated workload's ground truth, without building the platform.

The "features" here are two true factors copied into feature-like columns (`signal__interest`,
`signal__affinity`) plus a noise group, so the expected order is known: the truth regression
reaches the oracle (the truth is logistic in its recorded factors), dropping a real signal group
costs AUC while dropping the noise group does not, and dropping the interest factor from the
truth regression costs AUC (the new TruthModel term is real). 300 users x 2 days: about 10 s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from featurestore.training import LABEL
from ml.ranking.dataset import time_split
from ml.ranking.evaluate import safe_auc
from ml.ranking.ladder import TRUE_FACTORS, build_ladder, feature_groups
from workload.config import WorkloadConfig
from workload.generator import generate


@pytest.fixture(scope="module")
def truth() -> pd.DataFrame:
    return generate(
        WorkloadConfig(users=300, days=2, seed=5, bad_fraction=0.0)
    ).ground_truth.impressions


def test_ground_truth_records_every_factor(truth: pd.DataFrame) -> None:
    assert set(TRUE_FACTORS) <= set(truth.columns)


def test_ladder_orders_rungs_and_groups(truth: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "impression_id": truth["event_id"],
            "user_id": truth["viewer"],
            "post_id": truth["post_id"],
            "author_id": truth["author"],
            "event_timestamp": truth["shown_at"],
            LABEL: truth["engaged"],
            "signal__interest": truth["interest_match"],
            "signal__affinity": truth["affinity"],
            "noise__draw": rng.standard_normal(len(truth)),
        }
    )
    splits = time_split(frame)
    hold = splits.holdout.merge(truth, left_on="impression_id", right_on="event_id")
    oracle = safe_auc(hold["engaged"].astype(int).to_numpy(), hold["true_probability"].to_numpy())
    ladder = build_ladder(splits, {"oracle": oracle}, truth)

    assert set(feature_groups(["signal__a", "signal__b", "position"])) == {"signal", "position"}
    # the truth regression is the oracle up to estimation noise on about 2,000 holdout rows
    assert ladder.rungs["truth_logistic_regression"] > oracle - 0.02
    assert ladder.drop_true_factor["interest_match"] < ladder.rungs["truth_logistic_regression"]
    assert ladder.drop_feature_group["signal"] < ladder.drop_feature_group["noise"] - 0.02
    assert set(ladder.metrics()) >= {"ladder_oracle_auc", "ladder_drop_group_signal_auc"}
