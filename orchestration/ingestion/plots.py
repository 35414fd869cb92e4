"""Small plots for asset metadata, embedded as Markdown images so the UI shows them inline."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import dagster as dg


def bar_chart(title: str, loaded: Mapping[str, int], dead: Mapping[str, int]) -> dg.MetadataValue:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3), dpi=80)
    left.barh(list(loaded), list(loaded.values()), color="#4f7cac")
    left.set_title("loaded by family")
    top = sorted(dead.items(), key=lambda kv: -kv[1])[:8]
    right.barh([k[:40] for k, _ in top], [v for _, v in top], color="#c0504d")
    right.set_title("dead letters by reason")
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")
