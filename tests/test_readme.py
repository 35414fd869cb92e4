"""The README's folder table names every top-level folder of the repository, and only those."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_folder_table_matches_the_tree() -> None:
    text = (ROOT / "README.md").read_text()
    table = text.split("## What is here", 1)[1].split("\n\n", 2)[1]
    named = {
        name.rstrip("/").split("/")[0]
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([^`]+/)`", row.split("|")[1])
    }
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    folders = {name.split("/")[0] for name in tracked if "/" in name and not name.startswith(".")}
    assert named == folders, f"README only: {named - folders}; tree only: {folders - named}"
