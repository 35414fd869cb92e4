"""One function per UI: prepare what it reads from the settings, then serve it supervised."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from appconfig import Settings, get_settings
from uis.supervise import run_supervised

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's tools: mlflow, dbt, feast


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def mlflow_ui(host: str = "127.0.0.1", port: int = 5000, settings: Settings | None = None) -> int:
    """`mlflow server` over the tracking store and registry the models were registered in."""
    from ml.tracking import mlflow_dir, tracking_uri

    settings = settings or get_settings()
    uri = tracking_uri(settings)
    command = [str(BIN / "mlflow"), "server", "--backend-store-uri", uri]
    if not uri.startswith(("http://", "https://")):
        artifacts = mlflow_dir(settings) / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        command += ["--default-artifact-root", artifacts.as_uri()]
    command += ["--host", host, "--port", str(port), "--workers", "1"]
    print(f"MLflow UI on http://{host}:{port} (tracking: {uri})", flush=True)
    return run_supervised(command, cwd=REPO_ROOT, env=_env())


def dbt_docs_target(settings: Settings) -> Path:
    return settings.data_dir / "dbt-docs"


def generate_dbt_docs(settings: Settings) -> Path:
    """`dbt docs generate` into `<data dir>/dbt-docs` (index.html, manifest, catalog)."""
    from orchestration.analytics.dbt_env import PROJECT_DIR, dbt_env, dbt_executable

    target = dbt_docs_target(settings)
    subprocess.run(
        [
            dbt_executable(),
            "docs",
            "generate",
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(target),
            "--quiet",
        ],
        cwd=PROJECT_DIR,
        env=_env(dbt_env(settings)),
        check=True,
    )
    return target


def dbt_docs(host: str = "127.0.0.1", port: int = 8080, settings: Settings | None = None) -> int:
    """Generate the dbt docs, then serve them (a static site: index.html reads the JSON)."""
    settings = settings or get_settings()
    target = generate_dbt_docs(settings)
    print(f"dbt docs on http://{host}:{port} (generated in {target})", flush=True)
    command = [sys.executable, "-m", "http.server", str(port), "--bind", host]
    return run_supervised(command, cwd=target, env=_env())


def feast_ui(host: str = "127.0.0.1", port: int = 8888, settings: Settings | None = None) -> int:
    """`feast ui` over the registry the feature views were applied to (`make demo` applies)."""
    from featurestore.config import render_config, write_repo

    settings = settings or get_settings()
    repo = write_repo(settings)
    _, secrets = render_config(settings)
    print(f"Feast UI on http://{host}:{port} (repo: {repo})", flush=True)
    command = [str(BIN / "feast"), "-c", str(repo), "ui", "--host", host, "--port", str(port)]
    return run_supervised(command, cwd=repo, env=_env(secrets))
