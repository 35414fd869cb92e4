"""One settings home: no module outside `appconfig/` reads an environment variable.

Every value a variable configures is a `Settings` field (`appconfig/settings.py`), so a
variable's name, default and meaning are written once. What stays allowed elsewhere: setting
variables for libraries and child processes (`os.environ[...] = ...`, `os.environ.update`) and
handing the whole environment on unread (`{**os.environ, ...}`). Tests may read what they like.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = ("appconfig/", "tests/")
READS = {
    "getenv": re.compile(r"\bgetenv\("),
    "environ.get": re.compile(r"\benviron\.get\("),
    "environ.setdefault": re.compile(r"\benviron\.setdefault\("),
    "environ[...] read": re.compile(r"\benviron\[[^\]]+\](?!\s*=[^=])"),
    "in os.environ": re.compile(r"\bin\s+os\.environ\b"),
}


def env_reads(text: str) -> list[str]:
    return [
        f"{number}: {what}"
        for number, line in enumerate(text.splitlines(), 1)
        for what, pattern in READS.items()
        if pattern.search(line)
    ]


def test_the_patterns_catch_reads_and_allow_writes() -> None:
    assert env_reads('x = os.environ.get("A")\ny = os.getenv("B")\nz = os.environ["C"]')
    assert env_reads('if "A" in os.environ:\n    pass')
    assert env_reads('os.environ.setdefault("A", "1")')
    assert env_reads('ok = os.environ["A"] == "1"')
    assert not env_reads('os.environ["A"] = "1"\nos.environ.update(B="2")\nenv = {**os.environ}')


def test_no_environment_variable_is_read_outside_the_settings_modules() -> None:
    files = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    assert len(files) > 100
    found = [
        f"{name}:{hit}"
        for name in files
        if not name.startswith(ALLOWED) and (ROOT / name).exists()
        for hit in env_reads((ROOT / name).read_text())
    ]
    assert not found, f"environment read outside appconfig/ (add a Settings field): {found}"
