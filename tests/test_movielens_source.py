"""`photo-platform import movielens` from a zip, a GroupLens folder, or a checked download.

The download is served by a local HTTP server (a zip in GroupLens' layout built here); a wrong
checksum must import nothing. The converted files must read like the shared RecBole copy.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appconfig import Settings
from cli import app
from importers.movielens import read_movielens
from importers.movielens_source import GENRES, MovieLensSourceError, download, resolve

USERS = ["1|24|M|technician|85711", "2|53|F|other|94043", "3|23|M|writer|32067"]
FLAGS = ["0"] * len(GENRES)


def _item(item_id: int, title: str, genres: list[str]) -> str:
    flags = ["1" if g in genres else "0" for g in GENRES]
    return f"{item_id}|{title}|01-Jan-1995||http://example.invalid/{item_id}|" + "|".join(flags)


ITEMS = [
    _item(1, "Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
    _item(2, "GoldenEye (1995)", ["Action", "Adventure", "Thriller"]),
    _item(3, "Café au lait (1993)", ["Comedy"]),
]
RATINGS = [
    "1\t1\t5\t881250949",
    "1\t2\t3\t881250950",
    "2\t1\t4\t891717742",
    "3\t3\t2\t878887116",
    "3\t2\t5\t878887117",
]


def _grouplens_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-100k/u.user", "\n".join(USERS) + "\n")
        archive.writestr("ml-100k/u.item", ("\n".join(ITEMS) + "\n").encode("latin-1"))
        archive.writestr("ml-100k/u.data", "\n".join(RATINGS) + "\n")
        archive.writestr("ml-100k/u.genre", "".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)))
    return path


@pytest.fixture(scope="module")
def served_zip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The URL and MD5 of a GroupLens-layout zip on a local HTTP server."""
    root = tmp_path_factory.mktemp("grouplens")
    archive = _grouplens_zip(root / "ml-100k.zip")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        md5 = hashlib.md5(archive.read_bytes(), usedforsecurity=False).hexdigest()
        yield f"http://127.0.0.1:{server.server_address[1]}/ml-100k.zip", md5
    finally:
        server.shutdown()
        server.server_close()


def test_grouplens_zip_reads_like_the_recbole_layout(tmp_path: Path) -> None:
    directory = resolve(_grouplens_zip(tmp_path / "ml-100k.zip"), tmp_path / "cache")
    movielens = read_movielens(directory)
    assert [m.title for m in movielens.movies] == ["Toy Story", "GoldenEye", "Café au lait"]
    assert [m.year for m in movielens.movies] == ["1995", "1995", "1993"]
    assert movielens.movies[0].genres == ("Animation", "Children's", "Comedy")
    assert sorted(movielens.user_ids) == [1, 2, 3]
    assert [(r.user_id, r.item_id, r.rating) for r in movielens.ratings][:2] == [
        (1, 1, 5.0),
        (1, 2, 3.0),
    ]
    assert len(movielens.ratings) == len(RATINGS)


def test_download_is_checked_and_imported(
    served_zip: tuple[str, str], settings: Settings, tmp_path: Path
) -> None:
    url, md5 = served_zip
    result = CliRunner().invoke(
        app,
        ["import", "movielens", "--download", "--url", url, "--md5", md5, "--no-follows"],
    )
    assert result.exit_code == 0, result.output
    assert f"MD5 {md5} verified" in result.output
    assert (settings.data_dir / "datasets" / "ml-100k.zip").is_file()
    landed = list((settings.data_dir / "objects").rglob("*.jsonl"))
    assert landed, "no landing files written"
    lines = sum(len(p.read_text().splitlines()) for p in landed)
    likes = sum(1 for r in RATINGS if int(r.split("\t")[2]) >= 4)
    # 3 sign-ups + genre accounts + 3 posts + an impression per rating + a like per >= 4
    assert lines >= 3 + 3 + len(RATINGS) + likes


def test_a_wrong_checksum_imports_nothing(
    served_zip: tuple[str, str], settings: Settings, tmp_path: Path
) -> None:
    url, _ = served_zip
    with pytest.raises(MovieLensSourceError, match="differs from the published"):
        download(tmp_path / "cache", url, "0" * 32)
    assert not list((tmp_path / "cache").iterdir()), "a failed download must leave nothing"
    result = CliRunner().invoke(
        app, ["import", "movielens", "--download", "--url", url, "--md5", "0" * 32]
    )
    assert result.exit_code != 0
    assert not (settings.data_dir / "objects").exists() or not list(
        (settings.data_dir / "objects").rglob("*.jsonl")
    )


def test_a_folder_of_unknown_layout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ratings.csv").write_text("1,2,3\n")
    with pytest.raises(MovieLensSourceError, match="neither"):
        resolve(tmp_path / "data", tmp_path / "cache")
