"""Comment checks in Dagster: every loaded comment gets a moderation row in ClickHouse, and
the flagged-comment mart (`fct_flagged_comments`, what the moderation queue and analysts read)
is checked to list every comment the checks flagged."""

from typing import Any

import dagster as dg

from appconfig import get_settings
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


def flagged_counts(client: Any, database: str, marts_database: str) -> tuple[int, int]:
    """(comments the checks flagged, rows of the mart): equal when the mart is complete."""
    from moderation.comment_rows import TABLE

    flagged, listed = client.query(
        f"select (select countIf(flagged) from {database}.{TABLE} final),"
        f" (select count() from {marts_database}.fct_flagged_comments)"
    ).result_rows[0]
    return int(flagged), int(listed)


def every_flagged_comment_listed_check() -> dg.AssetChecksDefinition:
    """The check on the mart, keyed by the dbt manifest's key for fct_flagged_comments (built
    when the definitions load, not at import)."""
    from orchestration.analytics.lineage import model_keys

    @dg.asset_check(
        asset=model_keys("fct_flagged_comments")[0],
        name="every_flagged_comment_listed",
        additional_deps=[COMMENT_CHECKS],
        description="fct_flagged_comments has one row per comment flagged in "
        "moderation.comment_checks (fails when a flagged comment would be missing from the "
        "moderation queue, or listed twice).",
    )
    def every_flagged_comment_listed(clickhouse: ClickHouseResource) -> dg.AssetCheckResult:
        with clickhouse.client() as client:
            flagged, listed = flagged_counts(
                client, CommentChecksConfig().database, get_settings().marts_database
            )
        return dg.AssetCheckResult(
            passed=flagged == listed, metadata={"flagged": flagged, "listed": listed}
        )

    return every_flagged_comment_listed


def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[comment_checks], asset_checks=[every_flagged_comment_listed_check()]
    )
