"""sklearn's Newton-Cholesky Hessian in row blocks: the logistic regressions' memory peak.

sklearn computes the Hessian `X.T @ diag(h) @ X` of a dense design as `X.T @ (h[:, None] * X)`:
a second array the size of the whole design. With the ranker's inputs (about 290 float64 columns)
that copy is 2.4 GB at a million training rows, and it is the models stage's peak (issue 17):
the baseline and every drop-one refit of the ladder make one. `blocked_hessian()` swaps in the
same product summed over blocks of BLOCK_ROWS rows while a fit runs, so the copy is one block;
the sum only changes the order of the additions (float noise; the gradient, which decides
convergence, is computed by sklearn unchanged).

The swap names a private sklearn function (`sklearn.linear_model._linear_loss.sandwich_dot`);
when a future sklearn renames it, fits run on sklearn's own code and a test says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy import sparse

BLOCK_ROWS = 65_536
_lock = threading.RLock()


def blocked_sandwich(
    X: Any, W: np.ndarray, block_rows: int, *, fallback: Callable[..., Any]
) -> Any:
    """`X.T @ diag(W) @ X` for a dense X, one block of rows at a time (sparse: `fallback`)."""
    if sparse.issparse(X) or X.shape[0] <= block_rows:
        return fallback(X, W)
    out = np.zeros((X.shape[1], X.shape[1]), dtype=X.dtype)
    for start in range(0, X.shape[0], block_rows):
        block = X[start : start + block_rows]
        out += block.T @ (W[start : start + block_rows, None] * block)
    return out


def hessian_module() -> Any | None:
    """The sklearn module whose `sandwich_dot` the Newton-Cholesky solver calls, if it has one."""
    from sklearn.linear_model import _linear_loss

    return _linear_loss if callable(getattr(_linear_loss, "sandwich_dot", None)) else None


@contextmanager
def blocked_hessian(block_rows: int | None = None) -> Iterator[bool]:
    """While open, sklearn's Hessians are summed in blocks of rows (BLOCK_ROWS by default);
    yields whether the swap took place (False: this sklearn has no `sandwich_dot`, fits run
    unchanged)."""
    rows = block_rows or BLOCK_ROWS
    module = hessian_module()
    if module is None:
        yield False
        return
    with _lock:
        original = module.sandwich_dot

        def sandwich_dot(X: Any, W: np.ndarray) -> Any:
            return blocked_sandwich(X, W, rows, fallback=original)

        module.sandwich_dot = sandwich_dot
        try:
            yield True
        finally:
            module.sandwich_dot = original
