"""Every registered `feed-ranker` version against the truth, on the newest training set's holdout.

After `bench.closed_loop --retrain`, that holdout is data the loop's own served rankers shaped.
Each version's network (and the newest version's logistic-regression baseline) scores the same
holdout rows (`train_ranker`'s time split, its defaults, as the Dagster asset trains), and each
is compared with the labels (AUC) and with the generator's true P(engage) of every row
(Spearman; `bench.explored_training.true_probabilities`, what the loop's users drew their
engagement from). The true p itself is the ceiling row. This is how the feedback drift of the
retrained ranker shows, or does not: a version retrained on served data that tracks the truth
less well than the version trained on the generator's data.

    uv run python -m bench.versions_vs_truth --data-dir DIR [--users 300 --days 2 --seed 7]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.closed_loop import world_arguments
from ml.ranking import MODEL_NAME


@dataclass(frozen=True)
class Row:
    name: str
    auc: float
    spearman: float


def versions_vs_truth(data_dir: Path, users: int, days: int, seed: int) -> list[Row]:
    from bench.explored_training import newest_training_set, rank_correlation, true_probabilities
    from bench.serving_feed import platform
    from ml import registry
    from ml.ranking.baselines import LogisticScorer
    from ml.ranking.dataset import labels, time_split
    from ml.ranking.evaluate import safe_auc
    from ml.ranking.publish import BASELINE_ARTIFACT
    from ml.ranking.pyfunc import SCORER_ARTIFACT
    from ml.ranking.scorer import RankerScorer
    from ml.tracking import tracking_uri

    key, frame = newest_training_set(data_dir)
    holdout = time_split(frame).holdout
    y = labels(holdout)
    truth = true_probabilities(holdout, users, days, seed)
    print(f"{key}: holdout {len(holdout):,} rows, {int(y.sum())} engaged")
    uri = tracking_uri(platform(data_dir))
    found = registry.client(uri).search_model_versions(f"name='{MODEL_NAME}'")
    versions = sorted((str(v.version) for v in found), key=int)

    def row(name: str, scores: np.ndarray) -> Row:
        return Row(name, safe_auc(y, scores), rank_correlation(scores, truth))

    rows = [row("true p (ceiling)", truth)]
    for version in versions:
        directory = registry.download_version_artifacts(uri, MODEL_NAME, version, SCORER_ARTIFACT)
        rows.append(row(f"v{version}", RankerScorer.load(directory).predict(holdout)))
    if versions:
        directory = registry.download_version_artifacts(
            uri, MODEL_NAME, versions[-1], BASELINE_ARTIFACT
        )
        logistic = LogisticScorer.load(directory, f"v{versions[-1]}")
        rows.append(row(f"logistic regression of v{versions[-1]}", logistic.predict(holdout)))
    for r in rows:
        print(f"  {r.name}: AUC {r.auc:.4f}, Spearman with the true p {r.spearman:.4f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    world_arguments(parser)
    args = parser.parse_args()
    versions_vs_truth(args.data_dir.resolve(), args.users, args.days, args.seed)


if __name__ == "__main__":
    main()
