"""The search indexes asset: posts, users, hashtags and locations of the marts, in tantivy."""

import dagster as dg

from appconfig import get_settings
from orchestration.resources import ClickHouseResource
from search.build import build_from_marts

SEARCH_INDEXES = dg.AssetKey(["search", "indexes"])
# the dbt models search.documents.load_from_marts reads: their asset keys come from the
# manifest when the domain's definitions are built (orchestration.search.defs)
SOURCE_MODELS = ("dim_posts", "dim_users", "fct_post_engagement", "fct_hashtag_trends")


@dg.asset(
    key=SEARCH_INDEXES,
    group_name="search",
    owners=["team:search-discovery"],
    kinds={"tantivy", "redis"},
    pool="clickhouse",
    description="Full-text search indexes (tantivy, under <data dir>/search) of every post "
    "(caption, hashtags, location, author, media type, created time, engagement; deleted posts "
    "kept as tombstones), user, hashtag and location; with REDIS_URL also the autocomplete "
    "sorted sets. Upserts by entity id, so a re-run changes nothing; the streaming indexer "
    "(python -m search.indexer) keeps it current between builds.",
)
def search_indexes(
    context: dg.AssetExecutionContext, clickhouse: ClickHouseResource
) -> dg.MaterializeResult:
    settings = get_settings().model_copy(update={"clickhouse_url": clickhouse.url})
    report = build_from_marts(settings)
    context.log.info(f"search indexes: {report.documents} in {report.index_seconds:.1f} s")
    return dg.MaterializeResult(
        metadata={
            **{f"{kind}_documents": n for kind, n in report.documents.items()},
            "index_bytes": dg.MetadataValue.int(report.index_bytes),
            "docs_per_second": round(report.docs_per_second, 1),
            "read_seconds": round(report.read_seconds, 2),
            "index_seconds": round(report.index_seconds, 2),
            "autocomplete_entries": report.autocomplete_entries,
            "tombstones_kept_from_stream": report.kept_tombstones,
            "private_kept_from_stream": report.kept_private,
            "path": str(settings.data_dir / "search"),
        }
    )
