"""Ranker training on what the closed loop served, by `RankerParams.explored_rows` mode.

After `bench.closed_loop --retrain --data-dir DIR` (with `SERVING_FEED_EXPLORE_SHARE` > 0, so
some impressions are flagged `explored`), reads the newest `feed_ranker_v1` training set the
platform's Dagster job wrote, trains the ranker once per mode on it (same split, same seed) and
scores each on the same holdout: AUC against the labels on every row and on the explored rows
(a uniform sample of what could have been shown), and against the truth: the generator's true
P(engage) of each holdout impression (`TruthOracle`, the probabilities the loop's users
engaged with), as the Spearman correlation of the scores with it.

    uv run python -m bench.explored_training --data-dir DIR [--users 300 --days 2 --seed 7]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from bench.closed_loop import world_arguments
from ml.ranking.dataset import time_split
from ml.ranking.evaluate import safe_auc
from ml.ranking.explored_rows import MODES, explored_flags

SERVICE = "feed_ranker_v1"


def newest_training_set(data_dir: Path) -> tuple[str, pd.DataFrame]:
    from bench.serving_feed import platform
    from objectstore import store_from_settings
    from orchestration.features.assets import TRAINING_PREFIX

    store = store_from_settings(platform(data_dir))
    prefix = f"{TRAINING_PREFIX}/{SERVICE}/"
    keys = sorted(k for k in store.list(prefix) if k.endswith("training_set.parquet"))
    if not keys:
        raise SystemExit(f"no training set under {prefix} in {data_dir}")
    return keys[-1], pd.read_parquet(io.BytesIO(store.get(keys[-1])))


def true_probabilities(frame: pd.DataFrame, users: int, days: int, seed: int) -> np.ndarray:
    """The generator's P(engage) of each impression, as the loop's users drew it."""
    from workload.config import WorkloadConfig
    from workload.generator import generate
    from workload.truth_oracle import TruthOracle

    oracle = TruthOracle.of(generate(WorkloadConfig(users=users, days=days, seed=seed)))
    seconds = pd.to_datetime(frame["event_timestamp"], utc=True).astype("int64") / 1e9
    return np.array(
        [
            oracle.probability(int(u), [int(p)], [int(a)], [int(pos)], float(t))[0]
            for u, p, a, pos, t in zip(
                frame["user_id"],
                frame["post_id"],
                frame["author_id"],
                frame["position"],
                seconds,
                strict=True,
            )
        ]
    )


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b).statistic)


def main() -> None:
    from ml.ranking.model import RankerParams
    from ml.ranking.train import train_ranker

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    world_arguments(parser)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args()
    key, frame = newest_training_set(args.data_dir.resolve())
    flags = explored_flags(frame)
    print(f"{key}: {len(frame):,} impressions, {int(flags.sum()):,} explored")
    holdout = time_split(frame).holdout  # train_ranker's split (its defaults): the same rows
    truth = true_probabilities(holdout, args.users, args.days, args.seed)
    y = holdout["is_engaged"].astype(bool).to_numpy().astype(np.int64)
    held = explored_flags(holdout)
    print(
        f"holdout: {len(holdout):,} rows ({int(y.sum())} engaged), {int(held.sum()):,} "
        f"explored ({int(y[held].sum())} engaged)"
    )

    def line(name: str, scores: np.ndarray) -> str:
        return (
            f"{name}: AUC {safe_auc(y, scores):.4f}, explored rows "
            f"{safe_auc(y[held], scores[held]):.4f}; Spearman with the true p "
            f"{rank_correlation(scores, truth):.4f}, explored rows "
            f"{rank_correlation(scores[held], truth[held]):.4f}"
        )

    print(f"  {line('the true p as the score', truth)}")
    for i, mode in enumerate(args.modes):
        started = time.process_time()
        report = train_ranker(frame, RankerParams(explored_rows=mode), progress=False)
        cpu = time.process_time() - started
        if not report.splits.holdout["impression_id"].equals(holdout["impression_id"]):
            raise SystemExit("train_ranker split the holdout differently")
        if i == 0:
            for name, scores in report.holdout_scores.items():
                if name != "ranker":
                    print(f"  {line(name, scores)}")
        epochs = len(report.history.get("loss", []))
        print(
            f"  {line(f'ranker explored_rows={mode}', report.holdout_scores['ranker'])} "
            f"({epochs} epochs, {cpu:.0f} s CPU)"
        )


if __name__ == "__main__":
    main()
