{{ config(order_by='(author_id, event_timestamp)') }}

-- feat_user__profile keyed by the author: the author's home city and signup topics, so an
-- on-demand view can set them against the viewer's (same city, topic overlap). Columns carry an
-- author_ prefix: Feast hands an on-demand view its inputs by feature name, and the viewer's
-- profile has the same names.
select
    user_id as author_id,
    event_timestamp,
    city as author_city,
    interests as author_interests
from {{ ref('feat_user__profile') }}
