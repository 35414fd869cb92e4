"""`make ui` stops cleanly: after SIGTERM or SIGINT no webserver, daemon or code server is left.

Each test starts the real thing on a free port against a temporary data directory, waits until
the webserver answers and the code location has spawned its processes, records every descendant
process, sends the signal, and checks that every one of them is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(700)

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 300
STOP_TIMEOUT_S = 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def _start(command: list[str], tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = _free_port()
    data = tmp_path / "data"
    env = {
        **os.environ,
        "PLATFORM_DATA_DIR": str(data),
        "DAGSTER_HOME": str(data / "dagster"),
        "UI_PORT": str(port),
    }
    log = tmp_path / "ui.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, f"--port={port}"] if command[0] != "make" else [*command, f"UI_PORT={port}"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # as a terminal job: its own process group
        )
    return process, port, log


def _wait_until_serving(process: subprocess.Popen[bytes], port: int, log: Path) -> set[int]:
    """Every descendant once the webserver answers and the daemon and code server run."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                pass
        except OSError:
            time.sleep(1)
            continue
        pids = _descendants(process.pid)
        names = " | ".join(_cmdline(p) for p in pids)
        if "daemon" in names and ("code-server" in names or "api grpc" in names):
            return pids
        time.sleep(1)
    _kill_everything(process)
    pytest.fail(f"the UI did not come up within {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def _kill_everything(process: subprocess.Popen[bytes]) -> None:
    for pid in [*_descendants(process.pid), process.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _stop_and_check(
    process: subprocess.Popen[bytes], pids: set[int], sig: signal.Signals, to_group: bool
) -> None:
    assert len(pids) >= 4, [_cmdline(p) for p in pids]  # dagster dev, webserver, daemon, grpc
    if to_group:
        os.killpg(process.pid, sig)
    else:
        os.kill(process.pid, sig)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and (process.poll() is None or any(_alive(p) for p in pids)):
        time.sleep(0.2)
    left = [f"{p}: {_cmdline(p)}" for p in pids if _alive(p)]
    if left or process.poll() is None:
        _kill_everything(process)
    assert not left, f"still running {STOP_TIMEOUT_S} s after {sig.name}: {left}"
    assert process.returncode is not None, f"the launcher ignored {sig.name}"


def test_make_ui_stops_every_child_on_sigterm(tmp_path: Path) -> None:
    process, port, log = _start(["make", "--no-print-directory", "ui"], tmp_path)
    pids = _wait_until_serving(process, port, log)
    _stop_and_check(process, pids, signal.SIGTERM, to_group=True)


def test_ui_launcher_stops_every_child_on_sigint_to_it_alone(tmp_path: Path) -> None:
    """Ctrl-C reaches only the launcher here (dagster dev has its own group); it passes it on."""
    process, port, log = _start([sys.executable, "-m", "orchestration.ui"], tmp_path)
    pids = _wait_until_serving(process, port, log)
    _stop_and_check(process, pids, signal.SIGINT, to_group=False)
    assert "stopped (SIGINT)" in log.read_text()
