{{ config(order_by='story_id') }}

-- one row per story: views and reach (distinct viewers) during its life, from created_at
-- (included) to expires_at (excluded); the author's own views do not count; and whether
-- moderation hides it (its media at or above the NSFW threshold, dim_posts' rule for posts)
with stories as (
    select story_id, author_id, occurred_at as created_at, expires_at
    from {{ ref('stg_raw__stories') }}
    order by occurred_at, event_id
    limit 1 by story_id
),

story_views as (
    select assumeNotNull(story_id) as story_id, viewer_id, occurred_at as viewed_at, dwell_ms
    from {{ ref('stg_raw__views') }}
    where event_type = 'story_view'
),

story_media as (
    select story_id, max(nsfw_score) as max_media_nsfw_score
    from {{ ref('stg_media__objects') }}
    where story_id is not null
    group by story_id
),

views_in_life as (
    select
        story_views.story_id as story_id,
        count() as views,
        uniqExact(story_views.viewer_id) as reach,
        sum(ifNull(story_views.dwell_ms, 0)) as total_dwell_ms
    from story_views
    inner join stories on story_views.story_id = stories.story_id
    where story_views.viewed_at >= stories.created_at
        and story_views.viewed_at < stories.expires_at
        and story_views.viewer_id != stories.author_id
    group by story_views.story_id
)

select
    stories.story_id as story_id,
    stories.author_id as author_id,
    stories.created_at as created_at,
    stories.expires_at as expires_at,
    views_in_life.views as views,
    views_in_life.reach as reach,
    views_in_life.total_dwell_ms as total_dwell_ms,
    story_media.max_media_nsfw_score as max_media_nsfw_score,
    -- seen by no one: the stories tray leaves it out (visibility.VisibilityGraph)
    {{ is_moderation_hidden('story_media.max_media_nsfw_score') }} as is_moderation_hidden
from stories
left join views_in_life on stories.story_id = views_in_life.story_id
left join story_media on stories.story_id = story_media.story_id
