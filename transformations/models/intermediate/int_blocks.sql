{{ config(order_by='(blocker_id, blocked_id)') }}

-- one row per blocker x blocked user currently blocked (the latest of block / unblock is a block)
{{ current_toggles('block', 'unblock', 'blocker_id', 'blocked_id', 'blocked_at') }}
