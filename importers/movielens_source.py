"""Where MovieLens 100K comes from: a folder, a zip, or the official GroupLens download.

The importer reads the RecBole layout (`ml-100k.user`, `ml-100k.item`, `ml-100k.inter`), which
is what `../shared/datasets/movielens-100k` holds. GroupLens publishes the original layout
(`ml-100k.zip` with `u.user`, `u.item`, `u.data`, `u.genre`); a folder or zip in that layout is
converted once into the RecBole layout under `<data dir>/datasets/`. The download is checked
against the MD5 GroupLens publishes beside it (`ml-100k.zip.md5`) before anything is unpacked.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import urllib.request
import zipfile
from pathlib import Path

from appconfig import get_settings

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
GROUPLENS_MD5 = "0e33842e24a9c977be4e0107933c0723"  # files.grouplens.org/.../ml-100k.zip.md5
RECBOLE_FILES = ("ml-100k.user", "ml-100k.item", "ml-100k.inter")
GROUPLENS_FILES = ("u.user", "u.item", "u.data")
YEAR_IN_TITLE = re.compile(r"\s*\((\d{4})\)\s*$")
# u.genre's order: the 19 flags at the end of each u.item line.
GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


class MovieLensSourceError(ValueError):
    """The source is missing, has an unknown layout, or failed its checksum."""


def default_directory() -> Path:
    """`MOVIELENS_DIR`, else the shared datasets folder beside the repository."""
    configured = get_settings().movielens_dir
    if configured:
        return configured
    return Path(__file__).resolve().parents[2] / "shared" / "datasets" / "movielens-100k"


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(cache_dir: Path, url: str = GROUPLENS_URL, md5: str = GROUPLENS_MD5) -> Path:
    """The archive at `url`, saved under `cache_dir` only when its MD5 is `md5`."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / url.rsplit("/", 1)[-1]
    if target.is_file() and md5_of(target) == md5:
        return target
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise MovieLensSourceError(f"downloading {url} failed: {error}") from None
    actual = md5_of(partial)
    if actual != md5:
        partial.unlink()
        raise MovieLensSourceError(
            f"{url}: MD5 {actual} differs from the published {md5}; nothing was imported"
        )
    partial.replace(target)
    return target


def _layout_root(directory: Path, names: tuple[str, ...]) -> Path | None:
    """`directory` or its one subfolder (zips hold `ml-100k/`) when it has all `names`."""
    for candidate in (directory, *sorted(p for p in directory.iterdir() if p.is_dir())):
        if all((candidate / name).is_file() for name in names):
            return candidate
    return None


def _convert_grouplens(source: Path, target: Path) -> Path:
    """u.user / u.item / u.data -> ml-100k.user / .item / .inter (RecBole's typed headers)."""
    target.mkdir(parents=True, exist_ok=True)
    users = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
    for line in (source / "u.user").read_text(encoding="latin-1").splitlines():
        if line.strip():
            users.append("\t".join(line.split("|")))
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    for number, line in enumerate(
        (source / "u.item").read_text(encoding="latin-1").splitlines(), 1
    ):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 5 + len(GENRES):
            raise MovieLensSourceError(f"{source / 'u.item'}:{number}: {len(fields)} fields")
        title, released = fields[1], fields[2]
        match = YEAR_IN_TITLE.search(title)
        year = match.group(1) if match else released[-4:]
        title = YEAR_IN_TITLE.sub("", title)
        genres = " ".join(g for g, flag in zip(GENRES, fields[5:], strict=True) if flag == "1")
        items.append(f"{fields[0]}\t{title}\t{year}\t{genres}")
    ratings = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for line in (source / "u.data").read_text(encoding="latin-1").splitlines():
        if line.strip():
            ratings.append("\t".join(line.split()))
    for name, rows in zip(RECBOLE_FILES, (users, items, ratings), strict=True):
        (target / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return target


def resolve(source: Path | None, cache_dir: Path) -> Path:
    """A folder in the RecBole layout for `source` (folder or zip; None = the default folder)."""
    source = source or default_directory()
    if source.is_file() and zipfile.is_zipfile(source):
        unpacked = cache_dir / f"{source.stem}-{md5_of(source)[:12]}"
        if not unpacked.is_dir():
            with zipfile.ZipFile(source) as archive:
                archive.extractall(unpacked)
        source = unpacked
    if not source.is_dir():
        raise MovieLensSourceError(
            f"MovieLens 100K not found at {source}: pass --from DIR|ZIP, or --download"
        )
    if root := _layout_root(source, RECBOLE_FILES):
        return root
    if root := _layout_root(source, GROUPLENS_FILES):
        return _convert_grouplens(root, cache_dir / f"{source.name}-recbole")
    raise MovieLensSourceError(
        f"{source} has neither {', '.join(RECBOLE_FILES)} nor GroupLens' {', '.join(GROUPLENS_FILES)}"
    )
