"""Comment checks in Dagster: every loaded comment gets a moderation row in ClickHouse."""

import dagster as dg

from orchestration.resources import ClickHouseResource

COMMENT_CHECKS = dg.AssetKey(["moderation", "comment_checks"])


class CommentChecksConfig(dg.Config):
    database: str = "moderation"


@dg.asset(
    key=COMMENT_CHECKS,
    deps=[dg.AssetKey(["raw", "engagements"])],
    group_name="moderation",
    kinds={"clickhouse"},
    pool="clickhouse",
    description="One row per comment: profanity (better-profanity's word list), spam score "
    "(TF-IDF + logistic regression trained on the workload's labelled comments), flagged, reasons.",
)
def comment_checks(
    config: CommentChecksConfig, clickhouse: ClickHouseResource
) -> dg.MaterializeResult:
    from moderation.comment_rows import TABLE, record_comment_checks
    from moderation.comments import default_checker

    with clickhouse.client() as client:
        written = record_comment_checks(
            client, clickhouse.raw_database, config.database, default_checker()
        )
        total, flagged = client.query(
            f"select count(), countIf(flagged) from {config.database}.{TABLE} final"
        ).result_rows[0]
    return dg.MaterializeResult(
        metadata={"checked": written, "table_rows": int(total), "flagged": int(flagged)}
    )


def defs() -> dg.Definitions:
    return dg.Definitions(assets=[comment_checks])
