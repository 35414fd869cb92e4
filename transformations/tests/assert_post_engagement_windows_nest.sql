-- every count within 1 h <= within 24 h <= within 7 d <= in total, for every post
select post_id
from {{ ref('fct_post_engagement') }}
where not (
    likes_1h <= likes_24h and likes_24h <= likes_7d and likes_7d <= likes
    and comments_1h <= comments_24h and comments_24h <= comments_7d and comments_7d <= comments
    and shares_1h <= shares_24h and shares_24h <= shares_7d and shares_7d <= shares
    and saves_1h <= saves_24h and saves_24h <= saves_7d and saves_7d <= saves
    and impressions_1h <= impressions_24h and impressions_24h <= impressions_7d
    and impressions_7d <= impressions
    and engaged_impressions <= impressions
)
