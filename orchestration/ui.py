"""Start the Dagster UI (webserver and daemon) on this checkout's code location.

Run it through this module (or `photo-platform ui`, `make ui`) rather than `dagster dev`
directly: the instance config (DAGSTER_HOME/dagster.yaml) is derived from the settings, so it is
written first. `dagster dev` runs in a process group of its own, supervised from here: SIGTERM or
SIGINT (Ctrl-C) stops the webserver, the daemon and the code servers they spawned, first with an
interrupt (their clean shutdown), then SIGTERM, then SIGKILL for whatever is left.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from appconfig import get_settings, path_with
from orchestration.instance import ensure_dagster_home
from uis.supervise import run_supervised

REPO_ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m orchestration.ui", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    sys.exit(run(args.host, args.port))


def run(host: str = "127.0.0.1", port: int = 3000) -> int:
    """Run `dagster dev` until it exits or this process is told to stop; its exit code."""
    home = ensure_dagster_home(get_settings())
    bin_dir = Path(sys.executable).parent  # the venv's; its tools (dbt) must be on PATH too
    env = {**os.environ, "PATH": path_with(bin_dir)}
    dagster = str(bin_dir / "dagster")
    print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={home})", flush=True)
    code = run_supervised(
        [dagster, "dev", "-w", "workspace.yaml", "-h", host, "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
    )
    print("Dagster UI stopped", flush=True)
    return code


if __name__ == "__main__":
    main()
