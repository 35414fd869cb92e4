"""Train the feed ranker and its baselines on one training set and evaluate them on one holdout.

    report = train_ranker(training_set.frame, truth_impressions=workload.ground_truth.impressions)
    report.evaluations["ranker"].auc, report.evaluations["oracle"].auc, report.scorer.predict(...)

Every model sees the same time-based splits; the oracle (generated data only) scores the same
holdout rows with the generator's true probabilities.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd
from rich.progress import Progress

from ml.ranking.baselines import Baseline, LogisticBaseline, popularity_baseline, recency_baseline
from ml.ranking.dataset import Splits, labels, time_split
from ml.ranking.evaluate import Evaluation, evaluate_scores, oracle_evaluation, true_probabilities
from ml.ranking.explored_rows import select_rows
from ml.ranking.ladder import Ladder, build_ladder
from ml.ranking.model import RankerParams, fit_model
from ml.ranking.preprocessing import Preprocessing, feature_columns
from ml.ranking.scorer import RankerScorer

log = logging.getLogger(__name__)

RANKER = "ranker"
ORACLE = "oracle"


@dataclass
class RankerReport:
    scorer: RankerScorer
    splits: Splits
    params: RankerParams
    evaluations: dict[str, Evaluation]  # ranker, recency, popularity, logistic_regression, oracle
    holdout_scores: dict[str, np.ndarray]  # the same models' holdout scores, for the plots
    history: dict[str, list[float]]
    seconds: dict[str, float] = field(default_factory=dict)  # fit time per model
    notes: list[str] = field(default_factory=list)  # e.g. why there is no oracle
    # the fitted logistic regression: the ranker's baseline in the promotion gate, and what
    # serving ranks with when the ranker does not beat it
    logistic: LogisticBaseline | None = None
    ladder: Ladder | None = None  # the ablation ladder (ml.ranking.ladder)

    @property
    def ranker(self) -> Evaluation:
        return self.evaluations[RANKER]

    @property
    def oracle(self) -> Evaluation | None:
        return self.evaluations.get(ORACLE)

    @property
    def baselines(self) -> dict[str, Evaluation]:
        return {k: v for k, v in self.evaluations.items() if k not in (RANKER, ORACLE)}

    def examples_per_second(self, model: str = RANKER) -> float:
        """Training examples processed per second of fitting (all epochs)."""
        epochs = len(self.history.get("loss", [1])) if model == RANKER else 1
        return len(self.splits.train) * epochs / max(self.seconds[model], 1e-9)

    def metrics(self) -> dict[str, float]:
        """Flat holdout metrics for MLflow / Dagster: `<model>_<metric>`."""
        flat: dict[str, float] = {}
        for name, evaluation in self.evaluations.items():
            for metric, value in evaluation.headline().items():
                flat[f"{name}_{metric}"] = value
        flat["holdout_auc"] = self.ranker.auc
        if self.oracle is not None:
            flat["gap_to_oracle_auc"] = self.oracle.auc - self.ranker.auc
        flat["epochs"] = float(len(self.history.get("loss", [])))
        flat["train_examples_per_second"] = self.examples_per_second()
        if self.ladder is not None:
            flat.update(self.ladder.metrics())
        return flat

    def table(self) -> list[dict[str, Any]]:
        """The quality table: one row per model."""
        return [
            {"model": name, **{k: round(v, 4) for k, v in e.headline().items()}}
            for name, e in self.evaluations.items()
        ]


class _EpochProgress(keras.callbacks.Callback):
    def __init__(self, progress: Progress, task: Any) -> None:
        super().__init__()
        self._progress, self._task = progress, task

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        auc = (logs or {}).get("val_auc", float("nan"))
        self._progress.update(self._task, advance=1, description=f"ranker (val AUC {auc:.3f})")


def train_ranker(
    frame: pd.DataFrame,
    params: RankerParams | None = None,
    *,
    truth_impressions: pd.DataFrame | None = None,
    validation: float = 0.15,
    holdout: float = 0.15,
    progress: bool = True,
    ladder_enabled: bool = True,
) -> RankerReport:
    """`train_on_splits` on `frame` split by time. The caller's frame stays alive beside its
    splits for the whole training: a caller short of memory splits first, drops the frame and
    calls `train_on_splits` (the Dagster asset does)."""
    splits = time_split(frame, validation=validation, holdout=holdout)
    return train_on_splits(
        splits,
        params,
        truth_impressions=truth_impressions,
        progress=progress,
        ladder_enabled=ladder_enabled,
    )


def train_on_splits(
    splits: Splits,
    params: RankerParams | None = None,
    *,
    truth_impressions: pd.DataFrame | None = None,
    progress: bool = True,
    ladder_enabled: bool = True,
) -> RankerReport:
    """The ranker, the baselines, their holdout evaluations and the ladder on these splits."""
    params = params or RankerParams()
    spec = Preprocessing.fit(splits.train, feature_columns(splits.train))
    y_train, y_hold = labels(splits.train), labels(splits.holdout)
    # the network learns from the rows (and weights) params.explored_rows picks; the baselines
    # and the holdout keep every row, so the gate compares like with like
    net_train, w_train = select_rows(splits.train, params.explored_rows, "train")
    net_valid, w_valid = select_rows(splits.validation, params.explored_rows, "validation")
    evaluations: dict[str, Evaluation] = {}
    scores: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("ranker", total=params.epochs)
        started = time.perf_counter()
        model, history = fit_model(
            spec,
            params,
            spec.transform(net_train),
            labels(net_train),
            spec.transform(net_valid),
            labels(net_valid),
            callbacks=[_EpochProgress(bar, task)],
            train_weights=w_train,
            validation_weights=w_valid,
        )
        seconds[RANKER] = time.perf_counter() - started
        bar.update(task, completed=params.epochs)
        scorer = RankerScorer(spec, model, metadata={"params": params.as_dict()})
        scores[RANKER] = scorer.predict(splits.holdout)
        logistic = LogisticBaseline(spec)
        baselines: list[Baseline] = [recency_baseline(), popularity_baseline(), logistic]
        base_task = bar.add_task("baselines", total=len(baselines))
        for baseline in baselines:
            started = time.perf_counter()
            baseline.fit(splits.train, y_train)
            seconds[baseline.name] = time.perf_counter() - started
            scores[baseline.name] = baseline.predict(splits.holdout)
            bar.update(base_task, advance=1)
    for name, values in scores.items():
        evaluations[name] = evaluate_scores(name, splits.holdout, y_hold, values)
    notes: list[str] = []
    if truth_impressions is not None and len(truth_impressions):
        truth = true_probabilities(splits.holdout, truth_impressions)
        unmatched = int(np.isnan(truth).sum())
        if unmatched:
            # an oracle on part of the holdout would not be comparable with the models
            notes.append(
                f"no oracle: {unmatched} of {len(truth)} holdout impressions are not in the "
                "ground truth (not generated data, or another workload's)"
            )
            log.warning(notes[-1])
        else:
            evaluations[ORACLE] = oracle_evaluation(splits.holdout, y_hold, truth_impressions)
            scores[ORACLE] = truth
    ladder = None
    if ladder_enabled:
        ladder = build_ladder(
            splits,
            {name: e.auc for name, e in evaluations.items()},
            truth_impressions if ORACLE in evaluations else None,
        )
    return RankerReport(
        scorer, splits, params, evaluations, scores, history, seconds, notes, logistic, ladder
    )
