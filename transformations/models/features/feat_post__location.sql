{{ config(order_by='(post_id, event_timestamp)') }}

-- one row per post tagged with a place, at its creation: the place's name and coordinates, for
-- the viewer x post location features (same city, distance to the viewer's home). Posts without
-- a location have no row: the on-demand view scores them as "no location" (0), never an error.
select
    post_id,
    {{ ms_utc('created_at') }} as event_timestamp,
    location_name,
    toFloat64(latitude) as location_latitude,
    toFloat64(longitude) as location_longitude
from {{ ref('dim_posts') }}
where location_id is not null and latitude is not null and longitude is not null
