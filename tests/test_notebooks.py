"""The notebooks run top to bottom against the embedded profile (executed, not just opened).

Each runs in its own kernel process with the environment of a platform built end to end
(`built_platform`): the test process holds no chDB client, so the kernel can open the directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(
    path: Path, built_platform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = built_platform.settings
    environment = {
        "PLATFORM_PROFILE": "embedded",
        "PLATFORM_DATA_DIR": str(settings.data_dir),
        "CLICKHOUSE_URL": settings.clickhouse_url,
        "OBJECT_STORE_URL": settings.object_store_url,
        "METADATA_DB_URL": settings.metadata_db_url,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MPLBACKEND": "Agg",
    }
    for name in ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "FEAST_REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=dict(os.environ))
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
