"""The experiment analysis against known truth, on the synthetic population of
`experiments.simulation` (engagement of the `TruthModel`'s form, in process):

- A/A: `--aa-runs` seeded experiments whose two arms rank identically; the share the analysis
  calls significant is its false-positive rate (nominal 5%), with a 95% binomial interval;
- interleaving A/A: two equally good rankers merged by team draft; the sign test's share of
  runs with a winner (nominal at most 5%);
- A/B against interleaving: the oracle (ranks by the true logit) against a noisy ranker (the
  true logit plus N(0, `--noise`)). Reported: the impressions each method needs for 80% power
  at 5% (two-sided), sized from its mean z-statistic over `--runs` seeds and then checked on
  `--runs` fresh seeds at that size. The population grows with the sessions (2 per user), as
  sizing an experiment assumes. `--first-crossing` adds the earlier measure (first checkpoint
  with the right verdict, peeking), which is biased towards a ratio of 1 (see its docstring).

    uv run python -m bench.experiments [--aa-runs 200 --runs 20 --noise 1.0 0.5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from experiments.analysis import Z95, analyse
from experiments.interleaving import verdict
from experiments.simulation import World, ab_impressions, draw_sessions, interleaved_credits

SHARES = {"control": 0.5, "treatment": 0.5}


def binomial_interval(k: int, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a proportion."""
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def aa(world: World, runs: int, sessions: int, noise: float) -> None:
    started = time.perf_counter()
    significant = srm = 0
    for seed in range(runs):
        rng = np.random.default_rng(10_000 + seed)
        drawn = draw_sessions(world, sessions, rng)
        impressions = ab_impressions(
            world, drawn, {"control": noise, "treatment": noise}, f"aa-{seed}", rng
        )
        result = analyse(impressions, SHARES)
        significant += result.comparisons["engagement_rate"].significant
        srm += result.srm_p_value < 0.001
    low, high = binomial_interval(significant, runs)
    print(
        f"A/A: {runs} runs x {sessions} sessions ({world.users} users): false positives "
        f"{significant}/{runs} = {significant / runs:.1%} (95% CI {low:.1%}-{high:.1%}; "
        f"nominal 5.0%), SRM alarms {srm}/{runs} (nominal 0.1%)  [{time.perf_counter() - started:.0f} s]"
    )


Z80 = 0.8416212335729143  # one-sided normal quantile of 80% power


def sized(world: World, sessions: int) -> World:
    """The population grows with the traffic (2 sessions per user on average), as when an
    experiment is sized by running it longer on more users: with a fixed population the A/B
    test's between-user variance never shrinks and its z-statistic stops growing as sqrt(n)."""
    return replace(world, users=max(200, sessions // 2))


def z_ab(impressions: pd.DataFrame) -> float:
    """The A/B z-statistic of the primary metric (treatment - control over its delta-method
    standard error, users the unit), and whether the decision is to ship the treatment."""
    c = analyse(impressions, SHARES).comparisons["engagement_rate"]
    return c.difference / ((c.high - c.low) / (2 * Z95))


def z_sign(credits: list) -> float:
    """The sign test's normal statistic: (oracle's session wins - challenger's) / sqrt(decided)."""
    found = verdict(credits)
    decided = found.wins_a + found.wins_b
    return (found.wins_a - found.wins_b) / math.sqrt(decided) if decided else 0.0


def z_difference(credits: list) -> float:
    """A t-statistic of the per-session credit difference (a - b): keeps how many more
    engagements a session gave one side, which the sign test drops."""
    d = np.array([c.a - c.b for c in credits], dtype=np.float64)
    sd = d.std(ddof=1)
    return float(d.mean() / (sd / math.sqrt(len(d)))) if sd > 0 else 0.0


def power_sizes(world: World, runs: int, sessions: int, noise: float) -> None:
    """Sessions each method needs for 80% power at 5% (two-sided), from its mean z over `runs`
    seeds of `sessions` sessions (z grows as sqrt(n) for a fixed effect, the usual sizing
    rule), then checked: `runs` fresh seeds at exactly that size should each decide right in
    about 80% of them. Impressions = sessions x shown for both methods (each session shows
    `shown` items, one arm's in A/B, a merge of both in interleaving)."""
    started = time.perf_counter()
    zs: dict[str, list[float]] = {"ab": [], "sign": [], "difference": []}
    big = sized(world, sessions)
    for seed in range(runs):
        rng = np.random.default_rng(30_000 + seed)
        drawn = draw_sessions(big, sessions, rng)
        imps = ab_impressions(big, drawn, {"control": noise, "treatment": 0.0}, f"p-{seed}", rng)
        zs["ab"].append(z_ab(imps))
        credits = interleaved_credits(big, drawn, 0.0, noise, rng)
        zs["sign"].append(z_sign(credits))
        zs["difference"].append(z_difference(credits))
    need = {k: sessions * ((Z95 + Z80) / statistics.mean(v)) ** 2 for k, v in zs.items()}
    # the check: fresh seeds at each method's size, share of right verdicts
    hits = {"ab": 0, "sign": 0}
    for seed in range(runs):
        rng = np.random.default_rng(40_000 + seed)
        n = max(int(need["ab"]), 20)
        w = sized(world, n)
        drawn = draw_sessions(w, n, rng)
        imps = ab_impressions(w, drawn, {"control": noise, "treatment": 0.0}, f"v-{seed}", rng)
        hits["ab"] += analyse(imps, SHARES).decision == "ship treatment"
        n = max(int(need["sign"]), 20)
        w = sized(world, n)
        drawn = draw_sessions(w, n, rng)
        hits["sign"] += verdict(interleaved_credits(w, drawn, 0.0, noise, rng)).winner() == "a"
    shown = world.shown
    print(
        f"oracle vs noise {noise}, sized for 80% power at 5% from {runs} seeds x {sessions:,} "
        f"sessions: A/B {need['ab'] * shown:,.0f} impressions (mean z {statistics.mean(zs['ab']):.2f}), "
        f"interleaving sign test {need['sign'] * shown:,.0f} (z {statistics.mean(zs['sign']):.2f}) "
        f"= {need['ab'] / need['sign']:.1f}x fewer; credit-difference t-test "
        f"{need['difference'] * shown:,.0f} = {need['ab'] / need['difference']:.1f}x fewer. "
        f"Checked on {runs} fresh seeds at those sizes: A/B right in {hits['ab']}/{runs}, "
        f"interleaving in {hits['sign']}/{runs} (80% expected)  "
        f"[{time.perf_counter() - started:.0f} s]"
    )


def empirical_sizes(world: World, seeds: int, noise: float) -> None:
    """No extrapolation: the share of `seeds` fresh seeds in which each method reaches the right
    verdict at sizes x1.5 apart, and the size where that share crosses 80% (interpolated on
    log size between the two sizes around it)."""
    started = time.perf_counter()
    grid = [int(40 * 1.5**k) for k in range(16)]  # 40 .. ~17,500 sessions
    power: dict[str, list[float]] = {"ab": [], "sign": []}
    for n in grid:
        w = sized(world, n)
        hits = {"ab": 0, "sign": 0}
        for seed in range(seeds):
            rng = np.random.default_rng(60_000 + 101 * n + seed)
            drawn = draw_sessions(w, n, rng)
            imps = ab_impressions(w, drawn, {"control": noise, "treatment": 0.0}, f"e{seed}", rng)
            hits["ab"] += analyse(imps, SHARES).decision == "ship treatment"
            if not power["sign"] or power["sign"][-1] < 0.97:  # past that, skip the slow part
                credits = interleaved_credits(w, drawn, 0.0, noise, rng)
                hits["sign"] += verdict(credits).winner() == "a"
            else:
                hits["sign"] += 1
        for key in hits:
            power[key].append(hits[key] / seeds)
        if power["ab"][-1] >= 0.9:
            break

    def crossing(shares: list[float]) -> float:
        for i, share in enumerate(shares):
            if share >= 0.8:
                if i == 0:
                    return grid[0]
                lo, hi = shares[i - 1], share
                t = (0.8 - lo) / (hi - lo)
                return float(grid[i - 1] * (grid[i] / grid[i - 1]) ** t)
        return math.inf

    ab, il = crossing(power["ab"]), crossing(power["sign"])
    curve = ", ".join(
        f"{n}: {a:.0%}/{b:.0%}" for n, a, b in zip(grid, power["ab"], power["sign"], strict=False)
    )
    print(
        f"  empirical, {seeds} seeds per size (sessions: A/B power/interleaving power): {curve}\n"
        f"  80% power at about {ab * world.shown:,.0f} impressions (A/B) vs "
        f"{il * world.shown:,.0f} (interleaving): {ab / il:.1f}x fewer  "
        f"[{time.perf_counter() - started:.0f} s]"
    )


def interleaving_aa(world: World, runs: int, sessions: int, noise: float) -> None:
    """Two equally good rankers (the true logit plus independent noise of the same sd) merged
    by team draft: the share of runs whose sign test finds a winner (nominal at most 5%)."""
    started = time.perf_counter()
    found = 0
    for seed in range(runs):
        rng = np.random.default_rng(50_000 + seed)
        drawn = draw_sessions(world, sessions, rng)
        found += verdict(interleaved_credits(world, drawn, noise, noise, rng)).winner() is not None
    low, high = binomial_interval(found, runs)
    print(
        f"interleaving A/A: {runs} runs x {sessions} sessions: false positives {found}/{runs} "
        f"= {found / runs:.1%} (95% CI {low:.1%}-{high:.1%}; nominal 5.0%)  "
        f"[{time.perf_counter() - started:.0f} s]"
    )


def checkpoints(first: int, last: int) -> list[int]:
    out, n = [], float(first)
    while n <= last:
        out.append(int(n))
        n *= 1.25
    return out


def first_verdicts(world: World, runs: int, max_sessions: int, noise: float) -> None:
    """The earlier measure, kept for comparison: impressions until each method first reaches
    the right verdict, looking at checkpoints x1.25 apart from 10 sessions. Repeated looks
    without correction let a noisy statistic cross early by luck (the A/B lift at its first
    crossing is inflated well above the true one), and the first look bounds the fast method;
    both bias the ratio towards 1, which is why the sizing above is the reported figure."""
    started = time.perf_counter()
    ab_needed: list[float] = []
    il_needed: list[float] = []
    lifts = []
    for seed in range(runs):
        rng = np.random.default_rng(20_000 + seed)
        drawn = draw_sessions(world, max_sessions, rng)
        impressions = ab_impressions(
            world, drawn, {"control": noise, "treatment": 0.0}, f"ab-{seed}", rng
        )
        credits = interleaved_credits(world, drawn, 0.0, noise, rng)
        ab_at = il_at = math.inf
        for n in checkpoints(10, max_sessions):
            if ab_at == math.inf:
                prefix = impressions[impressions["session_id"] < n]
                result = analyse(prefix, SHARES)
                if result.decision == "ship treatment":
                    ab_at = n * world.shown
                    lifts.append(result.comparisons["engagement_rate"].lift)
            if il_at == math.inf and verdict(credits[:n]).winner() == "a":
                il_at = n * world.shown
            if ab_at < math.inf and il_at < math.inf:
                break
        ab_needed.append(ab_at)
        il_needed.append(il_at)
    ab_med, il_med = statistics.median(ab_needed), statistics.median(il_needed)
    missed = sum(x == math.inf for x in ab_needed)
    print(
        f"  first crossing with peeking (median of {runs} seeds, {world.users} users): "
        f"A/B {ab_med:,.0f} ({missed} seeds not decided within {max_sessions * world.shown:,}, "
        f"lift at its verdict: median {statistics.median(lifts or [math.nan]):+.1%}), "
        f"interleaving {il_med:,.0f}; ratio {ab_med / il_med:.1f}x  "
        f"[{time.perf_counter() - started:.0f} s]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aa-runs", type=int, default=200)
    parser.add_argument("--aa-sessions", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--power-sessions", type=int, default=20_000)
    parser.add_argument("--empirical-seeds", type=int, default=100)
    parser.add_argument("--first-crossing", action="store_true", help="also the peeking measure")
    parser.add_argument("--max-sessions", type=int, default=40_000)
    parser.add_argument(
        "--noise", type=float, nargs="+", default=[1.0, 0.5], help="the challenger's noise sd"
    )
    args = parser.parse_args()
    world = World()
    if args.aa_runs > 0:
        aa(world, args.aa_runs, args.aa_sessions, args.noise[0])
        interleaving_aa(world, args.aa_runs, args.aa_sessions, args.noise[0])
    for noise in args.noise if args.runs > 0 else []:
        power_sizes(world, args.runs, args.power_sessions, noise)
        if args.empirical_seeds > 0:
            empirical_sizes(world, args.empirical_seeds, noise)
        if args.first_crossing:
            first_verdicts(world, args.runs, args.max_sessions, noise)


if __name__ == "__main__":
    main()
