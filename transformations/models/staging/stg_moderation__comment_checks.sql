-- one row per checked comment (the latest check per comment_id), renamed and typed
select
    comment_id,
    post_id,
    user_id as commenter_id,
    text as comment_text,
    profane as is_profane,
    spam_score,
    flagged as is_flagged,
    reasons,
    checked_at
from {{ source('moderation', 'comment_checks') }} final
