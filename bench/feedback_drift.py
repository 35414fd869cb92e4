"""Feedback drift: a ranker retrained on its own served data against one retrained only on a
uniformly random exploration slice (`experiments.feedback`, a synthetic world of the
TruthModel's form, in process), over several seeds.

    uv run python -m bench.feedback_drift [--seeds 3] [--rounds 8] [--epsilon 0.1]

Prints, per policy and seed, the last round's weights (quality as seen, affinity, log1p of the
loop-written engagement count), the exposure Gini, and the share of the oracle's engagement
lost by the model-ranked sessions and by all sessions (exploration's own cost included).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace

from experiments.feedback import FeedbackWorld, run_policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--sessions", type=int, default=4000, help="sessions per round")
    args = parser.parse_args(argv)
    world = replace(
        FeedbackWorld(),
        rounds=args.rounds,
        epsilon=args.epsilon,
        sessions_per_round=args.sessions,
    )
    print(f"machine: {platform.node()} {os.cpu_count()} cores; {world}")
    header = (
        f"{'policy':8} {'seed':>4} {'w quality':>9} {'w affinity':>10} {'w engaged':>9} "
        f"{'gini':>5} {'regret ranked':>13} {'regret all':>10}"
    )
    print(header)
    started = time.perf_counter()
    for seed in range(1, args.seeds + 1):
        first = None
        for policy in ("served", "explore"):
            run = run_policy(world, policy, seed)
            first = first or run.rounds[0]
            last = run.rounds[-1]
            w = last.weights
            print(
                f"{policy:8} {seed:>4} {w['quality_seen']:>9.3f} {w['affinity']:>10.3f} "
                f"{w['log1p_engagements']:>9.3f} {last.exposure_gini:>5.3f} "
                f"{run.regret:>13.4f} {run.overall_regret:>10.4f}"
            )
        assert first is not None
        w0 = first.weights
        print(
            f"{'round 0':8} {seed:>4} {w0['quality_seen']:>9.3f} {w0['affinity']:>10.3f} "
            f"{w0['log1p_engagements']:>9.3f} {first.exposure_gini:>5.3f}  (random rankings)"
        )
    print(f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
