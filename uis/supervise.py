"""Run a server in a process group of its own, and stop all of it on SIGTERM or SIGINT.

UI servers spawn workers (gunicorn/uvicorn workers, code servers) that a plain SIGTERM to the
parent can leave behind; the group is interrupted, then terminated, then killed, so nothing
outlives the launcher.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

# Seconds each stop signal gets before the next, stronger one.
GRACE_S = {signal.SIGINT: 10.0, signal.SIGTERM: 5.0, signal.SIGKILL: 5.0}


def stop_group(pgid: int, leader: subprocess.Popen[bytes] | None = None) -> bool:
    """Interrupt, then terminate, then kill the process group `pgid`; True once it is empty."""
    for sig, grace_s in GRACE_S.items():
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if leader is not None:
                leader.poll()  # reap the leader, so that only live members keep the group
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
    return False


def run_supervised(
    command: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> int:
    """Run `command` until it exits or this process gets SIGTERM/SIGINT; then stop its group."""
    process = subprocess.Popen(list(command), cwd=cwd, env=env, start_new_session=True)
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while process.poll() is None and not stopping:
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        clean = stop_group(process.pid, process)
        process.poll()
    if stopping:
        print(f"stopped ({signal.Signals(stopping[0]).name})", flush=True)
        return 0 if clean else 1
    return process.returncode or 0
