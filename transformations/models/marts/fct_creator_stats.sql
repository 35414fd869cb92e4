{{ config(order_by='author_id') }}

-- one row per creator (a user with at least one post or story): what they published and what
-- it received. likes are standing likes; reach counts distinct viewers of their posts; story
-- views count within each story's 24 h life; engagement_rate = engaged impressions / impressions
with post_stats as (
    select
        author_id,
        count() as posts,
        countIf(is_deleted) as deleted_posts,
        sum(likes) as likes_received,
        sum(comments) as comments_received,
        sum(shares) as shares_received,
        sum(saves) as saves_received,
        sum(impressions) as impressions,
        sum(engaged_impressions) as engaged_impressions
    from {{ ref('fct_post_engagement') }}
    group by author_id
),

post_reach as (
    select author_id, uniqExact(viewer_id) as reach
    from {{ ref('fct_training_impressions') }}
    group by author_id
),

story_stats as (
    select author_id, count() as stories, sum(views) as story_views
    from {{ ref('fct_story_views') }}
    group by author_id
),

creators as (
    select author_id from post_stats
    union distinct
    select author_id from story_stats
)

select
    creators.author_id as author_id,
    users.username as username,
    users.tier as tier,
    users.follower_count as follower_count,
    post_stats.posts as posts,
    post_stats.deleted_posts as deleted_posts,
    story_stats.stories as stories,
    post_stats.likes_received as likes_received,
    post_stats.comments_received as comments_received,
    post_stats.shares_received as shares_received,
    post_stats.saves_received as saves_received,
    post_stats.impressions as impressions,
    post_reach.reach as reach,
    story_stats.story_views as story_views,
    if(post_stats.posts = 0, 0, post_stats.likes_received / post_stats.posts) as likes_per_post,
    if(post_stats.impressions = 0, 0, post_stats.engaged_impressions / post_stats.impressions) as engagement_rate
from creators
left join post_stats on creators.author_id = post_stats.author_id
left join post_reach on creators.author_id = post_reach.author_id
left join story_stats on creators.author_id = story_stats.author_id
left join {{ ref('dim_users') }} as users on creators.author_id = users.user_id
