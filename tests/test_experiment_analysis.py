"""The analysis against known truth: intervals, SRM and the decision on simulated experiments."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from experiments.analysis import analyse, chi_square_p, compare, per_user
from experiments.interleaving import verdict
from experiments.simulation import World, ab_impressions, draw_sessions, interleaved_credits

WORLD = World(users=800, posts=1500)


def test_chi_square_tail_matches_known_values() -> None:
    assert abs(chi_square_p([50, 50], [0.5, 0.5]) - 1.0) < 1e-12
    # statistic 4 with df 1: p = 0.0455; statistic 6 with df 2 (3 arms): p = exp(-3)
    assert abs(chi_square_p([60, 40], [0.5, 0.5]) - 0.0455003) < 1e-6
    assert abs(chi_square_p([130, 100, 70], [1 / 3, 1 / 3, 1 / 3]) - math.exp(-9)) < 1e-9


def test_the_delta_method_interval_matches_the_bootstrap() -> None:
    rng = np.random.default_rng(3)
    impressions = ab_impressions(
        WORLD, draw_sessions(WORLD, 3000, rng), {"control": 1.0, "treatment": 1.0}, "s", rng
    )
    users = per_user(impressions)
    for metric in ("engagement_rate", "sessions_per_user", "weighted_engagement_rate"):
        delta = compare(users, "control", "treatment", metric, "delta")
        boot = compare(users, "control", "treatment", metric, "bootstrap", draws=2000)
        width_d, width_b = delta.high - delta.low, boot.high - boot.low
        assert 0.8 < width_d / width_b < 1.25, (metric, width_d, width_b)


def test_aa_tests_rarely_find_a_difference_and_the_oracle_wins() -> None:
    significant = 0
    runs = 40
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        sessions = draw_sessions(WORLD, 1500, rng)
        same = ab_impressions(WORLD, sessions, {"control": 1.5, "treatment": 1.5}, f"aa{seed}", rng)
        result = analyse(same, {"control": 0.5, "treatment": 0.5})
        significant += result.comparisons["engagement_rate"].significant
    # nominal 5%: 2 of 40 expected; more than 8 would be p < 0.001 under a correct test
    assert significant <= 8, significant

    rng = np.random.default_rng(99)
    sessions = draw_sessions(WORLD, 4000, rng)
    better = ab_impressions(WORLD, sessions, {"control": 3.0, "treatment": 0.0}, "ab", rng)
    result = analyse(better, {"control": 0.5, "treatment": 0.5})
    assert result.decision == "ship treatment", result
    assert result.comparisons["weighted_engagement_rate"].lift > 0
    mixed = verdict(interleaved_credits(WORLD, sessions, 0.0, 3.0, rng))
    assert mixed.winner() == "a" and mixed.p_value < 1e-6


def test_a_sample_ratio_mismatch_voids_the_test() -> None:
    rng = np.random.default_rng(1)
    impressions = ab_impressions(
        WORLD, draw_sessions(WORLD, 3000, rng), {"control": 1.0, "treatment": 0.0}, "srm", rng
    )
    # drop a third of the treatment users, as a buggy logger would
    treated = impressions.loc[impressions["arm"] == "treatment", "user_id"].unique()
    lost = set(treated[: len(treated) // 3].tolist())
    kept = impressions[~impressions["user_id"].isin(lost)]
    result = analyse(pd.DataFrame(kept), {"control": 0.5, "treatment": 0.5})
    assert result.srm_p_value < 0.001
    assert result.decision.startswith("invalid: sample ratio mismatch")


def test_the_dagster_asset_compares_the_configs_first_two_arms() -> None:
    from experiments import parse_experiment
    from orchestration.experiments.assets import markdown, result_of

    experiment = parse_experiment(
        {
            "name": "e",
            "surface": "home_feed",
            "start": "2026-01-01T00:00:00Z",
            "end": "2027-01-01T00:00:00Z",
            "arms": [
                {"name": "champion", "model": "m@champion", "traffic": [0.0, 0.5]},
                {"name": "oracle", "model": "m/2", "traffic": [0.5, 1.0]},
            ],
        }
    )
    rng = np.random.default_rng(4)
    impressions = ab_impressions(
        WORLD, draw_sessions(WORLD, 3000, rng), {"champion": 3.0, "oracle": 0.0}, "e", rng
    )
    result = result_of(experiment, impressions)
    assert result is not None and result.decision == "ship oracle"
    assert "| engagement_rate |" in markdown(result)
    assert result_of(experiment, impressions.iloc[:0]) is None


def test_interleaving_credits_each_session_to_the_arm_whose_items_earned_it() -> None:
    from experiments.analysis import analyse_interleaving, interleaving_decision, session_credits

    impressions = pd.DataFrame(
        {
            "arm": ["a", "b", "a", "b", "a", "b", "b", "a"],
            "user_id": [1, 1, 1, 1, 2, 2, 3, 3],
            "session_id": ["s1", "s1", "s1", "s1", "s2", "s2", "s3", "s3"],
            "position": [0, 1, 2, 3, 0, 1, 0, 1],
            "engaged": [True, True, True, False, False, False, False, True],
        }
    )
    credits = session_credits(impressions, "a", "b")
    assert [(c.a, c.b) for c in credits] == [(2, 1), (0, 0), (1, 0)]
    found = analyse_interleaving(impressions, "a", "b")
    assert (found.wins_a, found.wins_b, found.ties) == (2, 0, 1)
    assert interleaving_decision(found, "a", "b") == "no difference detected"
    # a clear preference over many sessions: the challenger ("b") wins
    many = pd.concat(
        [
            impressions.assign(
                session_id=impressions["session_id"] + f"-{i}",
                arm=impressions["arm"].map({"a": "b", "b": "a"}),
            )
            for i in range(10)
        ]
    )
    assert interleaving_decision(analyse_interleaving(many, "a", "b"), "a", "b") == "ship b"


def test_a_finished_experiment_the_challenger_lost_blocks_it_and_nothing_else_does() -> None:
    from datetime import UTC, datetime

    from experiments import parse_experiment
    from experiments.analysis import lost_online, online_outcome

    raw: dict[str, Any] = {
        "name": "e",
        "surface": "home_feed",
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-02-01T00:00:00Z",
        "arms": [
            {"name": "champion", "model": "m@champion", "traffic": [0.0, 0.5]},
            {"name": "challenger", "model": "m/2", "traffic": [0.5, 1.0]},
        ],
    }
    experiment = parse_experiment(raw)
    during, after = datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC)
    rng = np.random.default_rng(4)
    drawn = draw_sessions(WORLD, 3000, rng)
    worse = ab_impressions(WORLD, drawn, {"champion": 0.0, "challenger": 3.0}, "e", rng)
    lost = analyse(worse, {"champion": 0.5, "challenger": 0.5}, "champion", "challenger")
    assert lost.decision == "keep champion"
    reason = lost_online(experiment, after, result=lost)
    assert reason is not None and "'e'" in reason and "m/2" in reason and "95% CI" in reason
    assert lost_online(experiment, during, result=lost) is None  # still running
    stopped = parse_experiment(dict(raw, stopped=True))
    assert lost_online(stopped, during, result=lost) is not None
    better = ab_impressions(WORLD, drawn, {"champion": 3.0, "challenger": 0.0}, "e", rng)
    won = analyse(better, {"champion": 0.5, "challenger": 0.5}, "champion", "challenger")
    assert lost_online(experiment, after, result=won) is None
    # the same rule in the other direction: the champion (first arm) lost, the registry acts
    beaten = online_outcome(experiment, after, result=won)
    assert beaten is not None and beaten.winner.name == "challenger"
    assert beaten.loser.model == "m@champion" and "95% CI" in beaten.reason
    assert online_outcome(experiment, during, result=won) is None
    even = analyse(
        ab_impressions(WORLD, drawn, {"champion": 0.0, "challenger": 0.0}, "e", rng),
        {"champion": 0.5, "challenger": 0.5},
        "champion",
        "challenger",
    )
    assert even.decision == "no difference detected"  # identical arms, this seed
    assert online_outcome(experiment, after, result=even) is None
    # interleaving: the first arm (the oracle) wins the sessions
    interleaved = parse_experiment(
        dict(
            raw,
            kind="interleaving",
            arms=[{k: a[k] for k in ("name", "model")} for a in raw["arms"]],
        )
    )
    found = verdict(interleaved_credits(WORLD, drawn, 0.0, 3.0, rng))
    assert found.winner() == "a"
    assert "interleaving" in (lost_online(interleaved, after, interleaved=found) or "")
    flipped = verdict(interleaved_credits(WORLD, drawn, 3.0, 0.0, rng))
    assert lost_online(interleaved, after, interleaved=flipped) is None
    flipped_outcome = online_outcome(interleaved, after, interleaved=flipped)
    assert flipped_outcome is not None and flipped_outcome.winner.model == "m/2"


def test_the_asset_judges_each_kind_and_names_a_finished_loser() -> None:
    from datetime import UTC, datetime

    from experiments import parse_experiment
    from orchestration.experiments.assets import judge

    arms = [{"name": "champion", "model": "m@champion"}, {"name": "challenger", "model": "m/2"}]
    window = {"surface": "home_feed", "start": "2026-01-01T00:00:00Z"}
    interleaved = parse_experiment(
        {
            "name": "il",
            "kind": "interleaving",
            "end": "2026-02-01T00:00:00Z",
            "arms": arms,
            **window,
        }
    )
    rng = np.random.default_rng(8)
    drawn = draw_sessions(WORLD, 2000, rng)
    # served impressions of an interleaving: rows per shown item with the arm that placed it
    rows = []
    for s, c in enumerate(interleaved_credits(WORLD, drawn, 0.0, 3.0, rng)):
        rows += [("champion", s, True)] * c.a + [("challenger", s, True)] * c.b
        rows += [("champion", s, False), ("challenger", s, False)]
    impressions = pd.DataFrame(rows, columns=["arm", "session_id", "engaged"]).assign(
        user_id=1, position=0
    )
    after = datetime(2026, 3, 1, tzinfo=UTC)
    metadata, outcome = judge(interleaved, impressions, after)
    assert metadata["il/decision"] == "keep champion"
    assert set(metadata["il/sessions_won"]) == {"champion", "challenger", "ties"}
    assert outcome is not None and "m/2" in outcome.reason
    assert (outcome.winner.model, outcome.loser.model) == ("m@champion", "m/2")
    _, running = judge(interleaved, impressions, datetime(2026, 1, 2, tzinfo=UTC))
    assert running is None
    assert judge(interleaved, impressions.iloc[:0], after) == (
        {"il/decision": "no impressions yet"},
        None,
    )
