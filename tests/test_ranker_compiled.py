"""The ranker's numpy forward pass (`ml.ranking.compiled`) against Keras.

A trained network of the production architecture on a synthetic frame (fast, no platform);
tests/test_ranker.py checks the same on the built platform's holdout.
"""

import keras
import numpy as np
import pandas as pd
import pytest

from ml.ranking.compiled import NumpyForward
from ml.ranking.model import RankerParams, build_model
from ml.ranking.preprocessing import Preprocessing
from ml.ranking.scorer import RankerScorer


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"count_{i}": rng.exponential(3.0, rows) for i in range(40)})
    frame["share"] = rng.normal(size=rows)
    frame.loc[rng.random(rows) < 0.2, "share"] = np.nan  # a missing indicator
    frame["surface"] = rng.choice(["home_feed", "explore"], rows)
    tiers = np.array(["new", "casual", "power", None], dtype=object)
    frame["tier"] = tiers[rng.integers(0, len(tiers), rows)]
    return frame


@pytest.fixture(scope="module")
def trained() -> tuple[RankerScorer, pd.DataFrame]:
    train, holdout = _frame(2000, 1), _frame(1000, 2)
    spec = Preprocessing.fit(train, list(train.columns))
    model = build_model(spec, RankerParams(hidden=(16, 8)))
    labels = (train["count_0"] + train["count_1"] > 6).to_numpy("float32")
    model.fit(spec.transform(train), labels, epochs=3, verbose=0)
    return RankerScorer(spec, model), holdout


def test_numpy_forward_pass_equals_keras_on_a_holdout(
    trained: tuple[RankerScorer, pd.DataFrame],
) -> None:
    scorer, holdout = trained
    assert scorer.compiled is not None, "the production architecture must compile"
    inputs = scorer.preprocessing.transform(holdout)
    keras_scores = scorer.model.predict(inputs, batch_size=4096, verbose=0).reshape(-1)
    assert keras_scores.std() > 0.01  # a network that learnt something, not a constant
    np.testing.assert_allclose(scorer.predict(holdout), keras_scores, rtol=0, atol=1e-6)


def test_an_unknown_architecture_is_left_to_tensorflow(
    trained: tuple[RankerScorer, pd.DataFrame],
) -> None:
    scorer, holdout = trained
    numeric = keras.Input(shape=(scorer.preprocessing.numeric_width,), name="numeric")
    categorical = keras.Input(shape=(2,), name="categorical", dtype="int32")
    hidden = keras.layers.Dense(4, activation="tanh", name="hidden_0")(numeric)
    logit = keras.layers.Identity(name="logit")(keras.layers.Dense(1, name="deep_logit")(hidden))
    out = keras.layers.Activation("sigmoid", name="probability")(logit)
    model = keras.Model({"numeric": numeric, "categorical": categorical}, out)
    assert NumpyForward.of(model) is None  # tanh is not the known network
    other = RankerScorer(scorer.preprocessing, model)
    assert other.compiled is None
    inputs = scorer.preprocessing.transform(holdout)
    expected = model.predict(inputs, verbose=0).reshape(-1)
    np.testing.assert_allclose(other.predict(holdout), expected, rtol=0, atol=1e-6)
