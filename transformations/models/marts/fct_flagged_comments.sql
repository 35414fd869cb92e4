{{ config(order_by='comment_id', partition_by='toYYYYMM(decided_at)') }}

-- one row per flagged comment: the moderation queue's and analysts' view of what the comment
-- checks withheld. The checks decide automatically today (decision 'hidden': a flagged comment
-- does not notify, see notifications/router.py); reason is the strongest of its reasons
-- (profanity before spam), reasons keeps them all.
with flagged as (
    select * from {{ ref('stg_moderation__comment_checks') }}
    where is_flagged
)

select
    flagged.comment_id as comment_id,
    flagged.post_id as post_id,
    flagged.commenter_id as commenter_id,
    nullIf(posts.author_id, 0) as post_author_id,  -- no join_use_nulls: 0 is no match
    flagged.comment_text as comment_text,
    if(has(flagged.reasons, 'profanity'), 'profanity', 'spam') as reason,
    flagged.reasons as reasons,
    flagged.is_profane as is_profane,
    flagged.spam_score as spam_score,
    'hidden' as decision,
    'comment_checks' as decided_by,
    flagged.checked_at as decided_at
from flagged
left join {{ ref('int_posts') }} as posts on flagged.post_id = posts.post_id
