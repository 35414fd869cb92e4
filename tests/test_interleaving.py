"""Team-draft interleaving: the draft's invariants, and credit that finds the better ranker."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from experiments.interleaving import (
    A,
    B,
    Credit,
    credit,
    seed_of,
    sign_test,
    team_draft,
    verdict,
)

rankings = st.lists(st.integers(0, 40), unique=True, max_size=30)


@given(rankings, rankings, st.integers(0, 40), st.integers(0, 2**32))
def test_the_draft_is_a_fair_team_draft(a: list[int], b: list[int], length: int, seed: int) -> None:
    mixed = team_draft(a, b, length, seed)
    assert len(set(mixed.items)) == len(mixed.items)
    assert len(mixed.items) == min(length, len(set(a) | set(b)))
    placed: set[int] = set()
    for i, (item, team) in enumerate(zip(mixed.items, mixed.teams, strict=True)):
        own = a if team == A else b
        # the team's pick is its best item not yet shown
        assert item == next(x for x in own if x not in placed)
        prefix = mixed.teams[: i + 1]
        both_have_more = all(any(x not in placed for x in r) for r in (a, b))
        if both_have_more:
            assert abs(prefix.count(A) - prefix.count(B)) <= 1
        placed.add(item)
    assert team_draft(a, b, length, seed) == mixed


def test_the_coin_decides_who_picks_first_about_half_the_time() -> None:
    firsts = [team_draft([1, 2, 3], [4, 5, 6], 4, s).teams[0] for s in range(2000)]
    assert 900 < firsts.count(A) < 1100


def test_credit_follows_the_team_of_each_engaged_position() -> None:
    mixed = team_draft([1, 2, 3, 4], [1, 5, 6, 7], 6, seed_of("salt", 42, "req"))
    engaged = [i for i, team in enumerate(mixed.teams) if team == B]
    got = credit(mixed, engaged)
    assert got == Credit(0, len(engaged)) and got.winner == B
    assert credit(mixed, []).winner is None


def test_identical_rankers_show_no_preference_and_a_better_one_wins() -> None:
    rng = random.Random(5)
    items = list(range(50))
    good = {i for i in items if i % 3 == 0}

    def session(a: list[int], b: list[int], s: int) -> Credit:
        mixed = team_draft(a, b, 10, s)
        p = [0.5 if x in good else 0.05 for x in mixed.items]
        return credit(mixed, [i for i, q in enumerate(p) if rng.random() < q])

    same = verdict(session(items, items, s) for s in range(400))
    assert same.p_value > 0.01 and abs(same.preference) < 0.2
    better = sorted(items, key=lambda x: x not in good)  # good items first
    won = verdict(session(better, items, s) for s in range(400))
    assert won.winner() == A and won.preference > 0.5


def test_sign_test() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 5) == 1.0
    assert abs(sign_test(9, 1) - 0.021484375) < 1e-12  # 2 * (1 + 10) / 1024
    assert sign_test(1400, 1000) < 1e-9
    assert sign_test(1000, 1001) > 0.9


def test_the_served_merge_names_each_rows_arm_and_repeats_for_the_same_request() -> None:
    import numpy as np

    from serving.experiment_routing import Routed
    from serving.model_loading import ModelHolder, RecencyPopularityScorer

    holder = ModelHolder(lambda: None, lambda _: RecencyPopularityScorer())
    routed = Routed(holder, "e", None, partner=holder, arms=("control", "treatment"), salt="s")
    first, second = np.array([0, 1, 2, 3, 4]), np.array([4, 3, 2, 1, 0])
    rows, arms = routed.interleave(first, second, 5, 7, "snapshot-1")
    assert sorted(rows.tolist()) == [0, 1, 2, 3, 4]
    assert set(arms.tolist()) == {"control", "treatment"}
    assert rows[0] in (0, 4) and arms[0] == ("control" if rows[0] == 0 else "treatment")
    again = routed.interleave(first, second, 5, 7, "snapshot-1")
    assert rows.tolist() == again[0].tolist() and arms.tolist() == again[1].tolist()
    assert routed.interleaved and routed.version == f"{holder.version}+{holder.version}"
