"""A trained feed ranker for the benches that serve one (serving latency, the closed loop).

The benches used to register an untrained network (fitted preprocessing, initial weights): fine
for latency, where scoring cost does not depend on the weights, but the closed loop served it as
`@champion` and as its experiment arms, so what it measured was two random networks shaping the
data the next ranker trained on. This trains with the platform's own code
(`ml.ranking.train.train_ranker`) on the training set at hand and publishes with
`ml.ranking.publish.publish_ranker`, as the Dagster asset `models/feed_ranker` does: params,
holdout metrics, signature, the logistic-regression baseline (alias `baseline`), and `champion`
moved only by the promotion gate. When the gate refuses, there is no champion and serving ranks
with the baseline, as it would on the platform; the caller decides what that means for it.

`epochs` and the rest of `RankerParams` are passed in (tests train a few epochs on small sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml import registry
from ml.ranking import MODEL_NAME
from ml.ranking.model import RankerParams
from ml.ranking.publish import PublishedRanker, publish_ranker
from ml.ranking.train import RankerReport, train_ranker

FEATURE_SERVICE = "feed_ranker_v1"


@dataclass
class RegisteredRanker:
    report: RankerReport
    published: PublishedRanker

    @property
    def version(self) -> str:
        return self.published.version

    @property
    def promoted(self) -> bool:
        return self.published.decision.promoted

    def line(self) -> str:
        """One line for the bench's log: the holdout AUCs and the gate's verdict."""
        aucs = ", ".join(f"{k} {e.auc:.4f}" for k, e in self.report.evaluations.items())
        epochs = len(self.report.history.get("loss", []))
        return (
            f"ranker: {MODEL_NAME}/{self.version} trained {epochs} epochs on "
            f"{len(self.report.splits.train):,} rows; holdout AUC {aucs}; gate: "
            f"{self.published.decision.reason}"
        )


def register_ranker(
    tracking_uri: str,
    frame: pd.DataFrame,
    work: Path,
    params: RankerParams | None = None,
    *,
    truth_impressions: pd.DataFrame | None = None,
    lineage: registry.TrainingLineage | None = None,
    run_name: str = "bench",
    name: str = MODEL_NAME,
    ladder: bool = False,
) -> RegisteredRanker:
    """Train on `frame` (time split: train / validation / holdout) and publish through the gate.

    `ladder` (the ablation ladder of the Dagster asset) is off by default: it fits extra models
    the benches do not read."""
    report = train_ranker(
        frame,
        params,
        truth_impressions=truth_impressions,
        progress=False,
        ladder_enabled=ladder,
    )
    work.mkdir(parents=True, exist_ok=True)
    published = publish_ranker(
        report,
        tracking_uri,
        lineage or registry.TrainingLineage(FEATURE_SERVICE, "", "bench"),
        name=name,
        artifact_location=(work / "artifacts").as_uri(),
        run_name=run_name,
    )
    registered = RegisteredRanker(report, published)
    print(registered.line(), flush=True)
    return registered
