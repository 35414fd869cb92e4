{{ config(order_by='(muter_id, muted_id)') }}

-- one row per muter x muted user currently muted (the latest of mute / unmute is a mute)
{{ current_toggles('mute', 'unmute', 'muter_id', 'muted_id', 'muted_at') }}
