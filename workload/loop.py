"""The closed loop: simulated users read the feeds the platform serves and engage with them as
the workload's hidden truth says, and their events land where ingestion reads them.

    python -m workload.loop --serve --users 300 --days 2 --sessions 2000   # starts the API
    python -m workload.loop --api http://127.0.0.1:8000 --token T ...       # a running API

A session: a user of the generated population (the same `--users/--days/--seed/--start` as
`photo-platform generate`) opens the home feed over HTTP, reads page after page (each next page
with probability `--continue`), and engages with each shown post with its true probability
(`workload.truth_oracle`). Then, each with its own probability, it opens Explore (likes with
the true probability, impressions on the `explore` surface), the stories tray (views the first
unseen stories in the order served) and who to follow (follows a suggestion with
sigmoid(base + the pair's true affinity)), so those models' choices shape the data too. Every shown post becomes an `impression` event carrying the
experiment and arm the API reported, every engagement a `like`; both go to the landing zone as
a sink connector would write them, so `photo-platform ingest` and the marts see the data the
platform's own choices produced. The simulated clock starts where the workload ended and moves
by `--gap-seconds` on average per session. Seeded: the same API state and seed give the same
events.

Only HTTP: the loop never imports serving (it sits below it in the layers).
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import orjson

from ingestion.landing import file_key, partition_key_of
from objectstore.store import ObjectStore
from workload.events import random_uuids
from workload.truth_oracle import TruthOracle

PRODUCER = "workload.loop"


@dataclass(frozen=True)
class LoopConfig:
    sessions: int = 200
    seed: int = 7
    page_size: int = 10
    max_pages: int = 3
    continue_probability: float = 0.5
    gap_seconds: float = 2.0  # mean simulated time between session starts
    batch_id: str = ""  # names the landing files (default: loop-<seed>)
    # the other surfaces a session may open after its home feed (0 turns one off)
    explore_probability: float = 0.3
    stories_probability: float = 0.3
    suggestions_probability: float = 0.1
    story_views_mean: float = 2.5  # stories viewed in tray order per open tray (Poisson)
    # a suggested account is followed with sigmoid(follow_base_logit + true pair affinity): the
    # loop's own assumption (the generator draws follows from its graph model, not per request)
    follow_base_logit: float = -3.0


@dataclass
class ArmTally:
    sessions: int = 0
    impressions: int = 0
    engagements: int = 0
    expected_engagements: float = 0.0  # the sum of the true probabilities shown


@dataclass
class LoopReport:
    sessions: int = 0
    impressions: int = 0
    engagements: int = 0
    http_errors: Counter[int] = field(default_factory=Counter)
    arms: dict[tuple[str | None, str | None], ArmTally] = field(default_factory=dict)
    # per surface (home_feed, explore, stories, suggestions): sessions that opened it, items
    # shown, engagements (likes; story views; follows) and the sum of their true probabilities
    surfaces: dict[str, ArmTally] = field(default_factory=dict)
    seconds: float = 0.0
    keys: list[str] = field(default_factory=list)
    partitions: set[str] = field(default_factory=set)

    @property
    def sessions_per_second(self) -> float:
        return self.sessions / self.seconds if self.seconds else 0.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def run_loop(
    client: httpx.Client,
    oracle: TruthOracle,
    store: ObjectStore,
    landing_prefix: str,
    start: datetime,
    config: LoopConfig,
    progress: Callable[[int], None] | None = None,
) -> LoopReport:
    """Run `config.sessions` sessions against the API behind `client` (it carries the token)."""
    rng = np.random.default_rng(config.seed)
    report = LoopReport()
    lines: dict[tuple[datetime, str], list[bytes]] = defaultdict(list)
    users = np.asarray(oracle.users, dtype=np.int64)
    now = start.timestamp()
    started = time.perf_counter()
    for n in range(config.sessions):
        now += float(rng.exponential(config.gap_seconds))
        user = int(rng.choice(users))
        cursor: str | None = None
        tally: ArmTally | None = None
        # the pages of one session page through one ranked snapshot (the cursor continues it):
        # one feed request, so one request_id, which the marts use as the session
        request_id = random_uuids(rng, 1)[0]
        shown = 0
        for page in range(config.max_pages):
            params: dict[str, str | int] = {"limit": config.page_size}
            if cursor is not None:
                params["cursor"] = cursor
            response = client.get(f"/v1/users/{user}/feed", params=params)
            if response.status_code != 200:
                report.http_errors[response.status_code] += 1
                break
            body = orjson.loads(response.content)
            key = (body.get("experiment"), body.get("arm"))
            if tally is None:
                tally = report.arms.setdefault(key, ArmTally())
                tally.sessions += 1
            items = body["items"]
            if items:
                shown += _read_page(oracle, rng, user, request_id, body, items, now, lines, report)
            cursor = body.get("next_cursor")
            if cursor is None or rng.random() >= config.continue_probability:
                break
            now += config.page_size * 1.5  # reading a page takes a while
            del page
        feed = report.surfaces.setdefault("home_feed", ArmTally())
        feed.sessions += 1
        for probability, visit in (
            (config.explore_probability, _explore),
            (config.stories_probability, _stories),
            (config.suggestions_probability, _suggestions),
        ):
            if rng.random() < probability:
                now += 5.0
                visit(_Visit(client, oracle, rng, user, now, config, lines, report))
        report.sessions += 1
        report.impressions += shown
        if progress is not None:
            progress(n + 1)
    report.engagements = sum(t.engagements for t in report.arms.values())
    if "home_feed" in report.surfaces:
        feed = report.surfaces["home_feed"]
        feed.impressions = sum(t.impressions for t in report.arms.values())
        feed.engagements = report.engagements
        feed.expected_engagements = sum(t.expected_engagements for t in report.arms.values())
    report.seconds = time.perf_counter() - started
    batch = config.batch_id or f"loop-{config.seed}"
    for (hour, event_type), chunk in sorted(lines.items()):
        name = file_key(landing_prefix, hour, event_type, batch)
        store.put(name, b"\n".join(chunk) + b"\n")
        report.keys.append(name)
        report.partitions.add(partition_key_of(hour))
    return report


def _read_page(
    oracle: TruthOracle,
    rng: np.random.Generator,
    user: int,
    request_id: str,
    body: dict,
    items: list[dict],
    now: float,
    lines: dict[tuple[datetime, str], list[bytes]],
    report: LoopReport,
) -> int:
    """Read one page: engage with the true p, log an impression per item (with the experiment
    and the item's arm: in an interleaving experiment the arms alternate within the page) and a
    like per engagement, and tally them per arm."""
    posts = [int(i["post_id"]) for i in items]
    authors = [int(i["author_id"]) for i in items]
    positions = [int(i["rank"]) for i in items]
    p = oracle.probability(user, posts, authors, positions, now)
    engaged = rng.random(len(p)) < p
    ids = random_uuids(rng, len(items) + int(engaged.sum()))
    hour = datetime.fromtimestamp(now, UTC).replace(minute=0, second=0, microsecond=0)
    experiment = body.get("experiment")
    for j, (post, position) in enumerate(zip(posts, positions, strict=True)):
        arm = items[j].get("arm") or body.get("arm")
        shown_at = now + 1.5 * j
        impression = {
            "event_id": ids.pop(),
            "event_type": "impression",
            "schema_version": 1,
            "occurred_at": _iso(shown_at),
            "producer": PRODUCER,
            "user_id": user,
            "post_id": post,
            "surface": "home_feed",
            "position": position,
            "dwell_ms": int(rng.integers(3000, 8000) if engaged[j] else rng.integers(300, 2000)),
            "request_id": request_id,
        }
        if experiment is not None and arm is not None:
            impression["experiment"], impression["arm"] = experiment, arm
        if items[j].get("explored"):
            impression["explored"] = True
        lines[(hour, "impression")].append(orjson.dumps(impression))
        if engaged[j]:
            lines[(hour, "like")].append(_like(ids.pop(), user, post, shown_at + 1.0))
        tally = report.arms.setdefault((experiment, arm), ArmTally())
        tally.impressions += 1
        tally.engagements += int(engaged[j])
        tally.expected_engagements += float(p[j])
    return len(items)


@dataclass
class _Visit:
    """One session's visit to a surface other than the home feed: what its handler needs."""

    client: httpx.Client
    oracle: TruthOracle
    rng: np.random.Generator
    user: int
    now: float
    config: LoopConfig
    lines: dict[tuple[datetime, str], list[bytes]]
    report: LoopReport

    def open(self, surface: str, path: str, params: dict) -> tuple[dict, ArmTally] | None:
        """The surface's answer and its tally (the session counted), or None on an HTTP error
        (counted in the report)."""
        response = self.client.get(path, params=params)
        if response.status_code != 200:
            self.report.http_errors[response.status_code] += 1
            return None
        tally = self.report.surfaces.setdefault(surface, ArmTally())
        tally.sessions += 1
        body: dict = orjson.loads(response.content)
        return body, tally


def _explore(v: _Visit) -> None:
    """One Explore page: impressions on the `explore` surface, likes with the true p."""
    opened = v.open("explore", f"/v1/users/{v.user}/explore", {"limit": v.config.page_size})
    if opened is None:
        return
    body, tally = opened
    oracle, rng, user, now, lines = v.oracle, v.rng, v.user, v.now, v.lines
    items = body["items"]
    if not items:
        return
    posts = [int(i["post_id"]) for i in items]
    positions = [int(i["rank"]) for i in items]
    p = oracle.probability(user, posts, [int(i["author_id"]) for i in items], positions, now)
    engaged = rng.random(len(p)) < p
    ids = random_uuids(rng, len(items) + int(engaged.sum()))
    request_id = random_uuids(rng, 1)[0]
    for j, (post, position) in enumerate(zip(posts, positions, strict=True)):
        shown_at = now + 1.5 * j
        hour = _hour(shown_at)
        dwell = int(rng.integers(300, 8000))
        lines[(hour, "impression")].append(
            _event("impression", ids.pop(), shown_at, user, post_id=post, surface="explore",
                   position=position, dwell_ms=dwell, request_id=request_id)
        )  # fmt: skip
        if engaged[j]:
            lines[(hour, "like")].append(_like(ids.pop(), user, post, shown_at + 1.0))
    tally.impressions += len(items)
    tally.engagements += int(engaged.sum())
    tally.expected_engagements += float(p.sum())


def _stories(v: _Visit) -> None:
    """Open the tray and view its first unseen stories in the order served (as the generator's
    sessions do: a Poisson number of them)."""
    opened = v.open("stories", f"/v1/users/{v.user}/stories", {})
    if opened is None:
        return
    body, tally = opened
    rng, user, now, config, lines = v.rng, v.user, v.now, v.config, v.lines
    unseen = [s["story_id"] for a in body["authors"] for s in a["stories"] if not s["seen"]]
    viewed = unseen[: int(rng.poisson(config.story_views_mean))]
    ids = random_uuids(rng, len(viewed))
    for j, story in enumerate(viewed):
        at = now + 4.0 * j
        dwell = int(rng.integers(1000, 8000))
        lines[(_hour(at), "story_view")].append(
            _event("story_view", ids[j], at, user, story_id=int(story), dwell_ms=dwell)
        )
    tally.impressions += len(unseen)
    tally.engagements += len(viewed)


def _suggestions(v: _Visit) -> None:
    """Who to follow: each suggested account is followed with sigmoid(base + true affinity)."""
    opened = v.open("suggestions", f"/v1/users/{v.user}/suggestions", {"limit": 5})
    if opened is None:
        return
    body, tally = opened
    oracle, rng, user, now, config, lines = v.oracle, v.rng, v.user, v.now, v.config, v.lines
    targets = [int(i["user_id"]) for i in body["items"]]
    if not targets:
        return
    logit = config.follow_base_logit + np.array([oracle.pair_affinity(user, t) for t in targets])
    p = 1.0 / (1.0 + np.exp(-logit))
    follows = rng.random(len(p)) < p
    ids = random_uuids(rng, int(follows.sum()))
    for target in np.asarray(targets)[follows].tolist():
        lines[(_hour(now), "follow")].append(
            _event("follow", ids.pop(), now, user, target_user_id=int(target))
        )
    tally.impressions += len(targets)
    tally.engagements += int(follows.sum())
    tally.expected_engagements += float(p.sum())


def _hour(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(minute=0, second=0, microsecond=0)


def _like(event_id: str, user: int, post: int, at: float) -> bytes:
    return _event("like", event_id, at, user, post_id=post)


def _event(event_type: str, event_id: str, at: float, user: int, **fields: object) -> bytes:
    """One event line as the contracts have it (schema version 1, this producer)."""
    return orjson.dumps(
        {
            "event_id": event_id,
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": _iso(at),
            "producer": PRODUCER,
            "user_id": user,
            **fields,
        }
    )


# --- the command ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_api(token: str, ready_within: float = 300.0) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m serving` (one worker) on a free port, ready to answer; the caller stops it.
    `ready_within` seconds to become ready (a loaded machine loading TensorFlow needs more)."""
    port = _free_port()
    env = dict(
        os.environ,
        SERVING_PORT=str(port),
        SERVING_TOKENS=token,
        SERVING_ACCESS_LOG="false",
        SERVING_WORKERS="1",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "serving"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read()[-2000:] if process.stderr is not None else b""
            raise RuntimeError(f"the API exited: {error!r}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"the API did not become ready within {ready_within:.0f} s")


def main(argv: list[str] | None = None) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from appconfig import get_settings
    from objectstore.store import store_from_settings
    from workload.config import WorkloadConfig, default_start
    from workload.generator import generate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", help="base URL of a running API (else --serve)")
    parser.add_argument("--token", default="", help="a bearer token of the API's SERVING_TOKENS")
    parser.add_argument("--serve", action="store_true", help="start `python -m serving` here")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7, help="the workload's seed")
    parser.add_argument("--start", help="the workload's start (ISO date; default as generate)")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--loop-seed", type=int, default=1)
    parser.add_argument("--page-size", type=int, default=10)
    parser.add_argument("--continue", dest="cont", type=float, default=0.5)
    defaults = LoopConfig()
    parser.add_argument("--explore", type=float, default=defaults.explore_probability,
                        help="probability that a session also opens Explore")  # fmt: skip
    parser.add_argument("--stories", type=float, default=defaults.stories_probability,
                        help="probability that a session also opens the stories tray")  # fmt: skip
    parser.add_argument("--suggestions", type=float, default=defaults.suggestions_probability,
                        help="probability that a session also opens who to follow")  # fmt: skip
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    start = (
        datetime.fromisoformat(args.start).replace(tzinfo=UTC)
        if args.start
        else default_start(args.days)
    )
    workload = generate(
        WorkloadConfig(users=args.users, days=args.days, seed=args.seed, start=start)
    )
    oracle = TruthOracle.of(workload)
    settings = get_settings()
    process = None
    token = args.token
    if args.serve:
        token = token or secrets.token_urlsafe(24)
        console.print("starting the API (one worker) ...")
        process, base = start_api(token)
    elif args.api:
        base = args.api
    else:
        parser.error("give --api URL --token T, or --serve")
    config = LoopConfig(
        sessions=args.sessions,
        seed=args.loop_seed,
        page_size=args.page_size,
        continue_probability=args.cont,
        explore_probability=args.explore,
        stories_probability=args.stories,
        suggestions_probability=args.suggestions,
    )
    try:
        with (
            httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as client,
            Progress(
                TextColumn("sessions"), BarColumn(), MofNCompleteColumn(), console=console
            ) as bar,
        ):
            task = bar.add_task("sessions", total=config.sessions)
            report = run_loop(
                client,
                oracle,
                store_from_settings(settings),
                settings.landing_prefix,
                start + timedelta(days=args.days),
                config,
                progress=lambda n: bar.update(task, completed=n),
            )
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    console.print(
        f"{report.sessions} sessions in {report.seconds:.1f} s "
        f"({report.sessions_per_second:.1f} sessions/s), {report.impressions} impressions, "
        f"{report.engagements} engagements, HTTP errors {dict(report.http_errors)}"
    )
    for (experiment, arm), t in sorted(report.arms.items(), key=str):
        rate = t.engagements / t.impressions if t.impressions else 0.0
        console.print(
            f"  {experiment or '-'}/{arm or '-'}: {t.sessions} sessions, {t.impressions} "
            f"impressions, engagement rate {rate:.4f} (true expected "
            f"{t.expected_engagements / max(t.impressions, 1):.4f})"
        )
    for surface, t in report.surfaces.items():
        expected = f"{t.expected_engagements:.1f}" if surface != "stories" else "-"
        console.print(
            f"  {surface}: opened in {t.sessions} sessions, {t.impressions} shown, "
            f"{t.engagements} engaged (true expected {expected})"
        )
    console.print(f"{len(report.keys)} landing files; partitions {sorted(report.partitions)}")


if __name__ == "__main__":
    main()
