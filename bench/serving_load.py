"""The serving API under `wrk` (Debian's wrk 4.1) from another process, each figure beside its
baseline measured in the same run, with the load average of the shared machine beside it.

- uncached feed (a server whose feed cache lives 1 us: every request gathers ~1,000 candidates,
  filters, reads features, ranks): closed loop, 2 connections, 1 worker then `--workers 2`;
- cached feed: paced at `--rate` req/s (default 1,000) beside a trivial FastAPI endpoint
  (`bench.trivial_json`) answering a body of the same size at the same pace;
- `POST /v1/rank` with 1,000 candidates beside `mlflow models serve` on the same model and the
  same 1,000 rows of features, both closed loop at 2 connections.

Pacing: wrk 4.1 has no constant-rate mode (wrk2 is not packaged in Debian), so each wrk thread
keeps a schedule of its own, one request every `threads / rate` seconds, and its Lua `delay()`
waits until the next slot (read from the monotonic clock through LuaJIT's FFI) before a
connection sends. A fixed wait per request instead (the earlier pacing) made the offered rate
`connections / (wait + latency)`, below the target by construction (~860/s for "1,000/s" at a
1.6 ms response). Slots missed during a stall are sent at once, up to the connections free;
it is still a closed loop with 10 connections, so a stall delays the requests behind it rather
than queueing them (coordinated omission: latency counts from the send, not the slot); the
achieved rate is printed beside the target.

    uv run python -m bench.serving_load --data-dir /tmp/serving-load [--seconds 15]
"""

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.serving_feed import (
    TOKEN,
    Server,
    bench_users,
    free_port,
    mlflow_server,
    one_request,
    platform,
    prepare,
    rank_payloads,
    serving_server,
    start_serving,
)

LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *now);
]]
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
local paths, body, method, pace = {}, nil, "GET", 0
local i, slot = 0, nil
function setup(thread) end
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  method = args[2]
  pace = tonumber(args[3])
  if args[4] ~= "" then local f = io.open(args[4], "rb"); body = f:read("*a"); f:close() end
  i = math.random(#paths)
end
function request()
  i = i % #paths + 1
  local headers = {["Authorization"] = "Bearer TOKEN", ["Content-Type"] = "application/json"}
  return wrk.format(method, paths[i], headers, body)
end
function delay()  -- ms until this thread's next slot, one slot per request
  if pace == 0 then return 0 end
  local now = now_ms()
  slot = (slot or now) + pace
  if slot < now then return 0 end
  return slot - now
end
function done(summary, latency, requests)
  io.write(string.format("JSON{\"requests\":%d,\"seconds\":%f,\"p50\":%f,\"p99\":%f,\"max\":%f,"
    .. "\"status\":%d,\"connect\":%d,\"read\":%d,\"write\":%d,\"timeout\":%d}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, summary.errors.status,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
""".replace("TOKEN", TOKEN)


@dataclass
class Run:
    name: str
    rate: float
    p50: float
    p99: float
    errors: int
    load: float
    cpu_ms: float | None = None  # server CPU (all its processes) per request

    def line(self) -> str:
        cpu = f"  CPU {self.cpu_ms:6.1f} ms/req" if self.cpu_ms is not None else ""
        return (
            f"{self.name:<52} {self.rate:>8,.0f} req/s  p50 {self.p50:7.2f} ms  "
            f"p99 {self.p99:7.2f} ms  non-2xx/errors {self.errors}  load {self.load:.1f}{cpu}"
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants (uvicorn's workers, the server
    `mlflow models serve` starts), in seconds: on a shared machine, CPU per request is the
    figure the other processes do not move."""
    pids, i = [pid], 0
    while i < len(pids):
        children = Path(f"/proc/{pids[i]}/task/{pids[i]}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        i += 1
    ticks = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(
    name: str,
    port: int,
    paths: list[str],
    *,
    connections: int,
    seconds: float,
    rate: float | None = None,
    method: str = "GET",
    body: bytes | None = None,
    warmup: float = 2.0,
    pid: int | None = None,
) -> Run:
    """One wrk run (after a short warm-up); `rate` paces each connection (see the docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        script, listing, payload = Path(tmp, "s.lua"), Path(tmp, "paths"), Path(tmp, "body")
        script.write_text(LUA)
        listing.write_text("\n".join(paths) + "\n")
        if body is not None:
            payload.write_bytes(body)
        threads = min(connections, 2)
        pace = threads * 1000 / rate if rate else 0  # ms between one thread's slots
        base = ["wrk", f"-t{threads}", f"-c{connections}", "--timeout", "10s", "-s", str(script)]
        extra = ["--", str(listing), method, str(pace), str(payload) if body is not None else ""]
        url = f"http://127.0.0.1:{port}"
        subprocess.run([*base, f"-d{warmup:g}s", url, *extra], capture_output=True, check=True)
        load = os.getloadavg()[0]
        cpu = cpu_seconds(pid) if pid is not None else 0.0
        out = subprocess.run(
            [*base, f"-d{seconds:g}s", url, *extra], capture_output=True, text=True, check=True
        ).stdout
        cpu = cpu_seconds(pid) - cpu if pid is not None else 0.0
    found = re.search(r"JSON(\{.*\})", out)
    if found is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    s = json.loads(found.group(1))
    errors = s["status"] + s["connect"] + s["read"] + s["write"] + s["timeout"]
    run = Run(name, s["requests"] / s["seconds"], s["p50"], s["p99"], errors, load)
    if pid is not None and s["requests"]:
        run.cpu_ms = 1000 * cpu / s["requests"]
    print(run.line(), flush=True)
    return run


def rss_mb(pid: int) -> dict[int, float]:
    """Resident memory of a process and its children (uvicorn's workers), in MB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    out = {}
    for p in pids:
        status = Path(f"/proc/{p}/status").read_text()
        kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        out[p] = kb / 1024
    return out


def wait_for_workers(server: Server, workers: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(server.log.name).read_text().count("Application startup complete") >= workers:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{workers} workers did not start in {timeout:g} s")


def trivial_server(size: int) -> Server:
    port = free_port()
    env = {**os.environ}
    argv = [sys.executable, "-m", "bench.trivial_json", "--bytes", str(size), "--port", str(port)]
    return Server(argv, env, port, "/readyz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="built here if empty")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="cached feed pace, req/s")
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--skip", default="", help="comma list: uncached,workers,cached,rank")
    parser.add_argument(
        "--baseline-code",
        type=Path,
        help="also run the uncached feed and /v1/rank against this checkout's serving package "
        "(e.g. `git archive main | tar -x -C DIR`), same data, same run",
    )
    args = parser.parse_args()
    skip = set(args.skip.split(","))

    if (args.data_dir / "ranker").exists():
        settings = platform(args.data_dir)
    else:
        settings = prepare(args.data_dir, args.users, args.days, args.seed)
    users = bench_users(settings, 1000)
    paths = [f"/v1/users/{u}/feed?limit=20" for u in users]
    ours_rank, mlflow_rank, rows = rank_payloads(settings, users[0], args.candidates)
    print(f"\nwrk 4.1, {args.seconds:g} s per line, loopback, {os.cpu_count()} cores (shared)")
    candidates = {"SERVING_PUSHED_CANDIDATES": "800", "SERVING_EXPLORE_CANDIDATES": "200"}
    uncached = {"SERVING_CACHE_TTL_SECONDS": "0.000001", **candidates}
    if args.baseline_code is not None and "uncached" not in skip:
        server = start_serving(
            settings, {**uncached, "SERVING_WORKERS": "1"}, 900, args.baseline_code
        )
        try:
            for path in paths:  # every user once: the same warm state the line below gets
                asyncio.run(one_request(server.port, "GET", path, None, TOKEN))
            wrk(
                f"baseline code: feed, uncached, {len(users)} users, 1 worker",
                server.port,
                paths,
                connections=2,
                seconds=args.seconds,
                pid=server.process.pid,
            )
            if "rank" not in skip:
                wrk(
                    f"baseline code: POST /v1/rank, {rows} candidates",
                    server.port,
                    ["/v1/rank"],
                    connections=2,
                    seconds=args.seconds,
                    method="POST",
                    body=ours_rank,
                    pid=server.process.pid,
                )
            memory = rss_mb(server.process.pid)
            print(f"    RSS per process (MB): {', '.join(f'{m:.0f}' for m in memory.values())}")
        finally:
            server.close()
    rates: dict[int, float] = {}
    for workers in (1, 2):
        if "uncached" in skip or (workers == 2 and "workers" in skip):
            continue
        server = start_serving(settings, {**uncached, "SERVING_WORKERS": str(workers)}, 900)
        try:
            wait_for_workers(server, workers, 900)
            for path in paths:  # every user once (caches of decoded features warm)
                asyncio.run(one_request(server.port, "GET", path, None, TOKEN))
            run = wrk(
                f"feed, uncached, {len(users)} users in turn, {workers} worker(s)",
                server.port,
                paths,
                connections=2 * workers,
                seconds=args.seconds,
                pid=server.process.pid,
            )
            rates[workers] = run.rate
            memory = rss_mb(server.process.pid)
            print(f"    RSS per process (MB): {', '.join(f'{m:.0f}' for m in memory.values())}")
        finally:
            server.close()
    if len(rates) == 2:
        print(f"    2 workers / 1 worker: {rates[2] / rates[1]:.2f}x (target >= 1.7x)")

    if "cached" not in skip or "rank" not in skip:
        server = serving_server(settings, **candidates)
        try:
            if "cached" not in skip:
                for path in paths:  # every user's ranked snapshot built once
                    asyncio.run(one_request(server.port, "GET", path, None, TOKEN))
                _, sample = asyncio.run(one_request(server.port, "GET", paths[0], None, TOKEN))
                size = len(sample)
                trivial = trivial_server(size)
                try:
                    wrk(
                        f"baseline: trivial FastAPI, {size:,} B JSON, paced {args.rate:g}/s",
                        trivial.port,
                        paths,
                        connections=10,
                        seconds=args.seconds,
                        rate=args.rate,
                        pid=trivial.process.pid,
                    )
                finally:
                    trivial.close()
                wrk(
                    f"feed, cached, paced {args.rate:g}/s",
                    server.port,
                    paths,
                    connections=10,
                    seconds=args.seconds,
                    rate=args.rate,
                    pid=server.process.pid,
                )
            if "rank" not in skip:
                ours = wrk(
                    f"POST /v1/rank, {rows} candidates",
                    server.port,
                    ["/v1/rank"],
                    connections=2,
                    seconds=args.seconds,
                    method="POST",
                    body=ours_rank,
                    pid=server.process.pid,
                )
        finally:
            server.close()
    if "rank" not in skip:
        from ml.registry import client
        from ml.tracking import tracking_uri

        version = client(tracking_uri(settings)).get_model_version_by_alias(
            "feed-ranker", "champion"
        )
        mlflow = mlflow_server(settings, str(version.version))
        try:
            theirs = wrk(
                f"baseline: mlflow models serve, same {rows} rows",
                mlflow.port,
                ["/invocations"],
                connections=2,
                seconds=args.seconds,
                method="POST",
                body=mlflow_rank,
                pid=mlflow.process.pid,
            )
        finally:
            mlflow.close()
        print(f"    /v1/rank / mlflow models serve: {ours.rate / theirs.rate:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
