"""`dbt build` (models, data tests, unit tests) of transformations/ on embedded ClickHouse.

dbt runs in a subprocess on a temp chDB directory that this process has closed first (chDB allows
one process per data directory); its artifacts go to a temp target path, so parallel runs do not
collide. A corrupted raw table must make the right dbt tests fail, and say why.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from analytics_support import PROJECT_DIR, DbtRun, run_dbt

from ingestion.landing_source import landing_batches
from ingestion.loader import load_records
from objectstore.store import open_store
from warehouse import clickhouse_client, ensure_raw_tables
from workload.config import WorkloadConfig
from workload.generator import generate
from workload.writer import write_workload

START = datetime(2026, 11, 1, tzinfo=UTC)


def raw_data(work: Path, users: int, days: int) -> Path:
    """A generated workload loaded into raw tables in a chDB directory, closed again."""
    workload = generate(WorkloadConfig(users=users, days=days, seed=3, start=START))
    store = open_store(f"file://{work}/objects")
    written = write_workload(store, "landing/events", workload)
    chdb_path = work / "clickhouse"
    with clickhouse_client(f"chdb://{chdb_path}") as client:
        ensure_raw_tables(client, "raw")
        for _, records in landing_batches(store, "landing/events", sorted(written.partitions)):
            load_records(client, "raw", records)
    return chdb_path


def dbt(work: Path, chdb_path: Path, *args: str) -> DbtRun:
    return run_dbt(work, chdb_path, *args)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> DbtRun:
    work = tmp_path_factory.mktemp("dbt_build")
    return dbt(work, raw_data(work, users=80, days=1), "build")


def test_dbt_build_passes_every_model_and_test(build: DbtRun) -> None:
    failed = [
        (r["unique_id"], r["status"], r["message"])
        for r in build.results
        if r["status"] not in ("success", "pass")
    ]
    assert build.returncode == 0 and not failed, f"{failed}\n{build.output[-6000:]}"
    kinds = Counter(r["unique_id"].split(".", 1)[0] for r in build.results)
    names = build.by_name()
    models = {name for name, r in names.items() if r["unique_id"].startswith("model.")}
    assert models == {p.stem for p in (PROJECT_DIR / "models").rglob("*.sql")}
    from contracts.catalog import FAMILIES  # a staging model per raw table

    assert {m for m in models if m.startswith("stg_raw__")} == {f"stg_raw__{f}" for f in FAMILIES}
    features = {m for m in models if m.startswith("feat_")}
    assert len(features) == 20
    for model in features:  # each feature table: its own yml, its key tested unique
        assert (PROJECT_DIR / "models" / "features" / f"{model}.yml").exists(), model
        assert any(n.startswith(f"unique_combination_{model}_") for n in names), model
    assert kinds["test"] >= 100  # data tests: generic and singular
    assert kinds["unit_test"] >= 15
    for unit_test in (
        "int_follow_transitions_start_and_end_inside_one_day",
        "int_follow_transitions_block_ends_follows_both_ways",
        "int_follow_transitions_private_approval_flow",
        "int_follow_transitions_no_follow_while_a_block_stands",
        "int_follow_transitions_no_plain_follow_of_a_private_account",
        "int_follow_graph_latest_transition_decides",
        "feat_user__follow_counts_follow_inside_one_day",
        "feat_viewer_author__affinity_stamped_at_the_engagement_millisecond",
        "fct_user_author_affinity_history_half_life",
        "fct_user_author_affinity_history_one_row_per_millisecond",
        "fct_user_author_affinity_half_life",
        "int_likes_like_unlike_like",
        "fct_post_engagement_window_edges",
        "fct_training_impressions_label_window_edges",
        "fct_training_impressions_explored_flag",
        "int_posts_deleted_posts",
        "int_account_privacy_periods",
        "int_hashtag_trends_deleted_or_private_after_the_hour_still_counts_then",
    ):
        assert names[unit_test]["status"] == "pass"


def test_corrupted_raw_data_fails_the_relevant_tests(tmp_path: Path) -> None:
    chdb_path = raw_data(tmp_path, users=30, days=1)
    with clickhouse_client(f"chdb://{chdb_path}") as client:
        columns = [row[0] for row in client.query("describe raw.views").result_rows]
        copied = ", ".join(c for c in columns if c != "_ingested_at")

        def corrupt(changes: dict[str, str]) -> None:
            picked = ", ".join(changes.get(c, c) for c in columns if c != "_ingested_at")
            client.command(
                f"insert into raw.views ({copied}) select {picked} from raw.views "
                "where event_type = 'impression' order by event_id limit 1"
            )

        # the same event_id again with another viewer: ReplacingMergeTree cannot collapse it
        corrupt({"user_id": "user_id + 1"})
        # an impression on screen for a negative time
        corrupt({"event_id": "generateUUIDv4()", "dwell_ms": "-5"})
    run = dbt(tmp_path, chdb_path, "build", "--select", "stg_raw__views")

    assert run.returncode == 1
    names = run.by_name()
    unique = names["unique_stg_raw__views_event_id"]
    assert (unique["status"], unique["failures"]) == ("fail", 1)
    assert unique["message"] == "Got 1 result, configured to fail if != 0"
    dwell = next(
        r for n, r in names.items() if n.startswith("accepted_range_stg_raw__views_dwell_ms")
    )
    assert (dwell["status"], dwell["failures"]) == ("fail", 1)
    assert "Failure in test unique_stg_raw__views_event_id" in run.output
    passed = [r for r in run.results if r["status"] == "pass"]
    assert len(passed) >= 8  # the other tests of the model still hold
