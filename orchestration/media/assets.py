"""The `media/objects` asset: every post's and story's media processed once (renditions +
metadata row).

It reads the media keys of `post_created` events in `raw.posts` and of `story_created` events in
`raw.stories` that have no row in `<database>.objects` yet, processes them in worker processes (which touch only the object
store) and inserts the rows from this step process, the only ClickHouse writer. A corrupt or
unsupported original is a recorded row with a reason and a count in the metadata, never a
failed run; an original not yet in the store is counted as missing and retried next run.
"""

import functools

import dagster as dg
from clickhouse_connect.driver.client import Client

from appconfig import get_settings
from mediapipeline.pipeline import QUEUE_TABLE, MediaJob, ensure_objects_table, process_media
from moderation.decisions import decision_events
from moderation.decisions import publish as publish_decisions
from moderation.media import NSFW_THRESHOLD
from objectstore import open_store
from orchestration.resources import ClickHouseResource, ObjectStoreResource

MEDIA_OBJECTS = dg.AssetKey(["media", "objects"])
RAW_POSTS = dg.AssetKey(["raw", "posts"])
RAW_STORIES = dg.AssetKey(["raw", "stories"])


class MediaConfig(dg.Config):
    database: str = "media"
    workers: int = 0  # 0: one per CPU
    limit: int = 0  # 0: every pending key; else at most this many per run


def pending_jobs(
    client: Client, raw_database: str, media_database: str, limit: int = 0
) -> list[MediaJob]:
    """Media of created posts and stories without a row in `<media_database>.objects`, oldest
    first."""
    query = f"""
        select object_key, mime_type, post_id, story_id, user_id
        from (
            select tupleElement(item, 'object_key') as object_key,
                   toString(tupleElement(item, 'mime_type')) as mime_type,
                   toNullable(toInt64(post_id)) as post_id,
                   cast(null, 'Nullable(Int64)') as story_id,
                   toInt64(user_id) as user_id, occurred_at
            from {raw_database}.posts final
            array join media as item
            where event_type = 'post_created'
            union all
            select tupleElement(media, 'object_key'),
                   toString(tupleElement(media, 'mime_type')),
                   cast(null, 'Nullable(Int64)'),
                   toNullable(toInt64(story_id)),
                   toInt64(user_id), occurred_at
            from {raw_database}.stories final
            where event_type = 'story_created'
        )
        where object_key not in (select object_key from {media_database}.objects)
        order by occurred_at, object_key
        limit 1 by object_key
    """
    if limit > 0:
        query += f" limit {int(limit)}"
    return [
        MediaJob(
            key,
            mime,
            int(post) if post is not None else None,
            int(user),
            int(story) if story is not None else None,
        )
        for key, mime, post, story, user in client.query(query).result_rows
    ]


def moderation_queue_size(client: Client, database: str) -> int:
    rows = client.query(f"select count() from {database}.{QUEUE_TABLE} final").result_rows
    return int(rows[0][0])


@dg.asset(
    key=MEDIA_OBJECTS,
    deps=[RAW_POSTS, RAW_STORIES],
    description="One row per processed media object of a post or story: dimensions, duration, "
    "format, kept EXIF, quality features (megapixels, sharpness, brightness, blockiness), "
    "content checks (NudeNet nsfw_score, OpenCV face_count; flagged media also in "
    "media.moderation_queue), "
    "status ('ok' | 'corrupt' | 'unsupported') with the reason, and the keys of its renditions "
    "(posts: feed 1080, profile 320, thumbnail 150 JPEGs, 1080p/720p/480p H.264 MP4s; "
    "stories: 1080x1920 and 270x480 JPEGs, 9:16 H.264 MP4s).",
    group_name="media",
    kinds={"clickhouse", "s3"},
    pool="clickhouse",
)
def media_objects(
    context: dg.AssetExecutionContext,
    config: MediaConfig,
    clickhouse: ClickHouseResource,
    object_store: ObjectStoreResource,
) -> dg.MaterializeResult:
    """Process the media of posts and stories that media.objects does not have yet."""
    store_factory = functools.partial(
        open_store,
        object_store.url,
        endpoint_url=object_store.endpoint_url,
        access_key=object_store.access_key,
        secret_key=object_store.secret_key,
    )
    with clickhouse.client() as client:
        ensure_objects_table(client, config.database)
        jobs = pending_jobs(client, clickhouse.raw_database, config.database, config.limit)
        report = process_media(
            client, config.database, store_factory, jobs, workers=config.workers or None
        )
        total = client.query(f"select count() from {config.database}.objects final").result_rows
        queue = moderation_queue_size(client, config.database)
    # the API hides these posts in seconds, before dbt rebuilds dim_posts (moderation.decisions)
    decisions = decision_events(report.rows)
    publish_decisions(store_factory(), get_settings().moderation_decisions_prefix, decisions)
    failed = report.by_status.get("corrupt", 0) + report.by_status.get("unsupported", 0)
    context.log.info(
        f"{len(jobs)} pending media objects: {report.processed} processed "
        f"({report.by_status}), {report.missing} not in the object store, "
        f"{report.seconds:.1f}s with {report.workers} workers"
    )
    reasons: dict[str, int] = {}
    for row in report.rows:
        if row["status"] != "ok":
            reasons[row["reason"][:80]] = reasons.get(row["reason"][:80], 0) + 1
    return dg.MaterializeResult(
        metadata={
            "pending": len(jobs),
            "processed": report.processed,
            "ok": report.by_status.get("ok", 0),
            "corrupt": report.by_status.get("corrupt", 0),
            "unsupported": report.by_status.get("unsupported", 0),
            "failure_rate": failed / report.processed if report.processed else 0.0,
            "missing_originals": report.missing,
            "images": report.by_kind.get("image", 0),
            "videos": report.by_kind.get("video", 0),
            "post_media": report.by_layout.get("post", 0),
            "story_media": report.by_layout.get("story", 0),
            "renditions_written": report.renditions,
            "rendition_bytes": report.rendition_bytes,
            "objects_per_second": round(report.objects_per_second, 2),
            "workers": report.workers,
            "seconds": round(report.seconds, 2),
            "table_rows": int(total[0][0]),
            "nsfw_flagged": sum(
                1
                for r in report.rows
                if r.get("nsfw_score") is not None and r["nsfw_score"] >= NSFW_THRESHOLD
            ),
            "faces_found": sum(r.get("face_count") or 0 for r in report.rows),
            "moderation_queue": queue,
            "moderation_decisions_published": len(decisions),
            "reasons": dg.MetadataValue.json(reasons),
        }
    )
