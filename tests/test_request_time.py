"""The request-time arithmetic of feature_repo.request_time that has no platform to need.

The viewer x hashtag affinity: bucket counts in, two shares out; a post without hashtags or a
viewer without history (NaN: no feature row) scores 0, never an error, and the bucket count is
the dbt project's. The viewer x author similarity (same home city, signup-topic overlap) and the
viewer x post location (same city, distance): unknown on either side scores 0. The viewer x
post topic match: the topics are the dbt project's and the generator's, unknowns score 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from feature_repo.definitions import (
    viewer_author_similarity,
    viewer_post_location,
    viewer_post_topics,
)
from feature_repo.request_time import (
    HASHTAG_BUCKETS,
    HASHTAG_PRIOR,
    TOPICS,
    hashtag_affinity_arrays,
    numbers,
    topic_match_arrays,
    viewer_author_similarity_arrays,
    viewer_post_location_arrays,
)
from feature_repo.text_codes import TextCodes

PROJECT = Path(__file__).resolve().parents[1] / "transformations" / "dbt_project.yml"


def test_bucket_count_is_the_dbt_projects() -> None:
    assert yaml.safe_load(PROJECT.read_text())["vars"]["hashtag_buckets"] == HASHTAG_BUCKETS


def test_topics_are_the_dbt_projects_and_the_generators() -> None:
    from workload.vocab import TOPICS as GENERATED

    assert tuple(yaml.safe_load(PROJECT.read_text())["vars"]["topics"]) == TOPICS
    assert tuple(name for _, name in GENERATED) == TOPICS


def test_topic_match_weights_the_posts_topics_by_the_viewers_picks() -> None:
    picked = np.zeros((3, len(TOPICS)))
    picked[:2, [0, 1]] = 1.0  # rows 0-1: a viewer who picked the first two topics
    picked[2] = np.nan  # row 2: a viewer without topics
    post = np.zeros((3, len(TOPICS)))
    post[0, [1, 5]] = [0.75, 0.25]
    post[1] = np.nan  # a post without hashtags
    post[2, 0] = 1.0
    out = topic_match_arrays(picked, post)
    np.testing.assert_allclose(out["topic_match"], [0.75, 0.0, 0.0])
    frame = pd.DataFrame(
        {
            **{f"picked_{t}": picked[:, i] for i, t in enumerate(TOPICS)},
            **{f"topic_{t}": post[:, i] for i, t in enumerate(TOPICS)},
        }
    )
    np.testing.assert_allclose(viewer_post_topics(frame)["topic_match"], [0.75, 0.0, 0.0])


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


def test_viewer_author_similarity_and_unknowns() -> None:
    out = viewer_author_similarity_arrays(
        np.array(["Lisbon", "Lisbon", None, "Porto"], dtype=object),
        np.array(["food,travel", "art", "food", None], dtype=object),
        np.array(["Lisbon", "Porto", "Lisbon", "Porto"], dtype=object),
        np.array(["food,music,travel", "art", np.nan, "art"], dtype=object),
    )
    np.testing.assert_array_equal(out["same_home_city"], [1, 0, 0, 1])
    np.testing.assert_allclose(out["topic_overlap"], [2 / 3, 1.0, 0.0, 0.0])
    # the Feast on-demand view is the same function on a frame
    frame = pd.DataFrame(
        {
            "city": ["Lisbon"],
            "interests": ["food"],
            "author_city": [None],
            "author_interests": [None],
        }
    )
    assert viewer_author_similarity(frame).to_dict("list") == {
        "same_home_city": [0],
        "topic_overlap": [0.0],
    }


def test_viewer_post_location_same_city_distance_and_unknowns() -> None:
    nan = np.nan
    out = viewer_post_location_arrays(
        np.array(["Lisbon", "Lisbon", "Lisbon", None], dtype=object),
        np.array([38.72, 38.72, 38.72, nan]),
        np.array([-9.14, -9.14, -9.14, nan]),
        np.array(["Lisbon", "Porto", None, "Porto"], dtype=object),
        np.array([38.72, 41.15, nan, 41.15]),
        np.array([-9.14, -8.61, nan, -8.61]),
    )
    np.testing.assert_array_equal(out["post_in_home_city"], [1, 0, 0, 0])
    # Lisbon -> Porto is about 274 km
    assert abs(np.expm1(out["log_distance"][1]) * 100 - 274) < 5
    np.testing.assert_allclose(out["log_distance"][[0, 2, 3]], 0.0, atol=1e-9)
    frame = pd.DataFrame(
        {
            "city": ["Lisbon"],
            "home_latitude": [38.72],
            "home_longitude": [-9.14],
            "location_name": [None],
            "location_latitude": [None],
            "location_longitude": [None],
        }
    )
    assert viewer_post_location(frame).to_dict("list") == {
        "post_in_home_city": [0],
        "log_distance": [0.0],
    }


def test_topic_match_on_the_online_fast_path_equals_feasts_udf() -> None:
    from featurestore.online import FAST_TRANSFORMATIONS

    rng = np.random.default_rng(5)
    rows = 50
    picked = (rng.random(len(TOPICS)) < 0.3).astype(int)
    shares = rng.dirichlet(np.ones(len(TOPICS)), rows)
    shares[rng.random(rows) < 0.2] = np.nan  # posts without a topic row
    frame = pd.DataFrame(
        {
            **{
                f"picked_{t}": pd.array([int(picked[i])] * rows, "Int64")
                for i, t in enumerate(TOPICS)
            },
            **{
                f"topic_{t}": pd.array(
                    [None if np.isnan(v) else v for v in shares[:, i]], "Float64"
                )
                for i, t in enumerate(TOPICS)
            },
        }
    )
    fast = FAST_TRANSFORMATIONS["viewer_post_topics"]
    assert fast.inputs == set(frame.columns)
    got = fast({name: numbers(frame[name]) for name in frame.columns}, 0, TextCodes())
    np.testing.assert_array_equal(got["topic_match"], viewer_post_topics(frame)["topic_match"])
