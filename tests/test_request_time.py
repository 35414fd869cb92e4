"""The request-time arithmetic of feature_repo.request_time that has no platform to need.

The viewer x hashtag affinity: bucket counts in, two shares out; a post without hashtags or a
viewer without history (NaN: no feature row) scores 0, never an error, and the bucket count is
the dbt project's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from feature_repo.request_time import HASHTAG_BUCKETS, HASHTAG_PRIOR, hashtag_affinity_arrays

PROJECT = Path(__file__).resolve().parents[1] / "transformations" / "dbt_project.yml"


def test_bucket_count_is_the_dbt_projects() -> None:
    assert yaml.safe_load(PROJECT.read_text())["vars"]["hashtag_buckets"] == HASHTAG_BUCKETS


def test_hashtag_affinity_scores_matches_and_missing_values() -> None:
    viewer = np.zeros((4, HASHTAG_BUCKETS))
    viewer[:3, 3] = 6.0  # rows 0-2: a viewer whose 6 engaged tags all fell in bucket 3
    viewer_total = np.array([6.0, 6.0, 6.0, np.nan])
    viewer[3] = np.nan  # row 3: no history at all
    post = np.zeros((4, HASHTAG_BUCKETS))
    post[0, 3] = 1.0  # one tag, in the viewer's bucket
    post[1, [3, 5]] = 1.0  # two tags, one in the viewer's bucket
    post[2] = np.nan  # no hashtags: no feature row
    post[3, 3] = 1.0
    out = hashtag_affinity_arrays(viewer, viewer_total, post)
    share = 6.0 / (6.0 + HASHTAG_PRIOR)
    np.testing.assert_allclose(out["hashtag_affinity"], [share, share / 2, 0.0, 0.0])
    np.testing.assert_allclose(out["hashtag_matched_share"], [1.0, 0.5, 0.0, 0.0])
