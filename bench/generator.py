"""Workload generator events/s, beside the bare cost of serializing the same events.

The baseline re-serializes the generated lines' payloads with orjson (parsed outside the timed
region): the least any generator must spend to emit these events. The ratio says how much the
simulation (graph, content, ground truth, faults) costs on top.

    uv run python -m bench.generator [--users 1000 --days 3]
"""

from __future__ import annotations

import argparse
import time

import orjson

from workload.config import WorkloadConfig
from workload.generator import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rates, bare_rates = [], []
    for seed in range(args.repeat):
        started = time.perf_counter()
        workload = generate(WorkloadConfig(users=args.users, days=args.days, seed=seed))
        seconds = time.perf_counter() - started
        payloads = [orjson.loads(r.line) for r in workload.records if not r.is_bad]
        started = time.perf_counter()
        for payload in payloads:
            orjson.dumps(payload)
        bare_seconds = time.perf_counter() - started
        rates.append(len(workload.records) / seconds)
        bare_rates.append(len(payloads) / bare_seconds)
        print(f"seed {seed}: {len(workload.records):,} events in {seconds:.2f} s")
    best, bare = max(rates), max(bare_rates)
    print(
        f"generator: {best:,.0f} events/s (best of {args.repeat}, {args.users} users x {args.days} days)"
    )
    print(f"bare orjson serialization of the same events: {bare:,.0f} events/s")
    print(f"ratio generator/bare: {best / bare:.3f}")


if __name__ == "__main__":
    main()
