"""The experiment analysis against known truth, on the synthetic population of
`experiments.simulation` (engagement of the `TruthModel`'s form, in process):

- A/A: `--aa-runs` seeded experiments whose two arms rank identically; the share the analysis
  calls significant is its false-positive rate (nominal 5%), with a 95% binomial interval;
- A/B against interleaving: the oracle (ranks by the true logit) against a noisy ranker (the
  true logit plus N(0, `--noise`)), `--runs` seeds. Per seed, sessions arrive in one order; at
  checkpoints (x1.25 apart) the A/B analysis (delta method, the oracle as treatment) and the
  team-draft sign test each look at the sessions so far. Impressions-to-verdict is the first
  checkpoint at which a method reaches the right verdict at 5%; both methods are looked at
  the same way, so the ratio compares like with like.

    uv run python -m bench.experiments [--aa-runs 200 --runs 30]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from experiments.analysis import analyse
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


def checkpoints(first: int, last: int) -> list[int]:
    out, n = [], float(first)
    while n <= last:
        out.append(int(n))
        n *= 1.25
    return out


def ab_vs_interleaving(world: World, runs: int, max_sessions: int, noise: float) -> None:
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
        for n in checkpoints(50, max_sessions):
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
        f"oracle vs noise {noise}: impressions to the right verdict (median of {runs} seeds): "
        f"A/B {ab_med:,.0f} ({missed} seeds not decided within {max_sessions * world.shown:,}), "
        f"interleaving {il_med:,.0f}; interleaving needs {ab_med / il_med:.1f}x fewer "
        f"(A/B lift at its verdict: median {statistics.median(lifts):+.1%})  "
        f"[{time.perf_counter() - started:.0f} s]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aa-runs", type=int, default=200)
    parser.add_argument("--aa-sessions", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--max-sessions", type=int, default=40_000)
    parser.add_argument(
        "--noise", type=float, nargs="+", default=[1.0, 0.5], help="the challenger's noise sd"
    )
    args = parser.parse_args()
    world = World()
    aa(world, args.aa_runs, args.aa_sessions, args.noise[0])
    for noise in args.noise if args.runs > 0 else []:
        ab_vs_interleaving(world, args.runs, args.max_sessions, noise)


if __name__ == "__main__":
    main()
