"""A histogram of feed lengths, embedded in metadata as a Markdown image (shown inline in the UI)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import dagster as dg


def length_histogram(lengths: Sequence[int], cap: int) -> dg.MetadataValue:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3), dpi=80)
    ax.hist(list(lengths) or [0], bins=min(40, max(1, len(set(lengths)))), color="#4f7cac")
    ax.axvline(cap, color="#c0504d", linestyle="--", label=f"cap {cap}")
    ax.set_xlabel("entries in a user's precomputed feed")
    ax.set_ylabel("users")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![feed lengths](data:image/png;base64,{encoded})")
