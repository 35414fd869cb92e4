"""Which terms of the hidden truth the ranker's inputs miss, and how much of the truth is nonlinear.

Builds the platform as `bench.ranker_training` does (same workload, same time split), then on
the holdout prints three tables:

1. the truth ablated: the oracle's logit with one term replaced by its training mean (AUC and
   the drop from the oracle): what each term of `TruthModel` carries;
2. what the inputs miss: a logistic regression on the ranker's preprocessed inputs, refitted with
   one true term added; the gain is the part of that term the features do not measure yet;
3. the nonlinear share: logistic regressions on the true terms, with the two interactions
   (interest x visible quality, recency per media type) written as products, and with them
   replaced by their additive parts (interest and quality alone, one recency rate + media type).
   The difference is the most any model could gain over a linear one given perfect inputs.

    uv run python -m bench.ranker_truth_gaps --users 1000 --days 4 --seed 7
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from workload.ground_truth import GroundTruth, TruthModel

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ("photo", "video", "carousel")


def truth_terms(ground_truth: GroundTruth, t: TruthModel) -> pd.DataFrame:
    """One row per impression (event_id): each additive term of the truth's logit, the structural
    affinity split into its parts, plus log1p(age) and the media type (for the additive forms)."""
    imp = ground_truth.impressions.drop_duplicates("event_id")
    structure = ["follows", "followed_by", "topic_overlap", "same_city", "common_follows"]
    pair = ground_truth.affinity[["viewer", "author", *structure, "structural"]].rename(
        columns={"same_city": "pair_same_city"}
    )
    imp = imp.merge(pair, on=["viewer", "author"], how="left")
    distance = np.log1p(np.nan_to_num(imp["distance_km"].to_numpy(dtype=float)) / 100)
    terms = pd.DataFrame(
        {
            "affinity_follows": t.affinity_follow * imp["follows"],
            "affinity_followed_by": t.affinity_followed_by * imp["followed_by"],
            "affinity_topics": t.affinity_topic * imp["topic_overlap"],
            "affinity_city": t.affinity_city * imp["pair_same_city"],
            "affinity_friends_of_friends": t.affinity_fof * np.log1p(imp["common_follows"]),
            "affinity_latent": imp["affinity"] - imp["structural"],
            "content_pref": imp["content_pref"],
            "quality": imp["quality"],
            "interest": t.interest * imp["interest_match"],
            "interest_quality": t.interest_quality * imp["interest_quality"],
            "location": t.location_city * imp["same_city"]
            + t.location_country * imp["same_country"]
            - t.location_distance * distance,
            "velocity": t.velocity * np.log1p(imp["engagements_before"]),
            "repeat": t.repeat * np.log1p(imp["pair_engagements_before"]),
            "recency": -imp["recency_decay"],
            "position": -t.position * np.log1p(imp["position"]),
        }
    ).fillna(0.0)
    media = imp["media_type"].astype(str).to_numpy()
    codes = {str(i): name for i, name in enumerate(MEDIA)}
    media = np.array([codes.get(m, m) for m in media])
    extra = pd.DataFrame(
        {
            "log_age": np.log1p(np.maximum(imp["age_hours"].to_numpy(dtype=float), 0.0)),
            "is_video": (media == "video").astype(float),
            "is_carousel": (media == "carousel").astype(float),
            "true_logit": imp["true_logit"].to_numpy(),
            "event_id": imp["event_id"].to_numpy(),
        }
    )
    return pd.concat([terms.reset_index(drop=True), extra], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "tests"))
    from platform_support import build_platform

    from ml.ranking.baselines import LogisticBaseline
    from ml.ranking.dataset import labels, time_split
    from ml.ranking.evaluate import safe_auc
    from ml.ranking.preprocessing import Preprocessing, feature_columns

    with tempfile.TemporaryDirectory(prefix="bench-gaps-") as scratch:
        built = build_platform(Path(scratch), users=args.users, days=args.days, seed=args.seed)
    frame = built.training_set.frame
    terms = truth_terms(built.workload.ground_truth, built.workload.config.truth)
    names = [c for c in terms.columns if c not in ("log_age", "is_video", "is_carousel")]
    names = [c for c in names if c not in ("true_logit", "event_id")]
    splits = time_split(frame)

    def joined(part: pd.DataFrame) -> pd.DataFrame:
        return part[["impression_id"]].merge(
            terms, how="left", left_on="impression_id", right_on="event_id"
        )

    train, hold = joined(splits.train), joined(splits.holdout)
    y_train, y_hold = labels(splits.train), labels(splits.holdout)
    oracle = safe_auc(y_hold, hold["true_logit"].to_numpy())
    print(f"{args.users} users x {args.days} days, seed {args.seed}: holdout {len(hold):,} rows")
    print(
        f"\n| truth term | oracle AUC without it | drop |\n| --- | --- | --- |\n| (none) | {oracle:.4f} | |"
    )
    for name in names:
        logit = hold["true_logit"] - hold[name] + train[name].mean()
        auc = safe_auc(y_hold, logit.to_numpy())
        print(f"| {name} | {auc:.4f} | {auc - oracle:+.4f} |")

    design = LogisticBaseline(Preprocessing.fit(splits.train, feature_columns(splits.train)))
    x_train, x_hold = design.design(splits.train), design.design(splits.holdout)

    def inputs_auc(extra: list[str]) -> float:
        a = np.column_stack([x_train, *(train[e].to_numpy() for e in extra)])
        b = np.column_stack([x_hold, *(hold[e].to_numpy() for e in extra)])
        model = LogisticRegression(max_iter=500).fit(a, y_train)
        return safe_auc(y_hold, model.predict_proba(b)[:, 1])

    base = inputs_auc([])
    print(
        f"\n| LR on the ranker's inputs + | AUC | gain |\n| --- | --- | --- |\n| (nothing) | {base:.4f} | |"
    )
    for name in [*names, "all"]:
        auc = inputs_auc(names if name == "all" else [name])
        print(f"| {name} | {auc:.4f} | {auc - base:+.4f} |")

    def truth_auc(columns: list[str]) -> float:
        model = LogisticRegression(max_iter=500).fit(train[columns], y_train)
        return safe_auc(y_hold, model.predict_proba(hold[columns])[:, 1])

    additive = [n for n in names if n not in ("interest_quality", "recency")]
    additive += ["log_age", "is_video", "is_carousel"]
    full = truth_auc(names)
    print("\n| LR on the true terms | AUC |\n| --- | --- |")
    print(f"| every term, interactions as products | {full:.4f} |")
    print(f"| additive: no interest x quality, one recency rate | {truth_auc(additive):.4f} |")
    print(f"| additive + interest x quality | {truth_auc([*additive, 'interest_quality']):.4f} |")
    print(f"| additive + recency per media type | {truth_auc([*additive, 'recency']):.4f} |")


if __name__ == "__main__":
    main()
