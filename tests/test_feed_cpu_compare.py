"""`bench.feed_cpu --compare`: the check that an optimised feed path serves what the old one did
(same posts in the same order, sources, counts and pages; scores within 1e-9)."""

from pathlib import Path

import numpy as np

from bench.feed_cpu import compare


def _feeds(path: Path, posts: list[int], scores: list[float]) -> Path:
    np.savez(
        path,
        **{  # type: ignore[arg-type]
            "7_post": np.array(posts),
            "7_score": np.array(scores),
            "7_source": np.array(["pushed"] * len(posts)),
            "7_counts": np.array([10, len(posts), 0]),
            "7_page": np.array(posts[:2]),
        },
    )
    return path


def test_equal_feeds_pass_and_any_difference_fails(tmp_path: Path) -> None:
    old = _feeds(tmp_path / "old.npz", [3, 1, 2], [0.9, 0.5, 0.1])
    assert compare(old, _feeds(tmp_path / "same.npz", [3, 1, 2], [0.9, 0.5 + 1e-12, 0.1]))
    assert not compare(old, _feeds(tmp_path / "order.npz", [1, 3, 2], [0.9, 0.5, 0.1]))
    assert not compare(old, _feeds(tmp_path / "score.npz", [3, 1, 2], [0.9, 0.5 + 1e-6, 0.1]))
