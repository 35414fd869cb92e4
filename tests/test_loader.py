"""The loader on real chDB: exactly once by address and by event_id, nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from clickhouse_connect.driver.client import Client

from appconfig import Settings
from ingestion.loader import SourceRecord, load_records

RECEIVED = datetime(2026, 11, 20, 11, tzinfo=UTC)


def like(n: int, **changes: object) -> bytes:
    payload = {
        "event_id": f"00000000-0000-4000-8000-{n:012d}",
        "event_type": "like",
        "schema_version": 1,
        "occurred_at": "2026-11-20T10:00:00.000Z",
        "producer": "test",
        "user_id": n,
        "post_id": 1,
    }
    payload.update(changes)
    return orjson.dumps(payload)


def records(source: str, lines: list[bytes], kind: str = "landing") -> list[SourceRecord]:
    return [SourceRecord(source, i, line, RECEIVED, kind) for i, line in enumerate(lines, start=1)]


def count(client: Client, settings: Settings, table: str) -> int:
    return int(
        client.query(f"SELECT count() FROM {settings.clickhouse_raw_database}.{table}").result_rows[
            0
        ][0]
    )


def test_load_routes_valid_and_invalid(clickhouse: Client, settings: Settings) -> None:
    db = settings.clickhouse_raw_database
    batch = records("f1", [like(1), like(2), b"{oops", like(3, user_id="3")])
    report = load_records(clickhouse, db, batch, partition_key="p")
    assert report.loaded_by_family == {"engagements": 2}
    assert report.dead_lettered == 2
    assert count(clickhouse, settings, "engagements") == 2
    rows = clickhouse.query(
        f"SELECT _position, reasons, payload FROM {db}.dead_letters ORDER BY _position"
    ).result_rows
    assert [(r[0], list(r[1])) for r in rows] == [
        (3, ["payload: malformed JSON"]),
        (4, ["user_id: expected an integer"]),
    ]
    assert rows[0][2] == "{oops"  # the raw payload is kept byte for byte


def test_reloading_the_same_records_changes_nothing(clickhouse: Client, settings: Settings) -> None:
    db = settings.clickhouse_raw_database
    batch = records("f1", [like(1), b"not json", like(1)])
    first = load_records(clickhouse, db, batch, partition_key="p")
    second = load_records(clickhouse, db, batch, partition_key="p")
    assert (first.loaded, first.dead_lettered) == (1, 2)
    assert (second.loaded, second.dead_lettered, second.already_loaded) == (0, 0, 3)
    assert count(clickhouse, settings, "engagements") == 1
    assert count(clickhouse, settings, "dead_letters") == 2


def test_duplicate_event_id_from_another_source_is_dead_lettered(
    clickhouse: Client, settings: Settings
) -> None:
    db = settings.clickhouse_raw_database
    load_records(clickhouse, db, records("f1", [like(1)]), partition_key="p")
    redelivered = [
        SourceRecord("kafka:engagements:0", 41, like(1), RECEIVED, "kafka", ("engagements", 0, 41))
    ]
    report = load_records(clickhouse, db, redelivered, partition_key="p")
    assert report.loaded == 0 and report.dead_lettered == 1
    reason, topic, offset = clickhouse.query(
        f"SELECT reasons[1], kafka_topic, kafka_offset FROM {db}.dead_letters"
    ).result_rows[0]
    assert reason == "event_id: duplicate of the event at f1:1"
    assert (topic, offset) == ("engagements", 41)
    assert count(clickhouse, settings, "engagements") == 1


def test_typed_columns_follow_the_contract(clickhouse: Client, settings: Settings) -> None:
    db = settings.clickhouse_raw_database
    post = orjson.dumps(
        {
            "event_id": "00000000-0000-4000-8000-000000000099",
            "event_type": "post_created",
            "schema_version": 1,
            "occurred_at": "2026-11-20T10:00:00.123Z",
            "producer": "test",
            "user_id": 5,
            "post_id": 50,
            "media_type": "carousel",
            "hashtags": ["a", "b"],
            "media": [
                {
                    "object_key": "k1",
                    "mime_type": "image/jpeg",
                    "width": 10,
                    "height": 20,
                    "size_bytes": 3,
                },
                {
                    "object_key": "k2",
                    "mime_type": "video/mp4",
                    "width": 10,
                    "height": 20,
                    "size_bytes": 3,
                    "duration_ms": 500,
                },
            ],
        }
    )
    report = load_records(clickhouse, db, records("f9", [post]), partition_key="p")
    assert report.loaded == 1
    row = clickhouse.query(
        f"SELECT occurred_at, hashtags, media.duration_ms, media_type, location_id FROM {db}.posts"
    ).result_rows[0]
    assert str(row[0]).startswith("2026-11-20 10:00:00.123")
    assert row[1] == ["a", "b"]
    assert row[2] == [None, 500]
    assert row[3] == "carousel"
    assert row[4] is None


def impression(n: int, **changes: object) -> bytes:
    payload = {
        "event_id": f"00000000-0000-4000-9000-{n:012d}",
        "event_type": "impression",
        "schema_version": 1,
        "occurred_at": "2026-11-20T10:00:00.000Z",
        "producer": "test",
        "user_id": n,
        "post_id": 1,
        "surface": "home_feed",
        "position": 0,
        "dwell_ms": 900,
    }
    payload.update(changes)
    return orjson.dumps(payload)


def test_impressions_of_unknown_arms_go_to_the_dead_letters(
    clickhouse: Client, settings: Settings
) -> None:
    db = settings.clickhouse_raw_database
    arms = {("ranker-v3", "control"), ("ranker-v3", "treatment")}
    batch = records(
        "f-exp",
        [
            impression(1, experiment="ranker-v3", arm="treatment"),
            impression(2),  # outside any experiment
            impression(3, experiment="ranker-v3", arm="oracle"),
            impression(4, experiment="gone", arm="control"),
            impression(5, experiment="ranker-v3"),  # an experiment without its arm
        ],
    )
    report = load_records(
        clickhouse, db, batch, known_arm=lambda experiment, arm: (experiment, arm) in arms
    )
    assert report.loaded_by_family == {"views": 2}
    loaded = clickhouse.query(
        f"SELECT user_id, experiment, arm FROM {db}.views ORDER BY user_id"
    ).result_rows
    assert loaded == [(1, "ranker-v3", "treatment"), (2, None, None)]
    rows = clickhouse.query(
        f"SELECT _position, reasons FROM {db}.dead_letters ORDER BY _position"
    ).result_rows
    assert [(r[0], list(r[1])) for r in rows] == [
        (3, ["arm: unknown arm 'oracle' of experiment 'ranker-v3'"]),
        (4, ["arm: unknown arm 'control' of experiment 'gone'"]),
        (5, ["experiment, arm: both or neither"]),
    ]


def test_a_table_created_before_a_contract_change_gains_its_new_columns(
    clickhouse: Client, settings: Settings
) -> None:
    from warehouse import ensure_raw_tables

    db = settings.clickhouse_raw_database
    clickhouse.command(f"ALTER TABLE {db}.views DROP COLUMN experiment, DROP COLUMN arm")
    ensure_raw_tables(clickhouse, db)
    load_records(
        clickhouse,
        db,
        records("f-new", [impression(7, experiment="e", arm="a")]),
        known_arm=lambda e, a: True,
    )
    assert clickhouse.query(f"SELECT experiment, arm FROM {db}.views").result_rows == [("e", "a")]
