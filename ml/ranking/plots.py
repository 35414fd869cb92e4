"""Evaluation plots as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve

from ml.ranking.evaluate import Evaluation


def roc_plot(
    labels: np.ndarray,
    scores: Mapping[str, np.ndarray],
    evaluations: Mapping[str, Evaluation],
    path: Path,
) -> Path:
    figure, axes = plt.subplots(figsize=(5.5, 5))
    for name, values in scores.items():
        fpr, tpr, _ = roc_curve(labels, values)
        style = "--" if name == "oracle" else "-"
        axes.plot(fpr, tpr, style, label=f"{name} (AUC {evaluations[name].auc:.3f})")
    axes.plot([0, 1], [0, 1], ":", color="grey")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="Holdout ROC")
    axes.legend(loc="lower right", fontsize=8)
    return _save(figure, path)


def calibration_plot(evaluations: Mapping[str, Evaluation], path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(5.5, 5))
    top = 0.0
    for name, evaluation in evaluations.items():
        predicted = evaluation.calibration.get("predicted", [])
        observed = evaluation.calibration.get("observed", [])
        if predicted:
            axes.plot(predicted, observed, "o-", markersize=3, label=name)
            top = max(top, *predicted, *observed)
    top = top or 1.0
    axes.plot([0, top], [0, top], ":", color="grey", label="perfect")
    axes.set(
        xlabel="mean predicted P(engage)",
        ylabel="observed engagement rate",
        title="Holdout calibration (quantile bins)",
    )
    axes.legend(fontsize=8)
    return _save(figure, path)


def activity_plot(evaluations: Mapping[str, Evaluation], path: Path) -> Path:
    """AUC per user-activity bucket, one bar per model."""
    buckets: list[str] = []
    for evaluation in evaluations.values():
        for row in evaluation.by_activity:
            if row["bucket"] not in buckets:
                buckets.append(str(row["bucket"]))
    figure, axes = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(len(evaluations), 1)
    for i, (name, evaluation) in enumerate(evaluations.items()):
        by_bucket = {row["bucket"]: row for row in evaluation.by_activity}
        heights = [float(by_bucket.get(b, {}).get("auc", np.nan)) for b in buckets]
        axes.bar(np.arange(len(buckets)) + i * width, heights, width, label=name)
    labels = []
    first = next(iter(evaluations.values()), None)
    rows = {r["bucket"]: r for r in first.by_activity} if first else {}
    for bucket in buckets:
        count = int(float(rows.get(bucket, {}).get("rows", 0)))
        labels.append(f"{bucket}\nn={count}")
    axes.set_xticks(np.arange(len(buckets)) + 0.4 - width / 2, labels, fontsize=8)
    axes.set(
        ylabel="holdout AUC", ylim=(0.4, 1.0), title="AUC by user activity (impressions, 28 d)"
    )
    axes.axhline(0.5, color="grey", linestyle=":")
    axes.legend(fontsize=7, ncol=3)
    return _save(figure, path)


def bar_plot(
    values: Mapping[str, float], path: Path, title: str, threshold: float | None = None
) -> Path:
    """Horizontal bars (e.g. PSI per feature), a threshold line if given."""
    names = list(values)
    figure, axes = plt.subplots(figsize=(7, max(2.5, 0.22 * len(names) + 1)))
    axes.barh(names, [values[n] for n in names])
    if threshold is not None:
        axes.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold}")
        axes.legend(fontsize=8)
    axes.tick_params(axis="y", labelsize=6)
    axes.set_title(title)
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
