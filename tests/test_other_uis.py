"""`make mlflow-ui`, `make dbt-docs`, `make feast-ui`: each UI, started by its `photo-platform`
command on a small state of its own, shows real content in headless Chromium: a registered
model with its champion, a mart's documentation, a feature view."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_dagster_ui import CHROMIUM_FLAGS, _free_port, _require_chromium, _text_nodes

from appconfig import Settings

pytestmark = [pytest.mark.browser, pytest.mark.timeout(400)]

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 240


def _dump_dom(chromium: str, page: str, wait_ms: int = 20_000) -> str:
    """The page's DOM after `wait_ms` of real time (these UIs poll, so virtual time, which waits
    for an idle network, may never run out)."""
    flags = [f for f in CHROMIUM_FLAGS if not f.startswith("--virtual-time-budget")]
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        result = subprocess.run(
            [
                chromium,
                *flags,
                f"--timeout={wait_ms}",
                f"--user-data-dir={profile}",
                "--dump-dom",
                page,
            ],
            capture_output=True,
            text=True,
            timeout=wait_ms / 1000 + 90,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@contextmanager
def _ui(command: str, settings: Settings, ready_path: str) -> Iterator[str]:
    """`photo-platform <command>` on a free port until the block ends; its base URL."""
    port = _free_port()
    env = {**os.environ, "PLATFORM_DATA_DIR": str(settings.data_dir)}
    for name in ("CLICKHOUSE_URL", "CLICKHOUSE_RAW_DATABASE", "DAGSTER_HOME"):
        if name in os.environ:
            env[name] = os.environ[name]
    log = settings.data_dir / f"{command}.log"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", command, "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(url + ready_path, timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                time.sleep(1)
        yield url
    finally:
        process.terminate()  # the launcher stops its server's whole group
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def test_mlflow_ui_shows_a_registered_model_and_its_champion(settings: Settings) -> None:
    chromium = _require_chromium()
    from mlflow import MlflowClient

    from ml.tracking import artifact_location, tracking_uri

    client = MlflowClient(tracking_uri(settings))
    experiment = client.create_experiment("ui-test", artifact_location(settings, "ui-test"))
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "holdout_auc", 0.71)
    client.set_terminated(run.info.run_id)
    client.create_registered_model("feed-ranker", description="the home feed's ranker")
    version = client.create_model_version("feed-ranker", run.info.artifact_uri, run.info.run_id)
    client.set_registered_model_alias("feed-ranker", "champion", version.version)
    with _ui("mlflow-ui", settings, "/health") as url:
        dom = _dump_dom(chromium, url + "/#/models")
        texts = _text_nodes(dom)
        assert "feed-ranker" in texts, sorted(texts)[:80]
        dom = _dump_dom(chromium, url + "/#/models/feed-ranker")
        assert "champion" in _text_nodes(dom) or "@ champion" in dom, sorted(_text_nodes(dom))


def test_dbt_docs_show_a_marts_documentation(settings: Settings) -> None:
    chromium = _require_chromium()
    with _ui("dbt-docs", settings, "/manifest.json") as url:
        page = url + "/#!/model/model.photo_platform.dim_users"
        texts = _text_nodes(_dump_dom(chromium, page))
        assert "dim_users" in texts, sorted(texts)[:80]
        assert any("one row per user" in t for t in texts), sorted(texts)[:120]
        assert "follower_count" in texts


def test_feast_ui_shows_a_feature_view(settings: Settings) -> None:
    chromium = _require_chromium()
    from featurestore.config import feature_store
    from featurestore.registry import apply_definitions

    applied = apply_definitions(feature_store(settings), settings)
    assert "user_profile" in applied.feature_views
    with _ui("feast-ui", settings, "/") as url:
        page = url + "/p/photo_platform/feature-view/user_profile"
        texts = _text_nodes(_dump_dom(chromium, page))
        assert "user_profile" in texts, sorted(texts)[:80]
        assert "country" in texts, sorted(texts)[:120]
