"""How long a visibility change takes to reach the API: Kafka produce -> the next feed
response that honours it. Target: p99 under 2 s.

Builds (or reuses, `--data-dir`) the same small platform as `bench.serving_feed`, starts
`python -m serving` following a topic of its own on the running Kafka
(`KAFKA_BOOTSTRAP_SERVERS`, else .services/services.env), then for `--changes` rounds: picks a
viewer and an author on the viewer's first feed page, produces `mute` (then `unmute`), and
polls the feed every 5 ms until the author is gone (then back). Printed beside two baselines
measured in the same run: one feed request (the polling floor) and a bare Kafka round trip
(produce -> a plain consumer sees it).

    uv run python -m bench.visibility_latency [--data-dir DIR] [--changes 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from appconfig import get_settings
from bench.serving_feed import TOKEN, bench_users, one_request, platform, prepare, serving_server


def bootstrap() -> str:
    value = get_settings().kafka_bootstrap_servers
    env_file = Path(__file__).resolve().parent.parent / ".services" / "services.env"
    if not value and env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("KAFKA_BOOTSTRAP_SERVERS="):
                value = line.split("=", 1)[1].strip()
    if not value:
        raise SystemExit("no Kafka: set KAFKA_BOOTSTRAP_SERVERS or run `make services-up`")
    return value


def feed_authors(port: int, viewer: int) -> set[int]:
    status, body = asyncio.run(
        one_request(port, "GET", f"/v1/users/{viewer}/feed?limit=20", None, TOKEN)
    )
    assert status == 200, body[:300]
    return {int(i["author_id"]) for i in json.loads(body)["items"]}


def wait_for(port: int, viewer: int, author: int, present: bool, timeout: float = 30) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if (author in feed_authors(port, viewer)) == present:
            return time.perf_counter() - started
        time.sleep(0.005)
    raise RuntimeError(f"author {author} {'never came back' if present else 'stayed'} for {viewer}")


def kafka_round_trip(servers: str, topic: str, rounds: int) -> np.ndarray:
    """The floor: produce one message, a plain consumer (assigned, at the end) sees it."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    producer = KafkaProducer(bootstrap_servers=servers.split(","), linger_ms=0)
    consumer = KafkaConsumer(bootstrap_servers=servers.split(","), fetch_max_wait_ms=50)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(parts)
    consumer.seek_to_end(*parts)
    for tp in parts:
        consumer.position(tp)
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        producer.send(topic, json.dumps({"event_type": "noop", "i": i}).encode())
        producer.flush()
        while not any(consumer.poll(timeout_ms=200).values()):
            pass
        times.append(time.perf_counter() - started)
    producer.close()
    consumer.close()
    return np.asarray(times)


def line(name: str, seconds: np.ndarray) -> str:
    ms = seconds * 1000
    return (
        f"{name:<44} n={len(ms):>3}  p50 {np.percentile(ms, 50):8.1f} ms"
        f"  p99 {np.percentile(ms, 99):8.1f} ms  max {ms.max():8.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--data-dir", type=Path, help="reuse a directory a serving bench built")
    parser.add_argument("--changes", type=int, default=40, help="mute/unmute pairs")
    args = parser.parse_args()
    servers = bootstrap()

    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench-visibility-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=servers.split(","))
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        if (data_dir / "ranker").exists():
            settings = platform(data_dir)
        else:
            settings = prepare(data_dir, args.users, args.days, args.seed)
        users = bench_users(settings, 100)
        server = serving_server(
            settings, KAFKA_BOOTSTRAP_SERVERS=servers, SERVING_CHANGE_TOPICS=topic
        )
        producer = KafkaProducer(bootstrap_servers=servers.split(","), linger_ms=0)
        hide: list[float] = []
        show: list[float] = []
        floor: list[float] = []
        try:
            pairs = []
            for viewer in users:
                authors = sorted(feed_authors(server.port, viewer) - {viewer})
                if authors:
                    pairs.append((viewer, authors[0]))
                if len(pairs) == args.changes:
                    break
            for viewer, author in pairs:
                started = time.perf_counter()
                feed_authors(server.port, viewer)
                floor.append(time.perf_counter() - started)
                for kind, present, into in (("mute", False, hide), ("unmute", True, show)):
                    event = {"event_type": kind, "user_id": viewer, "target_user_id": author}
                    producer.send(topic, json.dumps(event).encode(), key=str(viewer).encode())
                    producer.flush()  # the event is produced: the clock runs from here
                    into.append(wait_for(server.port, viewer, author, present))
        finally:
            producer.close()
            server.close()
        kafka = kafka_round_trip(servers, topic, 40)
        admin.delete_topics([topic])
        admin.close()
    print(f"\nload average {os.getloadavg()}, {os.cpu_count()} cores (shared machine)")
    print(line("baseline: one feed request (poll floor)", np.asarray(floor)))
    print(line("baseline: Kafka produce -> plain consumer", kafka))
    print(line("mute produced -> first feed without author", np.asarray(hide)))
    print(line("unmute produced -> first feed with author", np.asarray(show)))
    both = np.asarray(hide + show)
    verdict = "met" if np.percentile(both, 99) < 2.0 else "NOT met"
    print(f"target p99 < 2 s over both: {np.percentile(both, 99) * 1000:.1f} ms ({verdict})")


if __name__ == "__main__":
    main()
