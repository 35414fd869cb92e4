"""One holdout for every policy's rankers: uniformly random (viewer, post) pairs scored by the truth.

`bench.closed_loop_rounds` scored each retrained ranker on the newest rows of its own training
set, so the served and explore policies were judged on different rows, each drawn from what that
policy's rankers had chosen to show: a ranker that narrowed what it serves is then tested on
the narrow slice it is good at. Drift is a claim about the rest of the space, so this bench
scores every version of every run on the **same** rows, drawn without looking at any slate:

- `draw_pairs`: `n` viewers and `n` posts drawn uniformly (seeded) from the generated world, at
  one time `at` (the loop's start by default: before any round, so the features the platform
  joins for them are the generator's, the same under every policy); posts created before `at`
  and not deleted by then, the viewer never the author; slot 0 of the home feed, as serving
  scores candidates (`serving.features`). Each pair's true P(engage) is the `TruthOracle`'s at
  `at`, and its label is drawn from it (same seed): neither depends on a served slate.
- `pair_features`: the feed ranker's features of those pairs as of `at`, by the platform's own
  point-in-time join (`featurestore.point_in_time.historical_features`) on a run's data dir.
- `score_versions`: every registered `feed-ranker` version of that run scores them.
- `bootstrap`: percentile intervals over resampled pairs for Spearman with the true p and AUC
  against the drawn labels, and for the difference between two rankers on the same resamples
  (paired), which is what says whether one policy's ranker tracks the truth better.

    uv run python -m bench.common_holdout --run served=DIR1 --run explore=DIR2
        [--users 300 --days 2 --seed 7 --pairs 5000 --only-shadow explore]

`--only-shadow RUN`: also trains, on each of that run's retraining sets (the loop's rows), a
ranker with `RankerParams.explored_rows="only"` (the exploration slice alone) and scores it
here: it never served, so it shows what the slice alone learns from the same data, not a loop.
"""

from __future__ import annotations

import argparse
import io
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from scipy.stats import rankdata

HOME_FEED = "home_feed"
ENTITY_TYPES = (
    "impression_id String, user_id Int64, post_id Int64, author_id Int64, at String, "
    "surface String, position Int32, explored Bool, is_engaged Bool"
)


@dataclass(frozen=True)
class World:
    """What the pairs are drawn from: posts (author, created, deleted) and users."""

    users: np.ndarray
    posts: np.ndarray
    authors: np.ndarray
    created_s: np.ndarray
    deleted_s: np.ndarray  # inf: never deleted


def world_of(workload) -> World:
    """The generator's posts and users from its event records (bad records skipped)."""
    authors: dict[int, int] = {}
    created: dict[int, float] = {}
    deleted: dict[int, float] = {}
    from contracts.timestamps import parse_timestamp

    for record in workload.records:
        if record.is_bad or record.event_type not in ("post_created", "post_deleted"):
            continue
        event = orjson.loads(record.line)
        post = int(event["post_id"])
        at = parse_timestamp(event["occurred_at"]).timestamp()
        if record.event_type == "post_created":
            authors[post] = int(event["user_id"])
            created[post] = at
        else:
            deleted[post] = min(at, deleted.get(post, np.inf))
    posts = np.array(sorted(authors), dtype=np.int64)
    users = workload.ground_truth.content_preference["user"].unique()
    return World(
        users=np.array(sorted(int(u) for u in users), dtype=np.int64),
        posts=posts,
        authors=np.array([authors[p] for p in posts], dtype=np.int64),
        created_s=np.array([created[p] for p in posts]),
        deleted_s=np.array([deleted.get(int(p), np.inf) for p in posts]),
    )


def draw_pairs(
    world: World,
    probability: Callable[[int, int, int, float], float],
    at: datetime,
    n: int,
    seed: int,
) -> pd.DataFrame:
    """`n` uniformly random (viewer, live post) pairs at `at`, with the truth's p and a label
    drawn from it. `probability(viewer, post, author, now_s)` is the truth at slot 0."""
    now = at.timestamp()
    live = (world.created_s <= now) & (world.deleted_s > now)
    posts, authors = world.posts[live], world.authors[live]
    if not len(posts):
        raise ValueError(f"no post is live at {at.isoformat()}")
    rng = np.random.default_rng([seed, n])
    viewers = np.empty(n, dtype=np.int64)
    picked = np.empty(n, dtype=np.int64)
    for i in range(n):
        while True:  # a viewer is never shown their own post
            v = int(world.users[rng.integers(len(world.users))])
            j = int(rng.integers(len(posts)))
            if int(authors[j]) != v:
                break
        viewers[i], picked[i] = v, j
    p = np.array(
        [
            probability(int(v), int(posts[j]), int(authors[j]), now)
            for v, j in zip(viewers, picked, strict=True)
        ]
    )
    labels = rng.random(n) < p
    stamp = (
        pd.Timestamp(at).tz_convert(UTC) if pd.Timestamp(at).tzinfo else pd.Timestamp(at, tz=UTC)
    )
    return pd.DataFrame(
        {
            "impression_id": [f"holdout-{i}" for i in range(n)],
            "user_id": viewers,
            "post_id": posts[picked],
            "author_id": authors[picked],
            "event_timestamp": stamp,
            "request_at": stamp,
            "surface": HOME_FEED,
            "position": np.zeros(n, dtype=np.int32),
            "explored": False,
            "is_engaged": labels,
            "true_p": p,
        }
    )


def entity_sql(pairs: pd.DataFrame) -> str:
    """The pairs as a ClickHouse `values` table, typed as `fct_training_impressions`' entity rows."""
    stamp = pd.Timestamp(pairs["event_timestamp"].iloc[0]).strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = ", ".join(
        f"('{i}', {u}, {p}, {a}, '{stamp}', '{HOME_FEED}', 0, false, {str(bool(y)).lower()})"
        for i, u, p, a, y in zip(
            pairs["impression_id"],
            pairs["user_id"],
            pairs["post_id"],
            pairs["author_id"],
            pairs["is_engaged"],
            strict=True,
        )
    )
    at = "toDateTime64(at, 6, 'UTC')"
    return (
        f"select impression_id, user_id, post_id, author_id, {at} as event_timestamp, "
        f"{at} as request_at, surface, position, explored, is_engaged "
        f"from values('{ENTITY_TYPES}', {rows})"
    )


@contextmanager
def entity_table(store, pairs: pd.DataFrame, rows_per_insert: int = 1000) -> Iterator[str]:
    """The pairs in a scratch table of the offline store (the join reads its entity rows once
    per feature view, and a query holding thousands of literal rows exceeds ClickHouse's
    `max_query_size`), inserted `rows_per_insert` at a time; dropped on exit."""
    from feast.infra.utils.clickhouse.connection_utils import get_client

    client = get_client(store.config.offline_store)
    table = f"{store.config.offline_store.database}.holdout_entities_{uuid.uuid4().hex[:12]}"
    first = pairs.iloc[:rows_per_insert]
    client.command(
        f"create table {table} engine = MergeTree order by event_timestamp as {entity_sql(first)}"
    )
    try:
        for start in range(rows_per_insert, len(pairs), rows_per_insert):
            chunk = pairs.iloc[start : start + rows_per_insert]
            client.command(f"insert into {table} {entity_sql(chunk)}")
        yield table
    finally:
        client.command(f"drop table if exists {table}")


def pair_features(data_dir: Path, pairs: pd.DataFrame, service: str = "feed_ranker_v1"):
    """The pairs with the feature service's columns as of their time, by the platform's join."""
    from bench.serving_feed import platform
    from featurestore.config import close_offline_client, feature_store
    from featurestore.point_in_time import historical_features
    from featurestore.training import service_feature_columns

    store = feature_store(platform(data_dir))
    try:
        feature_service = store.get_feature_service(service)
        with entity_table(store, pairs) as table:
            frame = historical_features(store, feature_service, f"select * from {table}").to_df()
        features = service_feature_columns(feature_service)
    finally:
        close_offline_client()
    frame = frame.set_index("impression_id").loc[pairs["impression_id"]].reset_index()
    keys = ["impression_id", "user_id", "post_id", "author_id", "event_timestamp"]
    context = ["surface", "position", "explored", "is_engaged"]
    return frame[[*keys, *context, *features]]


def registered_versions(data_dir: Path) -> list[str]:
    from bench.serving_feed import platform
    from ml.ranking import MODEL_NAME
    from ml.registry import client
    from ml.tracking import tracking_uri

    found = client(tracking_uri(platform(data_dir))).search_model_versions(f"name='{MODEL_NAME}'")
    return sorted((str(v.version) for v in found), key=int)


def score_versions(
    data_dir: Path, frame: pd.DataFrame, logistic: bool = True
) -> dict[str, np.ndarray]:
    """Every registered feed-ranker version of a run, scoring `frame` (and, `logistic`, the
    logistic-regression baseline trained beside it on the same rows)."""
    from bench.serving_feed import platform
    from ml.ranking import MODEL_NAME
    from ml.ranking.baselines import LogisticScorer
    from ml.ranking.scorer import RankerScorer
    from ml.registry import download_version_artifacts
    from ml.tracking import tracking_uri

    uri = tracking_uri(platform(data_dir))
    scores = {}
    for version in registered_versions(data_dir):
        directory = download_version_artifacts(uri, MODEL_NAME, version, "scorer")
        scores[f"v{version}"] = np.asarray(RankerScorer.load(directory).predict(frame))
        if logistic:
            directory = download_version_artifacts(uri, MODEL_NAME, version, "baseline")
            scores[f"v{version} logistic"] = np.asarray(
                LogisticScorer.load(directory).predict(frame)
            )
    return scores


def retraining_sets(data_dir: Path) -> list[pd.DataFrame]:
    """The run's `feed_ranker_v1` training sets (one per round's `build_features`), oldest first."""
    from bench.serving_feed import platform
    from objectstore import store_from_settings
    from orchestration.features.assets import TRAINING_PREFIX

    store = store_from_settings(platform(data_dir))
    prefix = f"{TRAINING_PREFIX}/feed_ranker_v1/"
    keys = sorted(k for k in store.list(prefix) if k.endswith("training_set.parquet"))
    return [pd.read_parquet(io.BytesIO(store.get(k))) for k in keys]


def spearman(scores: np.ndarray, truth: np.ndarray) -> float:
    a, b = rankdata(scores), rankdata(truth)
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator else float("nan")


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if not positives or not negatives:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def text(self, digits: int = 3) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def bootstrap(
    metric: Callable[[np.ndarray], float],
    n: int,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """`metric(rows)` on every row and its percentile interval over `resamples` resamples of the
    rows (drawn with replacement, the same resamples for every metric of one seed)."""
    rng = np.random.default_rng(seed)
    every = np.arange(n)
    values = np.array([metric(rng.integers(0, n, n)) for _ in range(resamples)])
    values = values[~np.isnan(values)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail]) if len(values) else (np.nan, np.nan)
    return Estimate(metric(every), float(low), float(high))


def evaluate(
    scores: dict[str, np.ndarray], truth: np.ndarray, labels: np.ndarray, resamples: int = 1000
) -> dict[str, tuple[Estimate, Estimate]]:
    """Per ranker: (Spearman with the true p, AUC against the labels), each with its interval."""

    def of(s: np.ndarray) -> tuple[Estimate, Estimate]:
        def rho(rows: np.ndarray) -> float:
            return spearman(s[rows], truth[rows])

        def area(rows: np.ndarray) -> float:
            return auc(labels[rows], s[rows])

        return bootstrap(rho, len(truth), resamples), bootstrap(area, len(truth), resamples)

    return {name: of(s) for name, s in scores.items()}


def paired_difference(
    a: np.ndarray, b: np.ndarray, truth: np.ndarray, resamples: int = 1000
) -> Estimate:
    """Spearman(a, truth) - Spearman(b, truth) on the same resampled rows."""
    return bootstrap(
        lambda rows: spearman(a[rows], truth[rows]) - spearman(b[rows], truth[rows]),
        len(truth),
        resamples,
    )


def shadow_only(data_dir: Path, loop_start: datetime, epochs: int, frame: pd.DataFrame):
    """Rankers trained on each retraining set's explored rows alone, scoring `frame`."""
    from bench.closed_loop_rounds import loop_rows
    from ml.ranking.model import RankerParams
    from ml.ranking.train import train_ranker

    scores = {}
    for r, training in enumerate(retraining_sets(data_dir)):
        report = train_ranker(
            loop_rows(training, loop_start),
            RankerParams(epochs=epochs, explored_rows="only"),
            progress=False,
            ladder_enabled=False,
        )
        scores[f"only after round {r}"] = np.asarray(report.scorer.predict(frame))
    return scores


def main(argv: Sequence[str] | None = None) -> None:
    from bench.closed_loop import world_arguments
    from workload.config import WorkloadConfig, default_start
    from workload.generator import generate
    from workload.truth_oracle import TruthOracle

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    world_arguments(parser)
    parser.add_argument("--run", action="append", default=[], help="NAME=DATA_DIR")
    parser.add_argument("--pairs-file", type=Path, help="keep the drawn pairs here (Parquet)")
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--hours-after-start", type=float, default=0.0)
    parser.add_argument("--only-shadow", help="a run's NAME: also train explored_rows=only")
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args(argv)
    runs = dict(item.split("=", 1) for item in args.run)
    loop_start = default_start(args.days) + timedelta(days=args.days)
    at = loop_start + timedelta(hours=args.hours_after_start)
    if args.pairs_file and args.pairs_file.exists():
        pairs = pd.read_parquet(args.pairs_file)  # drawn by an earlier call with the same world
    else:
        workload = generate(WorkloadConfig(users=args.users, days=args.days, seed=args.seed))
        oracle = TruthOracle.of(workload)
        pairs = draw_pairs(
            world_of(workload),
            lambda v, p, a, now: float(oracle.probability(v, [p], [a], [0], now)[0]),
            at,
            args.pairs,
            args.seed,
        )
        if args.pairs_file:
            pairs.to_parquet(args.pairs_file)
    if not args.run:
        return
    truth = pairs["true_p"].to_numpy()
    labels = pairs["is_engaged"].to_numpy().astype(bool)
    print(
        f"common holdout: {len(pairs):,} pairs at {at.isoformat()} (seed {args.seed}), "
        f"{int(labels.sum())} labels drawn positive, mean true p {truth.mean():.4f}; "
        f"truth's own AUC {auc(labels, truth):.3f}",
        flush=True,
    )
    scores: dict[str, np.ndarray] = {}
    reference: pd.DataFrame | None = None
    for name, directory in runs.items():
        frame = pair_features(Path(directory).resolve(), pairs)
        features = [c for c in frame.columns if "__" in c]
        if reference is None:
            reference = frame
        else:
            differ = [c for c in features if not frame[c].equals(reference[c])]
            print(
                f"features of the pairs in {name}: {len(features) - len(differ)} of "
                f"{len(features)} columns equal the first run's; differ: {differ[:8]}",
                flush=True,
            )
        for version, values in score_versions(Path(directory).resolve(), frame).items():
            scores[f"{name} {version}"] = values
        if name == args.only_shadow:
            for label, values in shadow_only(
                Path(directory).resolve(), loop_start, args.epochs, frame
            ).items():
                scores[f"{name} {label}"] = values
    results = evaluate(scores, truth, labels, args.resamples)
    for name, (rho, area) in results.items():
        print(f"  {name}: Spearman with true p {rho.text()}, AUC {area.text()}", flush=True)
    names = list(scores)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if a.split()[1:] == b.split()[1:] and a.split()[0] != b.split()[0]:
                diff = paired_difference(scores[a], scores[b], truth, args.resamples)
                print(f"  {a} - {b}: Spearman difference {diff.text()}", flush=True)
    print(datetime.now(UTC).isoformat(), flush=True)


if __name__ == "__main__":
    main()
