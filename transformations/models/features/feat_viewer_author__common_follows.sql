{{ config(order_by='(user_id, author_id, event_timestamp)') }}

-- one row per viewer x author and instant the number of accounts the viewer follows that follow
-- the author changes (friends of friends: people engage with whom their friends follow). Each
-- follow is an interval [start, end) from int_follow_transitions; a two-hop path viewer -> x ->
-- author counts while both of its follows hold, so the count at any instant uses only follows
-- started at or before it. Rows where the count falls back to 0 are kept, so a point-in-time
-- read after the last path ended sees 0, not a stale count.
with transitions as (
    select * from {{ ref('int_follow_transitions') }}
),

follow_intervals as (
    select follower_id, followee_id, started_at, ended_at
    from (
        select
            follower_id,
            followee_id,
            occurred_at as started_at,
            delta,
            leadInFrame(toNullable(occurred_at), 1, null) over (
                partition by follower_id, followee_id order by occurred_at
                rows between unbounded preceding and unbounded following
            ) as ended_at
        from transitions
    )
    where delta = 1
),

-- each two-hop path's interval, as its +1 at the start and, if it ends, its -1 at the end: one
-- pass over the join (a CTE named twice, as in a UNION ALL of starts and ends, is computed twice
-- by ClickHouse). Paths whose interval is empty (they end when they start) count nowhere.
count_changes as (
    select user_id, author_id, change.1 as changed_at, change.2 as delta
    from (
        select
            first_hop.follower_id as user_id,
            second_hop.followee_id as author_id,
            greatest(first_hop.started_at, second_hop.started_at) as started_at,
            -- null: both follows still hold at the end of the data
            if(
                first_hop.ended_at is null and second_hop.ended_at is null,
                null,
                least(
                    ifNull(first_hop.ended_at, second_hop.ended_at),
                    ifNull(second_hop.ended_at, first_hop.ended_at)
                )
            ) as ended_at
        from follow_intervals as first_hop
        inner join follow_intervals as second_hop
            on first_hop.followee_id = second_hop.follower_id
        where first_hop.follower_id != second_hop.followee_id
            and (ended_at is null or ended_at > started_at)
    )
    array join if(
        ended_at is null,
        [(started_at, toInt8(1))],
        [(started_at, toInt8(1)), (assumeNotNull(ended_at), toInt8(-1))]
    ) as change
),

-- each pair's changes sorted by time in one array: one group-by per pair (a group-by per pair and
-- instant before it, then one per pair, cost 1.3-1.7x the CPU at 3,000 users x 7 days: 5.1M rows
-- over 1.9M pairs; a window with one partition per pair cost twice as much again)
pair_changes as (
    select user_id, author_id, arraySort(groupArray((changed_at, delta))) as changes
    from count_changes
    group by user_id, author_id
),

-- the running count at the last change of each instant (`ends`: indexes where the next change
-- is at a later instant); an instant whose paths start and end alike leaves the count as the
-- previous instant left it, and gets no row
instant_counts as (
    select
        user_id,
        author_id,
        arrayMap(c -> c.1, changes) as times,
        arrayCumSum(arrayMap(c -> toInt64(c.2), changes)) as counts,
        arrayFilter(i -> i = length(times) or times[i] != times[i + 1], arrayEnumerate(times)) as ends,
        arrayMap(i -> times[i], ends) as end_times,
        arrayMap(i -> counts[i], ends) as end_counts
    from pair_changes
)

select
    user_id,
    author_id,
    {{ ms_utc('change.1') }} as event_timestamp,
    change.2 as common_follows
from instant_counts
array join arrayFilter(
    (c, k) -> c.2 != if(k = 1, 0, end_counts[k - 1]),
    arrayZip(end_times, end_counts),
    arrayEnumerate(end_counts)
) as change
