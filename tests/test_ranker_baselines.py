"""The single-signal baselines (recency, popularity) rank by their signal whatever train says.

Their AUC is meant to be the signal's own (`ml.ranking.baselines`). On data the closed loop's
rankers shaped, the train split can disagree with the stated order (older posts engaged more
often, because a ranker only shows an old post when it is relevant); the baseline then must
still rank newer first, not score every row alike (it did: AUC 0.5000 and no Spearman on the
loop's holdouts, issue 22).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ml.ranking.baselines import AGE, recency_baseline
from ml.ranking.evaluate import safe_auc


def ages(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    return pd.DataFrame({AGE: rng.uniform(0.0, 96.0, rows)})


def test_recency_keeps_its_order_when_train_disagrees() -> None:
    rng = np.random.default_rng(3)
    train = ages(rng, 4_000)
    # older posts engaged MORE often on train: the fitted slope on "newer first" is negative
    labels = (rng.random(len(train)) < 0.05 + 0.2 * train[AGE] / 96.0).astype(np.int64)
    baseline = recency_baseline().fit(train, labels)
    holdout = ages(rng, 2_000)
    scores = baseline.predict(holdout)
    assert np.unique(scores).size == np.unique(holdout[AGE]).size  # not a constant
    assert spearmanr(scores, -holdout[AGE]).statistic > 0.999  # newer first, every row
    # with no trust in the order, the probability is the train base rate
    assert abs(scores.mean() - labels.mean()) < 0.01
    # and the AUC is the signal's own on labels that follow the stated order
    y = (rng.random(len(holdout)) < 0.3 - 0.2 * holdout[AGE] / 96.0).astype(np.int64)
    assert safe_auc(y, scores) == safe_auc(y, -holdout[AGE].to_numpy())


def test_agreeing_train_still_calibrates() -> None:
    rng = np.random.default_rng(4)
    train = ages(rng, 4_000)
    p = 0.3 - 0.25 * train[AGE] / 96.0
    labels = (rng.random(len(train)) < p).astype(np.int64)
    baseline = recency_baseline().fit(train, labels)
    scores = baseline.predict(train)
    assert spearmanr(scores, -train[AGE]).statistic > 0.999
    assert scores.max() - scores.min() > 0.1  # a real slope, not the floor
