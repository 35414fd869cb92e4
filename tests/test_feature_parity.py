"""The features did not change when their SQL moved into dbt feature tables (issue 12).

`tests/data/features_before_move/` was captured with `tests/feature_parity.py` on the code
before the move (feature SQL in `feature_repo/sql.py`, on-demand transforms in pandas with numpy
twins online). The same seeded platform built with today's code must give the same training
sets (both feature services) and the same online reads.

Recaptured in issue 13: the workload's truth changed (hashtags drawn by topic, post locations
near the author's home, engagement velocity), so the generated events and every feature value
changed with it, and four columns were added (post_attributes__first_media_log_bytes_per_pixel,
viewer_author_followed_back__is_followed_back, viewer_hashtag_features__hashtag_affinity and
__hashtag_matched_share). Before recapturing, issue 13's feature layer on
the previous generator was checked equal to the old fixture on every old column, except
post_hashtag_trends__hashtag_trend_score, which already differed on main at adcd322.

Recaptured again in issue 14 (2026-12-06): the generator's follow graph changed (closure weight
capped, a stronger same-city pull), so the events changed; before recapturing, the merged
feature layer (issue 13's friends-of-friends and topic views, issue 16's text codes) run on the
previous generator passed this test against the old fixture (3 passed). The capture now holds
the two columns issue 13 added.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feature_parity import FIXTURE, snapshot

# request-time features: the old pandas path and its numpy twin agreed to these tolerances
HOURS = ("post_age_hours", "hours_since_interaction")
# columns whose rule changed on purpose after the capture, with the change that did it
CHANGED_ON_PURPOSE = {
    "hashtag_trend_score": "issue 15: trends count only public, non-deleted posts; issue 12: "
    "public as of the row's hour end, not today",
    "hashtag_trend_posts": "issue 15: trends count only public, non-deleted posts; issue 12: "
    "public as of the row's hour end, not today",
}


@pytest.fixture(scope="module")
def now(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    return snapshot(tmp_path_factory.mktemp("parity"))


# feature columns added after the capture (no earlier value to compare), with the change
ADDED_AFTER_CAPTURE: dict[str, str] = {
    # a row column of the training sets (not a feature): was the impression an exploration draw
    "explored": "issue 22: fct_training_impressions carries stg_raw__views.explored",
}


def _assert_same(before: pd.DataFrame, after: pd.DataFrame, name: str) -> None:
    after = after[[c for c in after.columns if c not in ADDED_AFTER_CAPTURE]]
    assert list(after.columns) == list(before.columns), name
    assert len(after) == len(before) > 0, name
    for column in before.columns:
        if column.endswith(tuple(CHANGED_ON_PURPOSE)):
            continue
        old, new = before[column], after[column]
        if pd.api.types.is_float_dtype(old) or pd.api.types.is_float_dtype(new):
            a = pd.to_numeric(old, errors="coerce").to_numpy("float64", na_value=np.nan)
            b = pd.to_numeric(new, errors="coerce").to_numpy("float64", na_value=np.nan)
            assert (np.isnan(a) == np.isnan(b)).all(), f"{name}.{column}: nulls differ"
            tolerance = 1e-6 if column.endswith(HOURS) else 1e-9
            assert np.allclose(a, b, rtol=1e-9, atol=tolerance, equal_nan=True), (
                f"{name}.{column}: max difference {np.nanmax(np.abs(a - b))}"
            )
        else:
            pd.testing.assert_series_equal(old, new, check_dtype=False, obj=f"{name}.{column}")


@pytest.mark.parametrize(
    "name", ["training_feed_ranker_v1", "training_recommender_v1", "online_feed_ranker_v1"]
)
def test_features_equal_what_they_were_before_the_move(
    now: dict[str, pd.DataFrame], name: str
) -> None:
    before = pd.read_parquet(Path(FIXTURE) / f"{name}.parquet")
    _assert_same(before, now[name], name)
