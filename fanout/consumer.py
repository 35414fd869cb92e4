"""`python -m fanout.consumer`: the streaming fan-out process (long-running, not a Dagster sensor).

A sensor would add a run launch per tick to the latency of every post; a post should be in its
followers' feeds within seconds, so this runs beside the API (systemd, a container, `make fanout-consumer`).
At start it loads the follow graph and the celebrities from the marts and closes its ClickHouse
client at once (embedded chDB allows one process per data directory); `--refresh-seconds`
reloads that snapshot periodically, between polls.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from dataclasses import asdict
from typing import Any

from appconfig import Settings, get_settings
from fanout import open_feed_store
from fanout.fanout import CelebrityPolicy, FanOut
from fanout.pull import RecentPostIndex, newest_post_at, recent_posts
from fanout.streaming import (
    CONSUMER_GROUP,
    POSTS_TOPIC,
    RELATIONSHIPS_TOPIC,
    FanOutConsumer,
    make_consumer,
)
from warehouse import clickhouse_client

BACKFILL_POSTS = 20  # recent posts per author pushed to a new follower


def load_fanout_state(settings: Settings) -> tuple[Any, set[int], RecentPostIndex]:
    """The visibility graph, the celebrity authors and everyone else's recent posts (to
    backfill new follows), as of the marts."""
    from visibility import VisibilityGraph

    recent = RecentPostIndex(per_author=BACKFILL_POSTS)
    with clickhouse_client(settings.clickhouse_url) as client:
        graph = VisibilityGraph.from_clickhouse(client, settings)
        celebrities = CelebrityPolicy.from_settings(settings).load(client, settings)
        as_of = newest_post_at(client, settings)
        if as_of is not None:
            recent.replace(
                recent_posts(client, settings, as_of, BACKFILL_POSTS, exclude_authors=celebrities),
                as_of,
            )
    return graph, celebrities, recent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group-id", default=CONSUMER_GROUP)
    parser.add_argument("--posts-topic", default=POSTS_TOPIC)
    parser.add_argument("--relationships-topic", default=RELATIONSHIPS_TOPIC)
    parser.add_argument("--from-beginning", action="store_true", help="a new group starts at 0")
    parser.add_argument("--refresh-seconds", type=float, default=900.0)
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)

    settings = get_settings()
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("KAFKA_BOOTSTRAP_SERVERS is not set: there is no broker to consume from")
    graph, celebrities, recent = load_fanout_state(settings)
    logging.info("loaded %r and %d celebrity authors", graph, len(celebrities))
    store = open_feed_store(settings)
    store.ping()
    fanout = FanOut(store, graph, celebrities, CelebrityPolicy.from_settings(settings), recent)

    def refresh() -> None:
        """Keep fanning out on the old snapshot if the warehouse is busy (embedded chDB allows
        one process at a time) or down; the next refresh tries again."""
        try:
            fanout.graph, fanout.celebrities, fanout.recent = load_fanout_state(settings)
        except Exception as exc:  # any failure here must not stop the fan-out
            logging.warning("snapshot refresh failed, keeping the previous one: %s", exc)
            return
        logging.info("refreshed the follow graph from the marts: %r", fanout.graph)

    consumer = make_consumer(
        settings.kafka_bootstrap_servers,
        (args.posts_topic, args.relationships_topic),
        group_id=args.group_id,
        **({"auto_offset_reset": "earliest"} if args.from_beginning else {}),
    )
    runner = FanOutConsumer(fanout, consumer, refresh=refresh, refresh_seconds=args.refresh_seconds)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    try:
        report = runner.run(max_seconds=args.max_seconds)
    except KeyboardInterrupt:
        report = runner.report
    finally:
        runner.close()
        store.close()
    summary = asdict(report)
    summary["fanout"]["celebrity_authors"] = len(report.fanout.celebrity_authors)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
