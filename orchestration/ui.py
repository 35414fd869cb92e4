"""Start the Dagster UI (webserver and daemon) on this checkout's code location.

Run it through this module rather than `dagster dev` directly: the instance config
(DAGSTER_HOME/dagster.yaml) is derived from the settings, so it is written first.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from appconfig import get_settings
from orchestration.instance import ensure_dagster_home

REPO_ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m orchestration.ui", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)

    home = ensure_dagster_home(get_settings())
    bin_dir = Path(sys.executable).parent  # the venv's; its tools (dbt) must be on PATH too
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    dagster = str(bin_dir / "dagster")
    print(f"Dagster UI on http://{args.host}:{args.port} (DAGSTER_HOME={home})", flush=True)
    os.chdir(REPO_ROOT)
    os.execv(
        dagster, [dagster, "dev", "-w", "workspace.yaml", "-h", args.host, "-p", str(args.port)]
    )


if __name__ == "__main__":
    main()
