"""Importers of real data: exact counts against the source files, valid events, rejects with
reasons, and the pipeline (landing -> chDB -> dbt marts -> Feast training set) running on them.

The expected counts are recomputed here from the files with pandas, independently of the
importer's own parsing.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from analytics_support import DBT_DATABASES, load_landing, run_dbt
from conftest import in_ci
from hypothesis import given, settings
from hypothesis import strategies as st
from platform_support import platform_settings
from typer.testing import CliRunner

from appconfig import get_settings
from contracts.timestamps import parse_timestamp
from contracts.validation import validate_line
from importers.__main__ import app
from importers.edge_list import (
    DEFAULT_ID_OFFSET,
    SYNTHETIC_START,
    EdgeListFormatError,
    import_edge_list,
)
from importers.events import IMPORT_NAMESPACE, stable_event_id
from importers.landing import write_landing
from importers.movielens import (
    DEFAULT_DIRECTORY,
    GENRE_ACCOUNT_ID_OFFSET,
    POST_ID_OFFSET,
    USER_ID_OFFSET,
    MovieLensFormatError,
    import_movielens,
    read_movielens,
    to_events,
)
from ingestion.landing import partition_key_of_file
from objectstore import open_store
from warehouse import clickhouse_client

RECEIVED_AT = datetime(2026, 11, 24, 5, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def movielens_dir() -> Path:
    if not (DEFAULT_DIRECTORY / "ml-100k.inter").is_file():
        message = f"MovieLens 100K not found at {DEFAULT_DIRECTORY} (the shared datasets folder)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return DEFAULT_DIRECTORY


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame


@pytest.fixture(scope="module")
def source(movielens_dir: Path) -> dict[str, pd.DataFrame]:
    ratings = _read(movielens_dir / "ml-100k.inter")
    ratings["rating"] = ratings["rating"].astype(float)
    ratings["timestamp"] = ratings["timestamp"].astype(int)
    ratings[["user_id", "item_id"]] = ratings[["user_id", "item_id"]].astype(int)
    items = _read(movielens_dir / "ml-100k.item")
    items["item_id"] = items["item_id"].astype(int)
    items["first_genre"] = items["class"].str.split().str[0]
    return {"users": _read(movielens_dir / "ml-100k.user"), "items": items, "ratings": ratings}


def _events(records: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(r.line) for r in records]


def test_movielens_counts_match_the_source_files_exactly(
    movielens_dir: Path, source: dict[str, pd.DataFrame]
) -> None:
    users, items, ratings = source["users"], source["items"], source["ratings"]
    assert (len(users), len(items), len(ratings)) == (943, 1682, 100_000)
    imported = import_movielens(movielens_dir, received_at=RECEIVED_AT)
    likes = ratings[ratings["rating"] >= 4]
    first_genres = items["first_genre"].nunique()
    follows = likes.merge(items[["item_id", "first_genre"]], on="item_id")[
        ["user_id", "first_genre"]
    ].drop_duplicates()
    assert imported.source_counts == {"users": 943, "items": 1682, "ratings": 100_000}
    assert dict(imported.log.counts) == {
        "user_created": 943 + first_genres,
        "post_created": 1682,
        "impression": 100_000,
        "like": len(likes),
        "follow": len(follows),
    }
    assert len(likes) == 55_375  # the published rating distribution: 34,174 fours + 21,201 fives

    events = _events(imported.log.records)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(event["event_type"], []).append(event)
    # ids: offsets documented in importers.movielens
    assert {e["user_id"] for e in by_type["user_created"]} == {
        USER_ID_OFFSET + int(u) for u in users["user_id"]
    } | set(imported.genre_accounts.values())
    assert all(
        GENRE_ACCOUNT_ID_OFFSET < a <= GENRE_ACCOUNT_ID_OFFSET + 19
        for a in imported.genre_accounts.values()
    )
    assert {e["post_id"] for e in by_type["post_created"]} == {
        POST_ID_OFFSET + i for i in items["item_id"]
    }
    # every rating is one impression of the same (user, movie), ending at the rating time
    expected_pairs = Counter(
        zip(ratings["user_id"] + USER_ID_OFFSET, ratings["item_id"] + POST_ID_OFFSET, strict=True)
    )
    assert Counter((e["user_id"], e["post_id"]) for e in by_type["impression"]) == expected_pairs
    like_times = Counter(
        (e["user_id"], e["post_id"], parse_timestamp(e["occurred_at"])) for e in by_type["like"]
    )
    assert like_times == Counter(
        (u + USER_ID_OFFSET, i + POST_ID_OFFSET, datetime.fromtimestamp(t, UTC))
        for u, i, t in zip(likes["user_id"], likes["item_id"], likes["timestamp"], strict=True)
    )
    # authors are the first genre's account; posts exist before anyone sees them
    author = {
        POST_ID_OFFSET + i: imported.genre_accounts[g]
        for i, g in zip(items["item_id"], items["first_genre"], strict=True)
    }
    created = {e["post_id"]: parse_timestamp(e["occurred_at"]) for e in by_type["post_created"]}
    assert all(e["user_id"] == author[e["post_id"]] for e in by_type["post_created"])
    for e in by_type["impression"]:
        assert created[e["post_id"]] < parse_timestamp(e["occurred_at"])
    signed_up = {e["user_id"]: parse_timestamp(e["occurred_at"]) for e in by_type["user_created"]}
    for e in events:
        if e["event_type"] != "user_created":
            assert signed_up[e["user_id"]] < parse_timestamp(e["occurred_at"])
    # every event passes its contract, as the loader will check it
    assert len({e["event_id"] for e in events}) == len(events)
    for record in imported.log.records:
        assert validate_line(record.line, now=RECEIVED_AT) == []
        assert record.produced_at == RECEIVED_AT


def test_event_ids_are_uuid5_of_source_type_and_key() -> None:
    """The ids are a promise: re-importing must give the same ids forever."""
    for key in ("1:2", 17, "ü/x", ""):
        expected = uuid.uuid5(IMPORT_NAMESPACE, f"movielens-100k/like/{key}")
        assert stable_event_id("movielens-100k", "like", key) == str(expected)
    assert str(IMPORT_NAMESPACE) == "5d1f3a52-8c1e-4c55-9a55-0f1d2c3b4a69"


def test_movielens_import_is_deterministic_and_subsets_by_user(movielens_dir: Path) -> None:
    data = read_movielens(movielens_dir)
    first = to_events(data, received_at=RECEIVED_AT, max_users=25)
    again = to_events(data, received_at=RECEIVED_AT, max_users=25)
    assert [r.line for r in first.log.records] == [r.line for r in again.log.records]
    kept = {r for r in data.ratings if r.user_id <= 25}
    assert first.imported_users == 25
    assert first.log.counts["impression"] == len(kept)
    assert first.log.counts["like"] == sum(r.rating >= 4 for r in kept)
    assert first.log.counts["post_created"] == 1682  # movies are always all imported
    no_follows = to_events(data, received_at=RECEIVED_AT, max_users=25, follows=False)
    assert "follow" not in no_follows.log.counts


def test_movielens_malformed_files_name_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "ml-100k.user").write_text("user_id:token\tage:token\n1\t24\n")
    (tmp_path / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Comedy\n"
    )
    inter = tmp_path / "ml-100k.inter"
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    inter.write_text(header + "1\t1\t5\t881250949\n1\t1\tfive\t881250949\n")
    with pytest.raises(MovieLensFormatError, match=r"ml-100k.inter:3: rating or timestamp"):
        read_movielens(tmp_path)
    inter.write_text(header + "1\t2\t5\t881250949\n")
    with pytest.raises(MovieLensFormatError, match=r"ml-100k.inter:2: unknown item 2"):
        read_movielens(tmp_path)
    inter.write_text(header + "1\t1\t5\n")
    with pytest.raises(MovieLensFormatError, match=r"ml-100k.inter:2: 3 fields, the header has 4"):
        read_movielens(tmp_path)
    with pytest.raises(MovieLensFormatError, match="file not found"):
        read_movielens(tmp_path / "missing")


# --- edge lists --------------------------------------------------------------------------------

EDGES = """follower,followee,timestamp
1,2,1700000000
2,3
# a comment line
3,3
x,4
1,2,1700000100
4,5,2026-01-01T00:00:00Z
5,6,yesterday
6,7,1,2

7,8,2031-01-01
8,1,
2,1,2025-06-01 12:00:00
"""


def test_edge_list_counts_rejects_and_synthesized_times() -> None:
    imported = import_edge_list(EDGES.splitlines(), source="edges:test", received_at=RECEIVED_AT)
    assert imported.header == "follower,followee,timestamp"
    assert (imported.comment_lines, imported.blank_lines) == (1, 1)
    assert [(r.line, r.reason.split(":")[0]) for r in imported.rejects] == [
        (5, "self-follow"),
        (6, "follower"),
        (7, "duplicate"),
        (9, "timestamp"),
        (10, "fields"),
        (12, "timestamp"),
    ]
    reasons = {r.line: r.reason for r in imported.rejects}
    assert reasons[7] == "duplicate: the same follow edge is on line 2"
    assert "'yesterday' is neither unix seconds nor ISO-8601" in reasons[9]
    assert "after the import" in reasons[12]
    assert imported.rejects[1].text == "x,4"
    # every line is accounted for: header + edges + rejects + comments + blanks
    total = len(EDGES.splitlines())
    assert 1 + len(imported.edges) + len(imported.rejects) + 1 + 1 == total

    edges = {
        (e.follower - DEFAULT_ID_OFFSET, e.followee - DEFAULT_ID_OFFSET): e for e in imported.edges
    }
    assert sorted(edges) == [(1, 2), (2, 1), (2, 3), (4, 5), (8, 1)]
    assert edges[(1, 2)].followed_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert edges[(2, 1)].followed_at == datetime(2025, 6, 1, 12, tzinfo=UTC)  # naive = UTC
    assert edges[(2, 3)].synthesized and edges[(8, 1)].synthesized
    assert edges[(2, 3)].followed_at == SYNTHETIC_START + timedelta(seconds=2)  # line 3
    assert edges[(8, 1)].followed_at == SYNTHETIC_START + timedelta(seconds=12)  # line 13
    assert imported.synthesized_timestamps == 2

    events = _events(imported.log.records)
    assert dict(imported.log.counts) == {"user_created": 6, "follow": 5}
    assert imported.nodes == 6
    signed_up = {e["user_id"]: parse_timestamp(e["occurred_at"]) for e in events[:6]}
    assert set(signed_up) == {DEFAULT_ID_OFFSET + n for n in (1, 2, 3, 4, 5, 8)}
    for e in events[6:]:
        at = parse_timestamp(e["occurred_at"])
        assert signed_up[e["user_id"]] < at and signed_up[e["target_user_id"]] < at
    for record in imported.log.records:
        assert validate_line(record.line, now=RECEIVED_AT) == []
    again = import_edge_list(EDGES.splitlines(), source="edges:test", received_at=RECEIVED_AT)
    assert [r.line for r in again.log.records] == [r.line for r in imported.log.records]


def test_edge_list_reads_snap_whitespace_files_without_header() -> None:
    snap = ["# Directed graph: example", "# FromNodeId\tToNodeId", "0\t1", "1\t0", "0 2", "2  3"]
    imported = import_edge_list(snap, source="snap:x", received_at=RECEIVED_AT, id_offset=10)
    assert imported.header is None and imported.comment_lines == 2
    assert [(e.follower, e.followee) for e in imported.edges] == [(10, 11), (11, 10)]
    # the delimiter comes from the first data line (tab): "0 2" is then one field
    assert [(r.line, r.reason.split(":")[0]) for r in imported.rejects] == [
        (5, "fields"),
        (6, "fields"),
    ]
    spaced = import_edge_list(["0 1", "0  2 1700000000"], source="s", received_at=RECEIVED_AT)
    assert len(spaced.edges) == 2 and not spaced.rejects
    with pytest.raises(ValueError, match="id_offset"):
        import_edge_list([], source="s", received_at=RECEIVED_AT, id_offset=-1)


_NODE = st.integers(min_value=0, max_value=40).map(str)
_TIME = st.one_of(
    st.just(""),
    st.integers(min_value=946_684_800, max_value=1_790_000_000).map(str),
    st.sampled_from(["2025-06-01T12:00:00Z", "2031-01-01", "soon", "1e400", "nan", "-5"]),
)
_LINE = st.one_of(
    st.tuples(_NODE, _NODE, _TIME).map(lambda t: ",".join(t)),
    st.tuples(_NODE, _NODE).map(lambda t: ",".join(t)),
    st.sampled_from(["", "   ", "# comment", "a,b", "1,2,3,4", "1;2", "-1,2", "1, 2 ,", ",,"]),
    st.text(alphabet=",0123456789 x#\t", max_size=12),
)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(_LINE, max_size=40))
def test_every_edge_list_line_is_an_edge_a_reject_or_skipped_never_lost(lines: list[str]) -> None:
    try:
        imported = import_edge_list(lines, source="edges:prop", received_at=RECEIVED_AT)
    except EdgeListFormatError as error:
        # the only whole-file refusal: a first data line taken for a header of unknown columns
        assert str(error).startswith("unknown columns")
        return
    header = 1 if imported.header is not None else 0
    accounted = (
        header
        + len(imported.edges)
        + len(imported.rejects)
        + imported.comment_lines
        + imported.blank_lines
    )
    assert accounted == len(lines)
    used = {e.line for e in imported.edges} | {r.line for r in imported.rejects}
    assert len(used) == len(imported.edges) + len(imported.rejects)  # one outcome per line
    assert all(r.reason and r.text == lines[r.line - 1].rstrip("\r\n") for r in imported.rejects)
    edges = {(e.follower, e.followee) for e in imported.edges}
    assert len(edges) == len(imported.edges) and all(a != b for a, b in edges)
    assert imported.log.counts["follow"] == len(edges)
    for record in imported.log.records:
        assert validate_line(record.line, now=RECEIVED_AT) == []


def _plain(output: str) -> str:
    """CLI output without rich's box drawing and line wrapping."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", output)


def test_cli_imports_an_edge_list_into_the_landing_zone(tmp_path: Path, monkeypatch) -> None:
    edges = tmp_path / "graph.csv"
    edges.write_text(EDGES)
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OBJECT_STORE_URL", f"file://{tmp_path / 'objects'}")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        done = runner.invoke(app, ["edges", str(edges), "--received-at", "2026-11-24T05:30:00Z"])
        assert done.exit_code == 0, done.output
        missing = runner.invoke(app, ["edges", str(tmp_path / "nope.csv")])
        assert missing.exit_code != 0 and "file not found" in _plain(missing.output)
        bad_time = runner.invoke(app, ["edges", str(edges), "--received-at", "soon"])
        assert bad_time.exit_code != 0 and "not an ISO-8601 time" in _plain(bad_time.output)
    finally:
        get_settings.cache_clear()
    store = open_store(f"file://{tmp_path / 'objects'}")
    landing = list(store.list("landing/events/"))
    assert {partition_key_of_file(k) for k in landing} == {"2026-11-24-05:00"}
    lines = [line for k in landing for line in store.get(k).splitlines()]
    assert Counter(orjson.loads(line)["event_type"] for line in lines) == {
        "user_created": 6,
        "follow": 5,
    }
    folder = "imports/edges-graph/edges-graph-20261124T053000Z"
    manifest = orjson.loads(store.get(f"{folder}/manifest.json"))
    assert manifest["edges"] == 5 and manifest["rejected_lines"] == 6
    rejects = [orjson.loads(line) for line in store.get(f"{folder}/rejects.jsonl").splitlines()]
    assert [r["line"] for r in rejects] == [5, 6, 7, 9, 10, 12]


def test_cli_imports_a_movielens_subset(movielens_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    url = f"file://{tmp_path / 'objects'}"
    try:
        runner = CliRunner()
        args = ["movielens", "--users", "3", "--received-at", "2026-11-24T05:30:00Z"]
        done = runner.invoke(app, [*args, "--store-url", url, "--lines-per-file", "100"])
        assert done.exit_code == 0, done.output
        broken = runner.invoke(app, ["movielens", "--path", str(tmp_path), "--store-url", url])
        assert broken.exit_code != 0 and "has neither ml-100k.user" in _plain(broken.output)
    finally:
        get_settings.cache_clear()
    store = open_store(url)
    data = read_movielens(movielens_dir)
    ratings = [r for r in data.ratings if r.user_id <= 3]
    landing = list(store.list("landing/events/"))
    counts = Counter(
        orjson.loads(line)["event_type"] for k in landing for line in store.get(k).splitlines()
    )
    assert counts["impression"] == len(ratings) and counts["post_created"] == 1682
    assert counts["like"] == sum(r.rating >= 4 for r in ratings)
    assert max(len(store.get(k).splitlines()) for k in landing) == 100  # split by size
    batch = "movielens-100k-20261124T053000Z"
    manifest = orjson.loads(store.get(f"imports/movielens-100k/{batch}/manifest.json"))
    assert manifest["imported_users"] == 3 and manifest["events_by_type"] == dict(
        sorted(counts.items())
    )
    assert sorted(manifest["landing_keys"]) == sorted(landing)


# --- the pipeline on imported data -------------------------------------------------------------


def test_pipeline_runs_on_imported_movielens_and_edges(movielens_dir: Path, tmp_path: Path) -> None:
    """Landing -> raw -> dbt marts -> Feast training set, on a 60-user MovieLens subset plus an
    edge list (the count test above covers the full files)."""
    from featurestore.config import close_offline_client, feature_store
    from featurestore.materialize import data_watermark, materialize_online
    from featurestore.registry import apply_definitions
    from featurestore.training import build_training_set

    settings = platform_settings(tmp_path)
    store = open_store(settings.object_store_url)
    movielens = import_movielens(movielens_dir, received_at=RECEIVED_AT, max_users=60)
    edges = import_edge_list(EDGES.splitlines(), source="edges:test", received_at=RECEIVED_AT)
    partitions: set[str] = set()
    for batch, log in (("ml", movielens.log), ("edges", edges.log)):
        partitions |= write_landing(store, settings.landing_prefix, log.records, batch).partitions
    chdb_path = tmp_path / "clickhouse"
    load_landing(chdb_path, store, sorted(partitions))
    run = run_dbt(tmp_path, chdb_path, "run")
    assert run.returncode == 0, run.output[-4000:]

    counts = movielens.log.counts
    marts_db = DBT_DATABASES.marts_database
    with clickhouse_client(f"chdb://{chdb_path}") as client:
        dead = client.query("select count() from raw.dead_letters").result_rows[0][0]
        marts = {
            name: client.query(f"select count() from {marts_db}.{name}").result_rows[0][0]
            for name in ("dim_users", "dim_posts")
        }
        labels = client.query(
            f"select count(), sum(is_engaged) from {marts_db}.fct_training_impressions"
        ).result_rows[0]
        genre_followers = client.query(
            f"select sum(follower_count) from {marts_db}.dim_users "
            f"where user_id in {tuple(movielens.genre_accounts.values())}"
        ).result_rows[0][0]
        edge_followers = client.query(
            f"select sum(follower_count) from {marts_db}.dim_users "
            f"where user_id >= {DEFAULT_ID_OFFSET}"
        ).result_rows[0][0]
    assert dead == 0
    assert marts == {
        "dim_users": counts["user_created"] + edges.log.counts["user_created"],
        "dim_posts": 1682,
    }
    # each impression is followed 10 s later by a like exactly when the rating was >= 4
    assert tuple(labels) == (counts["impression"], counts["like"])
    assert genre_followers == counts["follow"]
    assert edge_followers == len(edges.edges)

    feast = feature_store(settings)
    try:
        apply_definitions(feast, settings)
        watermark = data_watermark(feast, settings)
        assert watermark is not None and watermark < RECEIVED_AT
        materialize_online(feast, watermark, count_rows=False)
        training = build_training_set(feast, settings, as_of=watermark)
    finally:
        close_offline_client()
    frame = training.frame
    assert len(frame) > 0
    assert set(frame["user_id"]) <= {USER_ID_OFFSET + u for u in range(1, 61)}
    assert set(frame["post_id"]) <= {POST_ID_OFFSET + i for i in range(1, 1683)}


# --- relations, hex keys, bad files, all-or-nothing landing ------------------------------------


def test_edge_list_relation_column_brings_blocks_and_mutes() -> None:
    lines = [
        "src,dst,relation,timestamp",
        "1,2,follow,1700000000",
        "1,3,mutes,1700000001",
        "2,3,block,",
        "1,2,follow",
        "1,2,mute",
        "3,3,block",
        "4,5,unfriend",
        "4,5",
    ]
    imported = import_edge_list(lines, source="edges:rel", received_at=RECEIVED_AT)
    assert imported.by_relation() == {"block": 1, "follow": 1, "mute": 2}
    assert [(r.line, r.reason.split(":")[0]) for r in imported.rejects] == [
        (5, "duplicate"),
        (7, "self-block"),
        (8, "relation"),
        (9, "fields"),
    ]
    assert "'unfriend' is not one of" in imported.rejects[2].reason
    events = _events(imported.log.records)
    assert Counter(e["event_type"] for e in events) == {
        "user_created": 3,
        "follow": 1,
        "mute": 2,
        "block": 1,
    }
    for record in imported.log.records:
        assert validate_line(record.line, now=RECEIVED_AT) == []


def test_edge_list_kind_applies_to_the_whole_file_and_skips_signups_for_mutes() -> None:
    mutes = import_edge_list(["1 2", "2 3"], source="m", received_at=RECEIVED_AT, kind="mutes")
    assert dict(mutes.log.counts) == {"mute": 2}  # the accounts come with the follows
    with_signups = import_edge_list(
        ["1 2"], source="m", received_at=RECEIVED_AT, kind="blocks", signups=True
    )
    assert dict(with_signups.log.counts) == {"user_created": 2, "block": 1}
    with pytest.raises(EdgeListFormatError, match="choose one"):
        import_edge_list(
            ["from,to,kind", "1,2,mute"], source="m", received_at=RECEIVED_AT, kind="mutes"
        )


def test_edge_list_unknown_columns_refuse_the_file() -> None:
    for header, message in (
        ("follower,followee,weight", r"unknown columns \['weight'\]"),
        ("from,from", "more than once"),
        ("follower,timestamp", "no followee column"),
    ):
        with pytest.raises(EdgeListFormatError, match=message):
            import_edge_list([header, "1,2"], source="x", received_at=RECEIVED_AT)


def test_edge_list_hex_keys_map_to_integers_the_same_in_every_file() -> None:
    a, b, c = "9f86d081884c7d65", "0x2C26B46B68FFC68F", "fcde2b2edba56bf4"
    lines = [f"{a},{b}", f"{b},{c}", f"{a},{a}", "zz-top,1", f"{a[:12]}00,{c}"]
    imported = import_edge_list(lines, source="h", received_at=RECEIVED_AT, node_ids="auto")
    assert imported.node_id_kind == "hex" and imported.header is None
    node = {k: int(k[:12], 16) for k in (a, "2c26b46b68ffc68f", c)}
    assert imported.node_ids == node
    assert [(e.follower, e.followee) for e in imported.edges] == [
        (DEFAULT_ID_OFFSET + node[a], DEFAULT_ID_OFFSET + node["2c26b46b68ffc68f"]),
        (DEFAULT_ID_OFFSET + node["2c26b46b68ffc68f"], DEFAULT_ID_OFFSET + node[c]),
    ]
    reasons = [r.reason for r in imported.rejects]
    assert reasons[0].startswith("self-follow")
    assert reasons[1] == "follower: 'zz-top' is not a hex key"
    assert reasons[2].startswith(f"follower: hex key '{a[:12]}00' maps to node")  # a collision
    mutes = import_edge_list([f"{c}\t{a}"], source="m", received_at=RECEIVED_AT, node_ids="hex")
    assert mutes.node_ids == {a: node[a], c: node[c]}  # same keys, same accounts
    assert imported.node_id_csv().decode().splitlines()[0] == "key,node,user_id"
    # integer files stay integer under auto; an integer file given as hex is read as keys
    plain = import_edge_list(["x,2", "3,4"], source="i", received_at=RECEIVED_AT, node_ids="auto")
    assert plain.node_id_kind == "integer" and plain.rejects[0].reason.startswith("follower")


def test_cli_import_never_half_lands(tmp_path: Path, monkeypatch) -> None:
    """A write failing midway removes what the import had written; a bad file writes nothing."""
    from importers.landing import ImportNotLanded, land_import
    from objectstore.store import LocalObjectStore

    class Failing(LocalObjectStore):
        def __init__(self, root: Path, fail_at: int) -> None:
            super().__init__(root)
            self.puts, self.fail_at = 0, fail_at

        def put(self, key: str, data: bytes) -> None:
            self.puts += 1
            if self.puts == self.fail_at:
                raise OSError("disk full")
            super().put(key, data)

    imported = import_edge_list(EDGES.splitlines(), source="edges:test", received_at=RECEIVED_AT)
    store = Failing(tmp_path / "objects", fail_at=3)  # rejects, one landing file, then fails
    with pytest.raises(ImportNotLanded, match="disk full; removed the 2 files"):
        land_import(
            store,
            "landing/events",
            imported.log.records,
            "b1",
            source="edges-test",
            manifest=imported.manifest(),
            rejects=[r.as_dict() for r in imported.rejects],
        )
    assert list(store.list("")) == []

    bad = tmp_path / "bad.csv"
    bad.write_text("follower,followee,weight\n1,2,0.5\n")
    url = f"file://{tmp_path / 'cli-objects'}"
    done = CliRunner().invoke(app, ["edges", str(bad), "--store-url", url])
    assert done.exit_code != 0 and "unknown columns" in _plain(done.output)
    assert list(open_store(url).list("")) == []
