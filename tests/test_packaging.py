"""The project as others get it: a built wheel imports on its own, and no machine path leaks.

The wheel is installed without dependencies into a fresh venv that sees the project's
third-party packages through a `.pth` file (installing them again would take minutes); the
project's own code comes only from the wheel (the editable install's `.pth` in the project venv
is not read, and the interpreter runs isolated from the source tree).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_SHIPPED = {"tests", "bench"}  # packages of the repository, not of the product
# a home, a worktree or a mount of this machine, written into a file
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|home|Users|root|mnt)/[\w.-]+")


def _top_level_packages() -> set[str]:
    return {
        p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name not in NOT_SHIPPED
    }


def test_pyproject_packages_every_top_level_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packaged = set(config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    assert _top_level_packages() <= packaged, _top_level_packages() - packaged


def test_the_built_wheel_imports_every_package_in_a_clean_venv(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the wheel"
    dist = tmp_path / "dist"
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--no-deps", "--python", str(python), str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    packages = [*sorted(_top_level_packages()), "cli"]
    probe = (
        "import importlib, sys\n"
        f"for name in {packages!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({site!r}), (name, module.__file__)\n"
        "for name in ('fanout.precompute', 'ml.recommenders.data', 'serving.app'):\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(python), "-I", "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_no_absolute_machine_path_in_the_repository() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    found = []
    for name in files:
        if name == "uv.lock" or name.startswith("tests/data/"):
            continue
        path = ROOT / name
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        found += [f"{name}: {m.group(0)}" for m in MACHINE_PATH.finditer(text)]
    assert not found, found
