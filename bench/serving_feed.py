"""The serving API under load from a second process on loopback.

Builds (or reuses, `--data-dir`) a small platform: marts from a generated workload, Feast
applied and materialized (SQLite online store), the feed precompute (SQLite feed store), and a
Keras ranker trained on the marts' training set and published as the platform publishes it
(`bench.trained_ranker`: `feed-ranker@champion` in a SQLite MLflow store only if it passes the
promotion gate; when the gate refuses it, this latency bench serves it anyway and says so). Then it starts
`python -m serving` (one uvicorn worker, access log off) and drives it with a minimal
keep-alive HTTP/1.1 client on asyncio (this process):

- `/healthz`: the framework's floor, the baseline of the feed figures;
- the home feed, cached (each user's ranked snapshot reused) and uncached (a server started with
  a cache ttl of 1 us, so every request gathers, filters, reads features and ranks);
- `POST /v1/rank` with 1,000 candidates beside `mlflow models serve` (one worker) scoring the
  same model on the same 1,000 rows of features (which our endpoint also has to read).

    uv run python -m bench.serving_feed [--users 1000 --days 3] [--data-dir DIR] [--seconds 10]
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from appconfig import Settings, path_with

if TYPE_CHECKING:  # TensorFlow loads when a bench trains, not when it imports `platform`
    from ml.ranking.model import RankerParams

TOKEN = "bench-token"


# --- the platform ------------------------------------------------------------------------------


def prepare(
    data_dir: Path,
    users: int,
    days: int,
    seed: int,
    params: "RankerParams | None" = None,
    *,
    serve_refused: bool = True,
) -> Settings:
    """Marts, Feast, feeds and a trained, registered ranker under `data_dir` (`params`: its
    training, `RankerParams()` by default as in the Dagster asset). `serve_refused`: a latency
    bench serves the network even when the gate refused it; a quality bench passes False."""
    from bench.online_features import build_marts
    from bench.trained_ranker import register_ranker
    from featurestore.config import close_offline_client, feature_store
    from featurestore.materialize import data_watermark, materialize_online
    from featurestore.registry import apply_definitions
    from featurestore.training import build_training_set
    from ml.registry import TrainingLineage
    from ml.tracking import tracking_uri
    from objectstore import store_from_settings
    from orchestration.models.ranker import ground_truth_impressions

    build_marts(data_dir, users, days, seed)
    settings = platform(data_dir)
    store = feature_store(settings)
    try:
        apply_definitions(store, settings)
        watermark = data_watermark(store, settings)
        assert watermark is not None, "the marts are empty"
        materialize_online(store, watermark, count_rows=False)
        training = build_training_set(store, settings, as_of=watermark)
    finally:
        close_offline_client()
    precompute_feeds(settings)
    registered = register_ranker(
        tracking_uri(settings),
        training.frame,
        data_dir / "ranker",
        params,
        truth_impressions=ground_truth_impressions(store_from_settings(settings)),
        lineage=TrainingLineage(training.service, training.version, "bench"),
        run_name="bench champion",
    )
    if serve_refused:
        serve_trained_ranker(settings, registered.version)
    return settings


def platform(data_dir: Path) -> Settings:
    """Embedded settings rooted in `data_dir`, whatever the environment says."""
    return Settings(
        PLATFORM_DATA_DIR=data_dir,
        CLICKHOUSE_URL="",
        REDIS_URL=None,
        FEED_STORE_URL="",
        MLFLOW_TRACKING_URI="",
        METADATA_DB_URL="",
    )


def precompute_feeds(settings: Settings) -> None:
    from fanout import open_feed_store
    from fanout.precompute import load_snapshot, write_feeds
    from warehouse import clickhouse_client

    with clickhouse_client(settings.clickhouse_url) as client:
        snapshot = load_snapshot(client, settings)
    with open_feed_store(settings) as store:
        report = write_feeds(store, snapshot)
    print(f"feeds: {report.users_written:,} users, {report.entries:,} entries")


def ranker_inputs(frame: pd.DataFrame, names: list[str], categorical: set[str]) -> pd.DataFrame:
    """The ranker's input columns as its signature types them: float64, categoricals as text."""
    out = frame.reindex(columns=names).reset_index(drop=True)
    for name in out.columns:
        if name in categorical:
            out[name] = [v if isinstance(v, str) else "" for v in out[name].astype(object)]
        else:
            out[name] = pd.to_numeric(out[name], errors="coerce").astype("float64")
    return out


# --- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process on loopback, ready when `ready_path` answers 200."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        port: int,
        ready_path: str,
        timeout: float = 300,
        cwd: Path | None = None,
    ) -> None:
        self.port = port
        # the log outlives this constructor (read when the server dies): no context manager
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="serving-bench-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            argv,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{argv[:3]} exited: {Path(self.log.name).read_text()[-3000:]}")
            try:
                status, _ = asyncio.run(one_request(port, "GET", ready_path))
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        self.close()
        raise RuntimeError(f"{argv[:3]} did not become ready in {timeout:g} s")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def serving_server(settings: Settings, **overrides: str) -> Server:
    return start_serving(settings, overrides)


def start_serving(
    settings: Settings,
    overrides: dict[str, str],
    timeout: float = 300,
    code: Path | None = None,
) -> Server:
    """`python -m serving` on `settings`; `code`: run another checkout's serving package (a
    baseline commit, e.g. `git archive main | tar -x -C DIR`) with this environment."""
    port = free_port()
    env = {
        **os.environ,
        "PLATFORM_DATA_DIR": str(settings.data_dir),
        "CLICKHOUSE_URL": settings.clickhouse_url,
        "SERVING_TOKENS": TOKEN,
        "SERVING_PORT": str(port),
        "SERVING_ACCESS_LOG": "false",
        "SERVING_SNAPSHOT_REFRESH_SECONDS": "0",
        "SERVING_MODEL_RELOAD_SECONDS": "3600",
        **overrides,
    }
    for name in ("REDIS_URL", "FEED_STORE_URL", "MLFLOW_TRACKING_URI", "METADATA_DB_URL"):
        env.pop(name, None)
    if code is not None:  # `-m` puts the working directory first on sys.path
        env["PYTHONPATH"] = str(code)
    return Server([sys.executable, "-m", "serving"], env, port, "/readyz", timeout, cwd=code)


def mlflow_server(settings: Settings, version: str) -> Server:
    from ml.tracking import tracking_uri

    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # mlflow execs `uvicorn` from PATH
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri(settings),
        "PATH": path_with(bin_dir),
    }
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    argv = [mlflow, "models", "serve", "-m", f"models:/feed-ranker/{version}", "-p", str(port)]
    argv += ["-h", "127.0.0.1", "--env-manager", "local", "-w", "1"]
    return Server(argv, env, port, "/ping")


# --- the load generator --------------------------------------------------------------------------


def _request(method: str, path: str, body: bytes | None, token: str | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, body
        body += chunk[:-2]


async def one_request(
    port: int, method: str, path: str, body: bytes | None = None, token: str | None = None
) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_request(method, path, body, token))
        await writer.drain()
        return await _read_response(reader)
    finally:
        writer.close()


@dataclass
class Load:
    name: str
    requests: int
    seconds: float
    latencies_ms: np.ndarray
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def line(self) -> str:
        p50, p99 = np.percentile(self.latencies_ms, [50, 99])
        return (
            f"{self.name:<44} {self.rate:>8,.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
            + (f"   errors {self.errors}" if self.errors else "")
        )


async def _drive(
    port: int,
    requests: list[tuple[str, str, bytes | None]],
    concurrency: int,
    seconds: float,
    token: str | None,
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    encoded = [_request(m, p, b, token) for m, p, b in requests]

    async def worker(offset: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(encoded[i % len(encoded)])
                status, _ = await _read_response(reader)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += status >= 400
                i += concurrency
        finally:
            writer.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return latencies, errors


def drive(
    name: str,
    port: int,
    requests: list[tuple[str, str, bytes | None]],
    *,
    concurrency: int,
    seconds: float,
    token: str | None = TOKEN,
) -> Load:
    asyncio.run(_drive(port, requests, concurrency, min(2.0, seconds / 4), token))  # warm-up
    started = time.perf_counter()
    latencies, errors = asyncio.run(_drive(port, requests, concurrency, seconds, token))
    load = Load(name, len(latencies), time.perf_counter() - started, np.asarray(latencies), errors)
    print(load.line(), flush=True)
    return load


# --- the benchmark -------------------------------------------------------------------------------


def bench_users(settings: Settings, count: int) -> list[int]:
    from warehouse import clickhouse_client

    with clickhouse_client(settings.clickhouse_url) as client:
        rows = client.query(
            f"select follower_id from {settings.intermediate_database}.int_follow_graph"
            f" group by follower_id order by count() desc limit {count}"
        ).result_rows
    return [int(r[0]) for r in rows]


def serve_trained_ranker(settings: Settings, version: str) -> None:
    """The latency figures are the neural ranker's: when the gate refused it (on a bench's small
    data the ranker and the logistic regression are often within noise), the bench's own
    temporary registry aliases it `champion` anyway, and says so; a model-quality bench (the
    closed loop) must not do this."""
    from ml.ranking import MODEL_NAME
    from ml.registry import champion_version, set_alias
    from ml.tracking import tracking_uri

    uri = tracking_uri(settings)
    if champion_version(uri, MODEL_NAME) is None:
        set_alias(uri, MODEL_NAME, "champion", version)
        print(
            f"ranker: the gate did not promote {MODEL_NAME}/{version}; this latency bench serves "
            "it anyway (scoring cost does not depend on which model won)",
            flush=True,
        )


def rank_payloads(settings: Settings, user: int, candidates: int) -> tuple[bytes, bytes, int]:
    """The same request both ways: ours (user + post ids) and MLflow's (the feature rows)."""
    from featurestore.config import feature_store
    from ml.ranking.scorer import load_champion
    from ml.tracking import tracking_uri
    from serving.features import FeatureReaders
    from warehouse import clickhouse_client

    with clickhouse_client(settings.clickhouse_url) as client:
        posts = client.query_df(
            f"select post_id, author_id from {settings.marts_database}.dim_posts"
            f" where not is_deleted order by created_at desc limit {candidates}"
        )
        now = client.query(
            f"select max(created_at) from {settings.marts_database}.dim_posts"
        ).result_rows[0][0]
    readers = FeatureReaders.open(feature_store(settings))
    frame = readers.ranking_frame(
        user,
        posts["post_id"].to_numpy("int64"),
        posts["author_id"].to_numpy("int64"),
        pd.Timestamp(now, tz="UTC").to_pydatetime(),
        "home_feed",
    )
    readers.close()
    scorer = load_champion(tracking_uri(settings))
    spec = scorer.preprocessing
    rows = ranker_inputs(frame, spec.feature_names, {c.name for c in spec.categorical})
    split = json.loads(rows.to_json(orient="split", index=False))
    ours = json.dumps({"user_id": user, "post_ids": posts["post_id"].tolist()}).encode()
    theirs = json.dumps({"dataframe_split": split}).encode()
    return ours, theirs, len(posts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--data-dir", type=Path, help="reuse a directory this benchmark built")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument(
        "--epochs", type=int, default=60, help="the ranker's epoch bound (early stopping decides)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        if (data_dir / "ranker").exists():
            settings = platform(data_dir)  # built by an earlier run
        else:
            from ml.ranking.model import RankerParams

            params = RankerParams(epochs=args.epochs)
            settings = prepare(data_dir, args.users, args.days, args.seed, params)
        users = bench_users(settings, 200)
        ours_rank, mlflow_rank, rows = rank_payloads(settings, users[0], args.candidates)
        feed: list[tuple[str, str, bytes | None]] = [
            ("GET", f"/v1/users/{u}/feed?limit=20", None) for u in users
        ]
        c = args.concurrency
        print(f"\nload: {args.seconds:g} s per line, {c} connections, loopback, 1 server worker")

        server = serving_server(
            settings,
            SERVING_PUSHED_CANDIDATES="800",
            SERVING_EXPLORE_CANDIDATES="200",
        )
        try:
            health = drive(
                "GET /healthz (framework floor)",
                server.port,
                [("GET", "/healthz", None)],
                concurrency=c,
                seconds=args.seconds,
                token=None,
            )
            for method, path, body in feed:  # every user's snapshot built once
                asyncio.run(one_request(server.port, method, path, body, TOKEN))
            cached = drive(
                "GET feed, cached", server.port, feed, concurrency=c, seconds=args.seconds
            )
            _, sample = asyncio.run(one_request(server.port, "GET", feed[0][1], None, TOKEN))
            info = json.loads(sample)
            ours = drive(
                f"POST /v1/rank, {rows} candidates",
                server.port,
                [("POST", "/v1/rank", ours_rank)],
                concurrency=2,
                seconds=args.seconds,
            )
            version = info["model_version"].split("/")[-1]
        finally:
            server.close()

        server = serving_server(
            settings,
            SERVING_CACHE_TTL_SECONDS="0.000001",
            SERVING_PUSHED_CANDIDATES="800",
            SERVING_EXPLORE_CANDIDATES="200",
        )
        try:
            candidates, ranked = [], []
            for _, path, _ in feed[:20]:
                _, body = asyncio.run(one_request(server.port, "GET", path, None, TOKEN))
                candidates.append(json.loads(body)["candidates"])
                ranked.append(json.loads(body)["ranked"])
            uncached = drive(
                f"GET feed, uncached (~{np.mean(candidates):.0f} gathered, ~{np.mean(ranked):.0f} ranked)",
                server.port,
                feed,
                concurrency=2,
                seconds=args.seconds,
            )
        finally:
            server.close()

        mlflow = mlflow_server(settings, version)
        try:
            theirs = drive(
                f"mlflow models serve /invocations, {rows} rows",
                mlflow.port,
                [("POST", "/invocations", mlflow_rank)],
                concurrency=2,
                seconds=args.seconds,
                token=None,
            )
        finally:
            mlflow.close()

    p99_cached = float(np.percentile(cached.latencies_ms, 99))
    p99_uncached = float(np.percentile(uncached.latencies_ms, 99))
    print(
        f"\ncached feed: {cached.rate / health.rate:.2f}x of /healthz throughput; "
        f"p99 {p99_cached:.2f} ms at {cached.rate:,.0f} req/s (target <= 10 ms at >= 1,000)"
    )
    print(f"uncached feed: p99 {p99_uncached:.2f} ms (target <= 50 ms)")
    print(
        f"/v1/rank vs mlflow models serve, {rows} candidates: "
        f"{ours.rate / theirs.rate:.1f}x the throughput (target >= 10x)"
    )


if __name__ == "__main__":
    main()
