"""The models stage's memory (issue 17): the logistic regressions (the baseline and every drop-one
refit of the ladder) must not hold a second design-sized array, and the shortcuts must give the
same numbers as the plain path. Peaks are traced allocations (`tracemalloc`, which numpy reports
to), relative to the design matrix's own size, so they do not depend on the machine.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from ml.ranking import baselines, sandwich
from ml.ranking.baselines import LogisticBaseline
from ml.ranking.preprocessing import Preprocessing

ROWS = 24_000


def _frame(rows: int = ROWS, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """A training-set-like frame: counts, rates with nulls and a few texts, and its labels."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for j in range(30):
        data[f"counts__c{j}"] = rng.poisson(3 + j, rows).astype("int64")
        rate = rng.normal(j, 1.0, rows)
        rate[rng.random(rows) < 0.1] = np.nan
        data[f"rates__r{j}"] = rate
    data["surface"] = rng.choice(["home_feed", "explore", "profile"], rows)
    data["user_profile__country"] = rng.choice([f"c{i}" for i in range(20)], rows)
    frame = pd.DataFrame(data)
    logit = 0.3 * (frame["rates__r0"].fillna(0) - 0) + 0.1 * frame["counts__c1"] - 1.0
    labels = (rng.random(rows) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(np.int64)
    return frame, labels


def _traced_peak(work) -> tuple[object, int]:
    """`work()`'s result and the most bytes it had allocated at once beyond what it started with."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        result = work()
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    return result, peak


def _plain_design(spec: Preprocessing, frame: pd.DataFrame) -> np.ndarray:
    """The design as it was built before issue 17: float32 inputs + one-hot, then widened."""
    inputs = spec.transform(frame)
    one_hot = np.zeros((len(frame), spec.category_count), dtype=np.float32)
    rows = np.repeat(np.arange(len(frame)), len(spec.categorical))
    one_hot[rows, inputs["categorical"].ravel()] = 1.0
    return np.concatenate([inputs["numeric"], one_hot], axis=1).astype(np.float64)


def test_design_in_row_chunks_equals_the_whole_frame_design(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame, _ = _frame(5_000)
    spec = Preprocessing.fit(frame, list(frame.columns))
    monkeypatch.setattr(baselines, "DESIGN_ROWS", 777)  # several chunks and a short last one
    chunked = LogisticBaseline(spec).design(frame)

    assert chunked.dtype == np.float64
    assert np.array_equal(chunked, _plain_design(spec, frame))


def test_blocked_hessian_equals_sklearns_and_is_swapped_in() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10_000, 40))
    W = rng.random(10_000)
    module = sandwich.hessian_module()

    assert module is not None, "sklearn no longer has sandwich_dot: the Hessian is whole again"
    expected = module.sandwich_dot(X, W)
    blocked = sandwich.blocked_sandwich(X, W, 999, fallback=module.sandwich_dot)
    np.testing.assert_allclose(blocked, expected, rtol=1e-12, atol=1e-9)
    original = module.sandwich_dot
    with sandwich.blocked_hessian(999) as swapped:
        assert swapped and module.sandwich_dot is not original
    assert module.sandwich_dot is original


def test_logistic_baseline_fits_without_a_second_design_sized_array(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame, labels = _frame()
    spec = Preprocessing.fit(frame, list(frame.columns))
    design_bytes = LogisticBaseline(spec).design(frame).nbytes
    monkeypatch.setattr(baselines, "DESIGN_ROWS", 2_000)
    monkeypatch.setattr(sandwich, "BLOCK_ROWS", 2_000)
    fitted, peak = _traced_peak(lambda: LogisticBaseline(spec).fit(frame, labels))

    # the design itself plus blocks: sklearn's whole `h * X` copy (another design) or a float32
    # design beside the float64 one would each take the peak past 1.5 designs
    assert peak < 1.35 * design_bytes, f"peak {peak / design_bytes:.2f} designs"
    plain = LogisticRegression(solver="newton-cholesky", max_iter=baselines.MAX_ITER)
    plain.fit(_plain_design(spec, frame), labels)
    model = fitted._model  # type: ignore[attr-defined]
    np.testing.assert_allclose(model.coef_, plain.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.intercept_, plain.intercept_, rtol=1e-9, atol=1e-12)
