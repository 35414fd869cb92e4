"""The recommenders' evaluation as a picture: the model beside popularity, Recall and NDCG."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def metrics_plot(metrics: Mapping[str, float], path: Path, title: str) -> Path:
    """Grouped bars: Recall@k and NDCG@k of every variant found in `metrics` (keys like
    `recall_at_10`, `popularity_recall_at_10`, `als_only_recall_at_10`)."""
    variants: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        for measure in ("recall_at_", "ndcg_at_"):
            if measure in key:
                prefix, _, k = key.partition(measure)
                variant = prefix.rstrip("_") or "model"
                variants.setdefault(variant, {})[f"{measure.split('_')[0]}@{k}"] = value
    measures = sorted({m for v in variants.values() for m in v})
    figure, axes = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / max(1, len(variants))
    for offset, (variant, values) in enumerate(variants.items()):
        xs = [i + offset * width for i in range(len(measures))]
        axes.bar(xs, [values.get(m, 0.0) for m in measures], width, label=variant)
    axes.set_xticks([i + width * (len(variants) - 1) / 2 for i in range(len(measures))])
    axes.set_xticklabels(measures)
    axes.set_title(f"{title}: held-out interactions")
    axes.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
