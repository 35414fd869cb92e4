{{ config(order_by='(post_id, event_timestamp)') }}

{%- set topics = var('topics') -%}

-- one row per post with hashtags, at its creation: what the post is about, as a share per
-- signup topic. The platform does not know a hashtag's topic; it learns it from who uses it:
-- the share of posts with the tag whose author picked topic k, minus the share among all tagged
-- posts' authors (the base rate), floored at 0 and normalised to sum to 1 per tag. Both shares
-- count only posts created at or before this post (point-in-time), the post itself included.
-- The post's shares are the mean over its hashtags. No row: no hashtags, or no author topics.
with authors as (
    -- topics picked at signup, before any post
    select user_id, argMin(interests, occurred_at) as signup_interests
    from {{ ref('stg_raw__users') }}
    where event_type = 'user_created' and interests is not null
    group by user_id
),

post_tags as (
    select
        p.post_id as post_id,
        p.created_at as created_at,
        tag
        {%- for topic in topics %},
        toFloat64(has(splitByChar(',', a.signup_interests), '{{ topic }}')) as picked_{{ topic }}
        {%- endfor %}
    from {{ ref('dim_posts') }} as p
    array join p.hashtags as tag
    inner join authors as a on p.author_id = a.user_id
),

running as (
    select
        post_id,
        tag
        {%- for topic in topics %},
        sum(picked_{{ topic }}) over by_tag / count() over by_tag
            - sum(picked_{{ topic }}) over everyone / count() over everyone as lift_{{ topic }}
        {%- endfor %},
        created_at
    from post_tags
    window
        by_tag as (partition by tag order by created_at range between unbounded preceding and current row),
        everyone as (order by created_at range between unbounded preceding and current row)
),

tag_topics as (
    select
        post_id,
        created_at
        {%- for topic in topics %},
        greatest(lift_{{ topic }}, 0) as positive_{{ topic }}
        {%- endfor %},
        {% for topic in topics %}greatest(lift_{{ topic }}, 0){% if not loop.last %} + {% endif %}{% endfor %} as positive_total
    from running
)

select
    post_id,
    {{ ms_utc('created_at') }} as event_timestamp
    {%- for topic in topics %},
    avg(if(positive_total > 0, positive_{{ topic }} / positive_total, 0)) as topic_{{ topic }}
    {%- endfor %}
from tag_topics
group by post_id, created_at
