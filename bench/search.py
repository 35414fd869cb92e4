"""Search quality and speed on generated data, each figure beside a baseline from the same run.

Corpus (demo-sized by default: 1,000 users, 10,000 posts over 3 days): 20 topics, each a
hashtag (a workload word + suffix) and three caption words. Half the posts belong to a topic:
they carry its tag (p=0.6) and one or two of its words (p=0.8) after a workload caption; a
third of the other posts carry one random topic word as noise. Engagement is Zipf-like and
independent of topics.

- quality: NDCG@10 per query (the tag, `#tag`, the tag with one typo, two topic words), graded
  relevance 2 = the topic's post with its tag, 1 = the topic's post without it, 0 = anything
  else (a noise post sharing a word is not relevant); the blended ranking against BM25 only
  and recency only (the same candidates, newest first);
- indexing: documents/s of the batch build's upserts and the index size, beside plain tantivy
  `add_document` into an empty index (no delete-by-key) as the floor;
- search: p50/p99 of `SearchService.search` (parse, engine, privacy filter, blend, page of 20)
  beside the bare tantivy search of the same query (top 20, no stored documents);
- with `--opensearch`: the same build, NDCG@10 and post searches on OpenSearch, beside tantivy;
- autocomplete: p99 of Redis sorted-set lookups (`--redis-url`, keys under a unique prefix,
  deleted after) beside a Redis PING round trip, and of the in-memory index (embedded);
- streaming (with `--kafka`): p99 from producing a `post_created` to its being searchable by
  another reader, beside the indexer's own Kafka lag (message timestamp -> offset commit).

    uv run python -m bench.search [--posts 10000] [--redis-url redis://127.0.0.1:16379/0]
        [--kafka 127.0.0.1:19092] [--opensearch http://127.0.0.1:19200]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import tantivy

from search.autocomplete import RedisAutocomplete
from search.build import completions, index_documents
from search.documents import HashtagDoc, MartDocuments, PostDoc, UserDoc
from search.engine import SearchEngine
from search.ranking import BLEND, BM25_ONLY, RECENCY_ONLY
from search.service import SearchService
from search.tantivy_engine import TantivyEngine
from serving.search import AutocompleteIndex
from visibility import VisibilityGraph
from workload.vocab import CAPTIONS, SUFFIXES, WORDS

NOW = 1_780_000_000
TOPICS = 20  # 20 tags + 3 words each use all 80 workload words


@dataclass
class Corpus:
    docs: MartDocuments
    topics: list[tuple[str, tuple[str, ...]]]  # tag, words
    topic_of: dict[int, int]  # post -> topic
    tagged: set[int]  # posts carrying their topic's tag


def make_corpus(users: int, posts: int, seed: int) -> Corpus:
    rng = np.random.default_rng(seed)
    words = list(dict.fromkeys(WORDS))
    rng.shuffle(words)
    topics = []
    for t in range(TOPICS):
        tag = words[t] + SUFFIXES[1 + t % (len(SUFFIXES) - 1)]
        topic_words = tuple(words[TOPICS + 3 * t : TOPICS + 3 * t + 3])
        topics.append((tag, topic_words))
    user_docs = [
        UserDoc(u, f"{words[u % len(words)]}_{u}", followers=float(rng.pareto(1.2) * 10))
        for u in range(1, users + 1)
    ]
    topic_weights = 1.0 / np.arange(1, TOPICS + 1) ** 0.8
    topic_weights /= topic_weights.sum()
    post_docs, topic_of, tagged = [], {}, set()
    for p in range(1, posts + 1):
        caption = str(CAPTIONS[int(rng.integers(len(CAPTIONS)))])
        tags: tuple[str, ...] = ()
        if rng.random() < 0.5:
            t = int(rng.choice(TOPICS, p=topic_weights))
            topic_of[p] = t
            tag, topic_words = topics[t]
            if rng.random() < 0.8:
                picked = rng.choice(3, size=int(rng.integers(1, 3)), replace=False)
                caption += " " + " ".join(topic_words[i] for i in picked)
            if rng.random() < 0.6:
                tags = (tag,)
                tagged.add(p)
                caption += f" #{tag}"
        elif rng.random() < 0.33:
            caption += " " + topics[int(rng.integers(TOPICS))][1][int(rng.integers(3))]
        post_docs.append(
            PostDoc(
                p,
                int(rng.integers(1, users + 1)),
                NOW - int(rng.integers(0, 3 * 86_400)),
                caption,
                tags,
                engagement=float(np.floor(rng.pareto(1.5) * 3)),
            )
        )
    counts: dict[str, int] = {}
    for d in post_docs:
        for tag in d.hashtags:
            counts[tag] = counts.get(tag, 0) + 1
    return Corpus(
        MartDocuments(post_docs, user_docs, [HashtagDoc(t, float(n)) for t, n in counts.items()]),
        topics,
        topic_of,
        tagged,
    )


def typo(word: str) -> str:
    """Two neighbouring letters swapped (one edit with transpositions)."""
    i = len(word) // 2
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def queries(corpus: Corpus) -> list[tuple[int, str]]:
    out = []
    for t, (tag, words) in enumerate(corpus.topics):
        out += [(t, tag), (t, f"#{tag}"), (t, typo(tag)), (t, f"{words[0]} {words[1]}")]
    return out


def ndcg_at_10(ranked: list[int], topic: int, corpus: Corpus) -> float:
    def grade(post: int) -> int:
        if corpus.topic_of.get(post) != topic:
            return 0
        return 2 if post in corpus.tagged else 1

    gains = [grade(p) for p in ranked[:10]]
    dcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((grade(p) for p, t in corpus.topic_of.items() if t == topic), reverse=True)[:10]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def quality(service: SearchService, corpus: Corpus) -> dict[str, float]:
    graph = VisibilityGraph()
    out = {}
    for name, weights in (
        ("blend", BLEND),
        ("bm25_only", BM25_ONLY),
        ("recency_only", RECENCY_ONLY),
    ):
        scores = []
        for topic, text in queries(corpus):
            page = service.search(
                "posts", text, graph=graph, viewer=None, now_ts=NOW, limit=10, weights=weights
            )
            scores.append(ndcg_at_10([int(r.match.doc.key) for r in page.items], topic, corpus))
        out[name] = statistics.fmean(scores)
    return out


def percentiles(samples: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def timed(
    calls: list[Callable[[], Any]], repeat: int, cpu: list[float] | None = None
) -> list[float]:
    """Wall seconds per call; with `cpu`, also this thread's CPU seconds per call (what a call
    costs whatever the machine's load: on a shared machine the wall p99 is mostly the wait for
    a core)."""
    samples = []
    for _ in range(repeat):
        for call in calls:
            started, started_cpu = time.perf_counter(), time.thread_time()
            call()
            samples.append(time.perf_counter() - started)
            if cpu is not None:
                cpu.append(time.thread_time() - started_cpu)
    return samples


def bare_tantivy_floor(docs: MartDocuments, path: Path) -> float:
    """Documents/s of plain `add_document` into an empty index (no delete-by-key, one commit)."""
    engine = TantivyEngine(path)
    index = engine._kinds["posts"]
    writer = index.index.writer(32_000_000, 1)
    started = time.perf_counter()
    for doc in docs.posts:
        writer.add_document(index.to_tantivy(doc))
    writer.commit()
    writer.wait_merging_threads()
    return len(docs.posts) / (time.perf_counter() - started)


def streaming(
    writer_engine: SearchEngine, reader: SearchEngine, bootstrap: str, events: int, rate: float
) -> dict[str, float]:
    """Produce -> searchable: the indexer writes through `writer_engine`; a watcher polls
    `reader`, a second engine over the same index (as the API process has)."""
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from search.indexer import IndexerConsumer, make_consumer

    run = uuid.uuid4().hex[:8]
    topic = f"bench.search.{run}.posts"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="bench-search")
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.close()
    consumer = make_consumer(
        bootstrap, (topic,), group_id=f"bench-search-{run}", metadata_max_age_ms=500
    )
    runner = IndexerConsumer(writer_engine, consumer)
    lags: list[float] = []
    thread = threading.Thread(target=runner.run, kwargs={"max_seconds": 600}, daemon=True)
    thread.start()
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=0)
    deadline = time.monotonic() + 60
    while not runner.ready.is_set() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not runner.ready.is_set():  # a freshly started broker can take this long to make a group
        runner.stop()
        thread.join(30)
        runner.close()
        producer.close()
        raise SystemExit("streaming: the indexer got no partitions within 60 s; is Kafka up?")
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:  # another reader, refreshing as the API's service does (0.25 s)
        service = SearchService(reader, refresh_seconds=0.25)
        while not stop.is_set():
            service.maybe_refresh()
            pending = [k for k in list(sent) if k not in seen]
            if pending:
                found = reader.get("posts", pending)
                now = time.monotonic()
                for key in found:
                    seen[key] = now
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    base = 900_000_000
    for i in range(events):
        post = base + i
        occurred = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        event = {
            "event_id": str(uuid.uuid4()), "event_type": "post_created", "schema_version": 1,
            "occurred_at": occurred, "producer": "bench-search", "user_id": 1 + i % 50,
            "post_id": post, "media_type": "photo", "caption": f"streamed post {i}",
            "media": [{"object_key": f"b/{post}.jpg", "mime_type": "image/jpeg", "width": 10,
                       "height": 10, "size_bytes": 10}],
        }  # fmt: skip
        sent[str(post)] = time.monotonic()
        producer.send(topic, json.dumps(event).encode(), key=str(event["user_id"]).encode())
        producer.flush()
        lags += runner.report.lag_seconds
        time.sleep(1.0 / rate)
    deadline = time.monotonic() + 30
    while len(seen) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    runner.stop()
    thread.join(30)
    watcher.join(5)
    runner.close()
    producer.close()
    latencies = [seen[k] - sent[k] for k in sent if k in seen]
    p50, p99 = percentiles(latencies) if latencies else (float("nan"), float("nan"))
    return {
        "events": float(len(sent)),
        "searchable": float(len(latencies)),
        "p50_ms": p50,
        "p99_ms": p99,
        "kafka_lag_p99_ms": float(np.percentile(np.asarray(lags or [0]) * 1000, 99)),
    }


def opensearch(
    url: str,
    corpus: Corpus,
    texts: list[str],
    graph: VisibilityGraph,
    repeat: int,
    tantivy_service: SearchService,
    tantivy_quality: dict[str, float],
) -> None:
    """The same batch build, NDCG and post searches on OpenSearch (indexes of a unique prefix,
    dropped after), printed beside tantivy's figures of this run."""
    from search.opensearch_engine import OpenSearchEngine

    engine = OpenSearchEngine(url, f"bench-search-{uuid.uuid4().hex[:8]}")
    try:
        report = index_documents(engine, corpus.docs)
        n_docs = sum(report.documents.values())
        service = SearchService(engine)
        q = quality(service, corpus)
        on_os: list[float] = []
        on_tantivy: list[float] = []
        cpu: dict[str, list[float]] = {"os": [], "tantivy": []}
        for _ in range(repeat):  # alternating, so both see the same machine load
            for name, svc, samples in (
                ("os", service, on_os),
                ("tantivy", tantivy_service, on_tantivy),
            ):
                calls: list[Callable[[], Any]] = [
                    partial(svc.search, "posts", t, graph=graph, viewer=1, now_ts=NOW)
                    for t in texts
                ]
                samples += timed(calls, 1, cpu[name])
        s50, s99 = percentiles(on_os)
        t50, t99 = percentiles(on_tantivy)
        oc50, oc99 = percentiles(cpu["os"])
        tc50, tc99 = percentiles(cpu["tantivy"])
        print(f"opensearch indexing: {n_docs:,} documents in {report.index_seconds:.2f} s = "
              f"{report.docs_per_second:,.0f} docs/s; index {report.index_bytes / 1e6:.1f} MB; "
              f"NDCG@10 blend {q['blend']:.3f} (tantivy {tantivy_quality['blend']:.3f}), BM25 "
              f"only {q['bm25_only']:.3f} (tantivy {tantivy_quality['bm25_only']:.3f})")  # fmt: skip
        print(f"post search (service, page of 20): opensearch p50 {s50:.2f} ms, p99 {s99:.2f} ms;"
              f" tantivy p50 {t50:.2f}, p99 {t99:.2f} ms; {len(on_os)} calls each, alternating"
              f" rounds; load average "
              f"{os.getloadavg()[0]:.1f}")  # fmt: skip
        print(f"post search CPU per call (this thread; OpenSearch's own work is in its JVM): "
              f"opensearch p50 {oc50:.2f}, p99 {oc99:.2f} ms; tantivy p50 {tc50:.2f}, p99 "
              f"{tc99:.2f} ms")  # fmt: skip
    finally:
        engine.remove()
        engine.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--kafka", default=None, help="bootstrap servers for the streaming test")
    parser.add_argument(
        "--opensearch", default=None, help="an OpenSearch URL: the same build, NDCG and search"
    )
    parser.add_argument("--stream-events", type=int, default=200)
    parser.add_argument("--stream-rate", type=float, default=20.0, help="events per second")
    args = parser.parse_args(argv)
    print(f"machine: {platform.node()} {os.cpu_count()} cores, {platform.python_version()}, "
          f"{getattr(tantivy, '__version__', 'tantivy 0.27.0')}; load average at start "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    corpus = make_corpus(args.users, args.posts, args.seed)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        engine = TantivyEngine(root / "search")
        report = index_documents(engine, corpus.docs)
        n_docs = sum(report.documents.values())
        floor = bare_tantivy_floor(corpus.docs, root / "floor")
        print(f"indexing: {n_docs:,} documents in {report.index_seconds:.2f} s = "
              f"{report.docs_per_second:,.0f} docs/s (bare tantivy add_document floor: "
              f"{floor:,.0f} docs/s); index {report.index_bytes / 1e6:.1f} MB "
              f"({report.index_bytes / max(n_docs, 1):.0f} bytes/document)")  # fmt: skip
        # the same corpus upserted again: nothing changes (exactly-once in effect)
        before = engine.count("posts")
        engine.upsert(corpus.docs.posts[:1000])
        assert engine.count("posts") == before, "re-upserting duplicated documents"

        service = SearchService(engine)
        q = quality(service, corpus)
        print(f"NDCG@10 over {len(queries(corpus))} queries: blend {q['blend']:.3f}, "
              f"BM25 only {q['bm25_only']:.3f}, recency only {q['recency_only']:.3f}")  # fmt: skip

        graph = VisibilityGraph.from_edges(
            blocks=[(1, u) for u in range(2, 40)], private_users=range(40, 120)
        )
        texts = [text for _, text in queries(corpus)] + ["golden hour", "weekend coffee"]
        calls: list[Callable[[], Any]] = [
            partial(service.search, "posts", t, graph=graph, viewer=1, now_ts=NOW) for t in texts
        ]
        calls += [
            partial(service.search, "users", u.username[:5], graph=graph, viewer=1, now_ts=NOW)
            for u in corpus.docs.users[:40]
        ]
        posts_index = engine._kinds["posts"]
        searcher = posts_index.index.searcher()
        from search.engine import Filters
        from search.query import parse_query

        bare: list[Callable[[], Any]] = [
            partial(searcher.search, posts_index.text_query(parse_query(t), True), 20, count=False)
            for t in texts
        ]
        loads = [os.getloadavg()[0]]
        search_cpu: list[float] = []
        s50, s99 = percentiles(timed(calls, args.repeat, search_cpu))
        c50, c99 = percentiles(search_cpu)
        b50, b99 = percentiles(timed(bare, args.repeat))
        loads.append(os.getloadavg()[0])
        filtered = percentiles(
            timed(
                [
                    partial(
                        service.search, "posts", t, graph=graph, viewer=1, now_ts=NOW,
                        filters=Filters(since_ts=NOW - 86_400, until_ts=NOW),
                    )
                    for t in texts
                ],
                args.repeat,
            )
        )  # fmt: skip
        print(f"search: p50 {s50:.2f} ms, p99 {s99:.2f} ms over {len(calls) * args.repeat} calls "
              f"(target p99 <= 20 ms); with a date filter p50 {filtered[0]:.2f}, p99 "
              f"{filtered[1]:.2f} ms; bare tantivy top-20 of the same queries p50 {b50:.2f}, "
              f"p99 {b99:.2f} ms; load average {min(loads):.1f}-{max(loads):.1f}")  # fmt: skip
        print(f"search CPU per call (this thread): p50 {c50:.2f} ms, p99 {c99:.2f} ms")
        if args.opensearch:
            opensearch(args.opensearch, corpus, texts, graph, args.repeat, service, q)

        entries = completions(corpus.docs)
        memory = AutocompleteIndex.build(
            [u.username for u in corpus.docs.users],
            [u.user_id for u in corpus.docs.users],
            [h.hashtag for h in corpus.docs.hashtags],
            [int(h.posts) for h in corpus.docs.hashtags],
            [u.followers for u in corpus.docs.users],
        )
        prefixes = [e.text.lstrip("#")[:n] for e in entries[:200] for n in (1, 2, 3, 5)]
        m50, m99 = percentiles(timed([partial(memory.search, p, 10) for p in prefixes], 3))
        print(
            f"autocomplete in memory (embedded): p50 {m50 * 1000:.1f} us, p99 {m99 * 1000:.1f} us"
        )
        if args.redis_url:
            import redis

            ac = RedisAutocomplete.from_url(
                args.redis_url, prefix=f"bench-search-{uuid.uuid4().hex[:8]}:"
            )
            try:
                started = time.perf_counter()
                ac.add(entries)
                write = time.perf_counter() - started
                client = redis.Redis.from_url(args.redis_url)
                r50, r99 = percentiles(timed([partial(ac.search, p, 10) for p in prefixes], 3))
                p50, p99 = percentiles(timed([client.ping for _ in prefixes], 3))
                print(f"autocomplete on Redis: {len(entries):,} entries written in {write:.2f} s; "
                      f"p50 {r50:.2f} ms, p99 {r99:.2f} ms (target p99 <= 5 ms); Redis PING "
                      f"round trip p50 {p50:.2f}, p99 {p99:.2f} ms")  # fmt: skip
            finally:
                ac.clear()
        if args.kafka:
            engines: list[tuple[str, SearchEngine, SearchEngine]] = [
                ("tantivy", TantivyEngine(root / "search"), TantivyEngine(root / "search"))
            ]
            if args.opensearch:
                from search.opensearch_engine import OpenSearchEngine

                prefix = f"bench-stream-{uuid.uuid4().hex[:8]}"
                engines.append(
                    (
                        "opensearch",
                        OpenSearchEngine(args.opensearch, prefix),
                        OpenSearchEngine(args.opensearch, prefix),
                    )
                )
            for name, writer, reader in engines:
                try:
                    result = streaming(
                        writer, reader, args.kafka, args.stream_events, args.stream_rate
                    )
                finally:
                    if name == "opensearch":
                        writer.remove()  # type: ignore[attr-defined]
                        writer.close()  # type: ignore[attr-defined]
                        reader.close()  # type: ignore[attr-defined]
                print_streaming(name, result)
    return 0


def print_streaming(name: str, result: dict[str, float]) -> None:
    print(f"streaming into {name}: {int(result['searchable'])}/{int(result['events'])} posts "
          f"searchable; produce -> searchable by another reader p50 {result['p50_ms']:.0f} ms, "
          f"p99 {result['p99_ms']:.0f} ms (target p99 <= 2000 ms); indexer Kafka lag (message "
          f"-> committed) p99 {result['kafka_lag_p99_ms']:.0f} ms; load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
