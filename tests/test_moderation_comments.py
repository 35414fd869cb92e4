"""Comment checks: the compiled word list agrees with better-profanity; the spam model works on
comments it never saw."""

from __future__ import annotations

import uuid
from typing import Any

from better_profanity import profanity

from moderation.comments import ProfanityMatcher, default_checker
from workload.spam import labelled_comments
from workload.vocab import COMMENTS

SAMPLES = [
    "you are a fucking idiot",
    "sh1t happens",
    "f*ck",
    "ASSHOLE!!",
    "shitty day",
    "bitch please",
    "what the hell",
    "classic",
    "assassin",
    "pass the salt",
    "hello @user1 nice",
    *COMMENTS,
]


def test_profanity_matcher_agrees_with_better_profanity() -> None:
    profanity.load_censor_words()
    matcher = ProfanityMatcher()
    expected = [profanity.contains_profanity(t) for t in SAMPLES]
    assert [matcher(t) for t in SAMPLES] == expected
    assert sum(expected) >= 7  # the sample really has profanity in it


def test_spam_model_on_held_out_comments() -> None:
    texts, labels = labelled_comments(1_000, seed=12345)  # training used another seed
    verdicts = default_checker().check_many(texts)
    predicted = ["spam" in v.reasons for v in verdicts]
    accuracy = sum(p == bool(y) for p, y in zip(predicted, labels, strict=True)) / len(labels)
    assert accuracy > 0.97
    assert default_checker().check("what the fuck").reasons == ("profanity",)
    assert not default_checker().check("love this").flagged


def test_comment_checks_land_in_clickhouse_once(clickhouse: Any, settings: Any) -> None:
    from moderation.comment_rows import record_comment_checks

    raw = settings.clickhouse_raw_database
    texts = ["love this", "follow me for a free gift 🎁", "what the fuck"]
    clickhouse.insert(
        f"{raw}.engagements",
        [[str(uuid.uuid4()), "comment", i + 1, 7, 100 + i, t] for i, t in enumerate(texts)],
        column_names=["event_id", "event_type", "user_id", "post_id", "comment_id", "text"],
    )
    database = f"moderation_{raw}"
    assert record_comment_checks(clickhouse, raw, database, default_checker()) == 3
    assert record_comment_checks(clickhouse, raw, database, default_checker()) == 0
    rows = clickhouse.query(
        f"select comment_id, flagged, reasons from {database}.comment_checks order by comment_id"
    ).result_rows
    assert rows == [(100, False, []), (101, True, ["spam"]), (102, True, ["profanity"])]


def test_the_flagged_comment_check_compares_the_mart_with_the_checks(
    clickhouse: Any, settings: Any
) -> None:
    from moderation.comment_rows import record_comment_checks
    from orchestration.moderation import flagged_counts

    raw = settings.clickhouse_raw_database
    texts = ["nice", "follow me for a free gift 🎁", "what the fuck"]
    clickhouse.insert(
        f"{raw}.engagements",
        [[str(uuid.uuid4()), "comment", i + 1, 7, 200 + i, t] for i, t in enumerate(texts)],
        column_names=["event_id", "event_type", "user_id", "post_id", "comment_id", "text"],
    )
    database, marts = f"moderation_{raw}", f"marts_{raw}"
    record_comment_checks(clickhouse, raw, database, default_checker())
    clickhouse.command(f"create database if not exists {marts}")
    clickhouse.command(
        f"create table {marts}.fct_flagged_comments (comment_id Int64) engine = Memory"
    )
    clickhouse.command(f"insert into {marts}.fct_flagged_comments values (201)")
    assert flagged_counts(clickhouse, database, marts) == (2, 1)  # one missing: the check fails
    clickhouse.command(f"insert into {marts}.fct_flagged_comments values (202)")
    assert flagged_counts(clickhouse, database, marts) == (2, 2)
