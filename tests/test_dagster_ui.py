"""The Dagster UI really renders the asset graph: a real webserver, looked at by headless Chromium.

The webserver runs on a free loopback port against a temporary data directory (its instance config
written by `ensure_dagster_home`, as `python -m orchestration.ui` does); Chromium dumps the DOM of
the `ingestion` group's lineage page and takes a screenshot to `artifacts/dagster_asset_graph.png`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from appconfig import get_settings
from orchestration.instance import ensure_dagster_home

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

REPO_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = REPO_ROOT / "artifacts" / "dagster_asset_graph.png"
LOCATION = "photo_platform"
GROUP = "ingestion"
GROUP_PATH = f"/locations/{LOCATION}/asset-groups/{GROUP}"
STARTUP_TIMEOUT_S = 120
# Dagster fits the graph to the viewport's width only (never above 100 %), so a tall group is cut
# off, and nodes outside the viewport are not rendered at all. A 2880x2880 CSS viewport at scale
# 5/9 shows the whole group (nine raw tables and their staging models) in a 1600x1600 PNG.
VIEWPORT = (2880, 2880)
SCALE = 1600 / 2880
# Virtual time runs only while the page is idle (no pending fetches), so this is quick.
VIRTUAL_TIME_BUDGET_MS = 15_000
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
    f"--force-device-scale-factor={SCALE:.7f}",
    f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
]


@dataclass(frozen=True)
class DagsterUI:
    url: str
    log: Path


def _require_chromium() -> str:
    """Chromium's path; a skip without it, or a failure when CI is set."""
    path = _find_chromium()
    if path:
        return path
    message = "Chromium is not installed; install it with `bash scripts/install_browser.sh`"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI is set: browser tests are mandatory there)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterUI]:
    data_dir = tmp_path_factory.mktemp("platform-data")
    log = data_dir / "dagster-webserver.log"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLATFORM_DATA_DIR", str(data_dir))
        mp.setenv("DAGSTER_HOME", str(data_dir / "dagster"))
        get_settings.cache_clear()  # as `python -m orchestration.ui` does, from the environment
        try:
            home = ensure_dagster_home(get_settings())
        finally:
            get_settings.cache_clear()
    env = {**os.environ, "PLATFORM_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(home)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    webserver = str(Path(sys.executable).parent / "dagster-webserver")
    with log.open("wb") as out:
        # Its own process group, so teardown reaches the code server it spawns as well.
        process = subprocess.Popen(
            [webserver, "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_up(process, url, log)
        yield DagsterUI(url=url, log=log)
    finally:
        _stop_group(process)


def test_asset_graph_shows_the_ingestion_assets(request: pytest.FixtureRequest) -> None:
    chromium = _require_chromium()  # before the server starts, and a test failure in CI
    dagster_ui: DagsterUI = request.getfixturevalue("dagster_ui")
    group_assets = _group_asset_keys(dagster_ui)
    assert {("raw", "dead_letters"), ("raw", "engagements")} <= set(group_assets), group_assets
    # The "join the community" dialog would cover the graph; this is what its Skip button does.
    _graphql(dagster_ui.url, "mutation { setNuxSeen }")
    page = dagster_ui.url + GROUP_PATH

    dom = _run_chromium(chromium, "--dump-dom", page).stdout
    texts = _text_nodes(dom)
    assert GROUP in texts, f"not the {GROUP} group page: {sorted(texts)[:50]}"
    missing = [key for key in group_assets if key[-1] not in texts]
    assert not missing, f"asset nodes not rendered: {missing}; texts: {sorted(texts)}"
    assert "events" in texts, "the upstream landing/events asset is not drawn"
    assert 'href="/assets/raw/dead_letters' in dom
    assert "Join the Dagster community" not in dom

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    _run_chromium(chromium, f"--screenshot={SCREENSHOT}", page)
    assert SCREENSHOT.is_file(), "Chromium wrote no screenshot"
    assert SCREENSHOT.stat().st_size > 20_000, f"screenshot is only {SCREENSHOT.stat().st_size} B"
    with Image.open(SCREENSHOT) as image:
        assert image.size == (round(VIEWPORT[0] * SCALE), round(VIEWPORT[1] * SCALE))
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colors) > 50, f"screenshot has only {len(colors)} colours (blank page?)"


def _find_chromium() -> str | None:
    if path := shutil.which("chromium"):
        return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"dagster-webserver exited with {process.returncode}:\n{_log_tail(log)}",
                pytrace=False,
            )
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    pytest.fail(
        f"dagster-webserver did not answer {url}/server_info within {STARTUP_TIMEOUT_S} s:\n"
        f"{_log_tail(log)}",
        pytrace=False,
    )


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL what is left of it after 15 s."""
    for sig, grace_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        deadline = time.monotonic() + grace_s
        try:
            os.killpg(process.pid, sig)
            while time.monotonic() < deadline:
                process.poll()  # reap the leader, so that only live members keep the group
                os.killpg(process.pid, 0)
                time.sleep(0.2)
        except ProcessLookupError:
            return


def _graphql(url: str, query: str, **variables: object) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.load(response)
    assert not payload.get("errors"), payload
    return payload["data"]


def _group_asset_keys(ui: DagsterUI) -> list[tuple[str, ...]]:
    """The group's asset keys, once the code location has loaded."""
    query = "query($group: AssetGroupSelector!) { assetNodes(group: $group) { assetKey { path } } }"
    group = {
        "groupName": GROUP,
        "repositoryName": "__repository__",
        "repositoryLocationName": LOCATION,
    }
    deadline = time.monotonic() + 60
    while not (nodes := _graphql(ui.url, query, group=group)["assetNodes"]):
        if time.monotonic() > deadline:
            pytest.fail(
                f"no assets in group {GROUP!r} of location {LOCATION!r}:\n{_log_tail(ui.log)}",
                pytrace=False,
            )
        time.sleep(1)
    return [tuple(node["assetKey"]["path"]) for node in nodes]


def _run_chromium(chromium: str, action: str, page: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as user_data_dir:
        result = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", action, page],
            capture_output=True,
            text=True,
            timeout=90,
        )
    stderr_tail = "\n".join(result.stderr.splitlines()[-20:])
    assert result.returncode == 0, f"chromium {action} exited {result.returncode}:\n{stderr_tail}"
    return result


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.texts: set[str] = set()
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.add(data.strip())


def _text_nodes(html: str) -> set[str]:
    collector = _TextCollector()
    collector.feed(html)
    return collector.texts


AUTOMATION_QUERY = """
query($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
      automationCondition { label expandedLabel }
      internalFreshnessPolicy {
        ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds }
        ... on CronFreshnessPolicy { deadlineCron }
      }
    }
  }
}
"""


def test_automation_freshness_and_owners_are_shown(request: pytest.FixtureRequest) -> None:
    """A data engineer sees on the mart's page how it is kept fresh, and who owns it."""
    chromium = _require_chromium()
    dagster_ui: DagsterUI = request.getfixturevalue("dagster_ui")
    _group_asset_keys(dagster_ui)  # the code location has loaded
    mart = _graphql(dagster_ui.url, AUTOMATION_QUERY, key={"path": ["marts", "dim_users"]})
    node = mart["assetNodeOrError"]
    assert node["automationCondition"]["label"] == "after new raw partitions"
    assert node["internalFreshnessPolicy"] == {
        "failWindowSeconds": 6 * 3600,
        "warnWindowSeconds": 2 * 3600,
    }
    assert {"team": "analytics-engineering"} in node["owners"]
    model = _graphql(dagster_ui.url, AUTOMATION_QUERY, key={"path": ["models", "feed_ranker"]})
    assert model["assetNodeOrError"]["automationCondition"]["label"].startswith("nightly")
    sensors = _graphql(
        dagster_ui.url,
        '{ sensorsOrError(repositorySelector: {repositoryName: "__repository__", '
        f'repositoryLocationName: "{LOCATION}"}}) {{ ... on Sensors {{ results {{ name '
        "sensorType sensorState { status } } } } }",
    )
    by_name = {s["name"]: s for s in sensors["sensorsOrError"]["results"]}
    # evaluated by the daemon (not the code server): Dagster names that type AUTO_MATERIALIZE
    assert by_name["platform_automation"]["sensorType"] == "AUTO_MATERIALIZE"
    assert by_name["platform_automation"]["sensorState"]["status"] == "RUNNING"

    _graphql(dagster_ui.url, "mutation { setNuxSeen }")
    dom = _run_chromium(chromium, "--dump-dom", dagster_ui.url + "/assets/marts/dim_users").stdout
    texts = _text_nodes(dom)
    assert "after new raw partitions" in texts, sorted(texts)[:80]
    assert "analytics-engineering" in dom
