"""Private servers for tests that kill them: a redis-server and a Cassandra node of the test's own,
on free ports (never the shared ones other tests use), and a feed traffic generator."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fanout.store import FeedStore, FeedStoreUnavailable

REPO = Path(__file__).resolve().parent.parent
CASSANDRA_SH = REPO / "scripts" / "services" / "cassandra.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


class PrivateRedis:
    """redis-server on its own port and directory; `appendonly` as the services profile runs it."""

    def __init__(self, workdir: Path, *, appendonly: bool) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.port, 20)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class PrivateCassandra:
    """A second Cassandra node (its own home, data and ports) from the shared jars, started and
    stopped by scripts/services/cassandra.sh; `kill()` is a SIGKILL of the JVM."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.storage_port = free_port()
        self.env = {
            **os.environ,
            "CASSANDRA_HOME": str(home),
            "CASSANDRA_PORT": str(self.port),
            "CASSANDRA_STORAGE_PORT": str(self.storage_port),
            "START_TIMEOUT": "240",
            "STOP_TIMEOUT": "20",
        }

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _script(self, verb: str) -> None:
        result = subprocess.run(
            ["bash", str(CASSANDRA_SH), verb], env=self.env, capture_output=True, text=True
        )
        if result.returncode != 0:
            pytest.fail(f"cassandra.sh {verb} failed:\n{result.stderr[-3000:]}")

    def start(self) -> None:
        """Returns once the CQL port answers (the script waits for readiness)."""
        self._script("start")

    def kill(self) -> None:
        pid = int((self.home / "cassandra.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        self._script("stop")


@dataclass
class Traffic:
    """Feed traffic on a store: one writer fanning posts out to `users` (retrying a post until
    the store takes it, as the consumer does) and readers of `read_users`. Every read error that
    is not allowed is kept."""

    store: FeedStore
    users: list[int]
    read_users: list[int]
    author: int
    first_post: int
    posts: int
    pause: float = 0.02
    acknowledged: list[int] = field(default_factory=list)
    write_retries: int = 0
    reads: int = 0
    degraded_reads: int = 0
    read_errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def created_ms(self, post: int) -> int:
        return 1_750_000_000_000 + post

    def _write(self) -> None:
        for post in range(self.first_post, self.first_post + self.posts):
            while not self._stop.is_set():
                try:
                    self.store.push_post(post, self.author, self.created_ms(post), self.users)
                    break
                except FeedStoreUnavailable:
                    self.write_retries += 1
                    time.sleep(0.1)
            else:
                return
            self.acknowledged.append(post)
            time.sleep(self.pause)

    def _read(self) -> None:
        rng = random.Random()
        while not self._stop.is_set():
            user = rng.choice(self.read_users)
            try:
                _, degraded = self.store.read_with_status(user, self.store.max_length)
                self.reads += 1
                self.degraded_reads += degraded is not None
            except Exception as exc:  # every failure counts: the test says which are allowed
                self.read_errors.append(f"user {user}: {type(exc).__name__}: {exc}")
            time.sleep(0.002)

    def start(self, readers: int = 2) -> None:
        self._threads = [threading.Thread(target=self._write, daemon=True)]
        self._threads += [threading.Thread(target=self._read, daemon=True) for _ in range(readers)]
        for thread in self._threads:
            thread.start()

    def wait_written(self, timeout: float) -> None:
        self._threads[0].join(timeout)
        assert not self._threads[0].is_alive(), (
            f"the writer did not finish in {timeout} s: {len(self.acknowledged)} of "
            f"{self.posts} posts written, {self.write_retries} retries"
        )

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
