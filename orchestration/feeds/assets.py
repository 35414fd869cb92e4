"""The precomputed home feeds asset: every user's pushed candidates, from the marts."""

import dagster as dg
import numpy as np
from rich.progress import Progress

from appconfig import get_settings
from fanout.precompute import load_snapshot, write_feeds
from orchestration.feeds.plots import length_histogram
from orchestration.feeds.resources import FeedStoreResource
from orchestration.resources import ClickHouseResource

HOME_FEEDS = dg.AssetKey(["feeds", "home_feeds"])
# the dbt models load_snapshot reads (fanout/precompute.py, visibility/graph.py): their asset
# keys come from the manifest when the domain's definitions are built (orchestration.feeds.defs)
SOURCE_MODELS = ("dim_posts", "dim_users", "int_follow_graph", "int_blocks", "int_mutes")


@dg.asset(
    key=HOME_FEEDS,
    group_name="feeds",
    kinds={"redis", "sqlite"},
    pool="clickhouse",
    description="Each user's candidate home feed (newest first, capped): recent posts of the "
    "non-celebrity authors they follow and may see. Celebrities are pulled at read time.",
)
def home_feeds(
    context: dg.AssetExecutionContext,
    clickhouse: ClickHouseResource,
    feed_store: FeedStoreResource,
) -> dg.MaterializeResult:
    settings = get_settings()
    with clickhouse.client() as client:  # closed before the long write: chDB is one process
        snapshot = load_snapshot(client, settings)
    context.log.info(
        f"{len(snapshot.users)} users, {len(snapshot.posts)} recent posts, "
        f"{len(snapshot.celebrities)} celebrity authors left to pull, as of {snapshot.as_of}"
    )
    with feed_store.open() as store, Progress(transient=True) as progress:
        task = progress.add_task("writing feeds", total=len(snapshot.users))

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done)
            if done == total or done % 5_000 < 500:
                context.log.info(f"feeds written: {done}/{total}")

        report = write_feeds(store, snapshot, progress=advance)
        cap = store.max_length
    lengths = np.array(report.lengths or [0])
    return dg.MaterializeResult(
        metadata={
            "users_written": report.users_written,
            "entries": report.entries,
            "celebrity_authors_skipped": report.celebrity_authors_skipped,
            "posts_considered": report.posts_considered,
            "withheld_by_privacy": report.withheld_by_privacy,
            "empty_feeds": int((lengths == 0).sum()),
            "median_length": float(np.median(lengths)),
            "capped_feeds": int((lengths >= cap).sum()),
            "as_of": str(report.as_of),
            "window_hours": settings.feed_window_hours,
            "store": feed_store.describe(),
            "feed_lengths": length_histogram(report.lengths, cap),
        }
    )
