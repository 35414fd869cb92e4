"""Feed ranker training speed and holdout quality on a platform built end to end.

Builds a generated workload -> marts -> Feast training set (the tests' `build_platform`), then
trains the Keras ranker and the baselines on one time split and prints:
- training examples/s of the ranker (train rows x epochs / fit seconds) beside the baseline
  measured in the same run: the logistic regression's fit examples/s (train rows / fit
  seconds, sklearn lbfgs on the same preprocessed inputs), and the ratio;
- the quality table on the holdout: AUC, log loss, NDCG@20 for the ranker, the baselines and
  the oracle (the generator's true probabilities);
- scoring time of 1,000 candidates through `RankerScorer.predict` (the serving path).

    uv run python -m bench.ranker_training --users 300 --days 4 --seed 11
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--scoring-repeats", type=int, default=200)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "tests"))
    from platform_support import build_platform

    from ml.ranking.train import train_ranker

    with tempfile.TemporaryDirectory(prefix="bench-ranker-") as scratch:
        started = time.perf_counter()
        built = build_platform(Path(scratch), users=args.users, days=args.days, seed=args.seed)
        print(
            f"platform: {args.users} users x {args.days} days (seed {args.seed}), "
            f"{built.training_set.rows:,} impressions, label rate "
            f"{built.training_set.label_rate:.3f}, built in {time.perf_counter() - started:.1f} s"
        )
        report = train_ranker(
            built.training_set.frame, truth_impressions=built.workload.ground_truth.impressions
        )

    train_rows = len(report.splits.train)
    epochs = len(report.history["loss"])
    ranker_rate = report.examples_per_second()
    logistic_rate = train_rows / report.seconds["logistic_regression"]
    print(
        f"\ntrain {train_rows:,} / validation {len(report.splits.validation):,} / holdout "
        f"{len(report.splits.holdout):,} rows; {len(report.scorer.feature_names)} input features"
    )
    print(
        f"ranker: {epochs} epochs in {report.seconds['ranker']:.1f} s = "
        f"{ranker_rate:,.0f} training examples/s"
    )
    print(
        f"baseline (logistic regression fit): {report.seconds['logistic_regression']:.1f} s = "
        f"{logistic_rate:,.0f} examples/s"
    )
    print(f"ratio ranker / logistic regression: {ranker_rate / logistic_rate:.1f}x")

    print("\n| model | AUC | log loss | NDCG@20 |\n| --- | --- | --- | --- |")
    for row in report.table():
        print(
            f"| {row['model']} | {row['auc']:.4f} | {row['log_loss']:.4f} | {row['ndcg_at_20']:.4f} |"
        )

    if report.ladder is not None:
        print("\n| ablation ladder (holdout AUC) | AUC |\n| --- | --- |")
        for name, auc in report.ladder.rungs.items():
            print(f"| {name} | {auc:.4f} |")
        for name, auc in report.ladder.drop_feature_group.items():
            print(f"| LR on the ranker's inputs without {name} | {auc:.4f} |")
        for name, auc in report.ladder.drop_true_factor.items():
            print(f"| LR on the true factors without {name} | {auc:.4f} |")
    oracle = report.oracle
    if oracle is not None:
        best = max(report.baselines[n].ndcg_at_20 for n in ("recency", "popularity"))
        lr = report.baselines["logistic_regression"].auc
        print(
            f"\ntargets: ranker / oracle AUC {report.ranker.auc / oracle.auc:.3f} (>= 0.95); "
            f"ranker - LR AUC {report.ranker.auc - lr:+.4f} (>= +0.02); NDCG@20 ranker / best of "
            f"recency, popularity {report.ranker.ndcg_at_20 / best:.3f} (>= 1.2)"
        )

    candidates = report.splits.holdout.sample(1000, replace=True, random_state=0)
    report.scorer.predict(candidates)  # trace once
    times = []
    for _ in range(args.scoring_repeats):
        start = time.perf_counter()
        report.scorer.predict(candidates)
        times.append(time.perf_counter() - start)
    p50, p99 = np.percentile(np.array(times) * 1000, [50, 99])
    print(f"\nscoring 1,000 candidates (RankerScorer.predict): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
