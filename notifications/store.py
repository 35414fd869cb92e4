"""The worker's Redis side: atomic apply per partition batch, batches, digests, the outbox.

Exactly once in effect:
- `apply` runs one Lua script per (partition, poll): it records the partition's last offset and
  makes every state change, batch entry, outbox entry and dead letter of those events, or none
  of them; a re-delivered offset at or below the recorded one is skipped whole.
- batches and digests are turned into outbox entries by guarded scripts (the batch is removed in
  the same step), so a crash between never sends or loses one;
- `send` calls the provider for the outbox head, then marks their idempotency keys sent and
  trims them off in one script (atomic, as the MULTI it replaced); an entry whose key is
  marked is dropped without a call.
  Only a crash between the provider call and that script re-sends (that call's entries),
  with the same keys (the provider's collapse id), so the device still shows each once.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from notifications.kinds import Kind, summary
from notifications.provider import Notification, PushProvider
from notifications.router import Outcome, Pending
from notifications.state import Keys, RoutingState

MAX_DEAD_LETTERS = 100_000
SADD_CHUNK = 1_000  # members per SADD in the apply script

_ENQUEUE = """
local function enqueue(outbox, rate_key, window, limit, digest_key, digest_due, due_ms, payload)
  local n = redis.call('INCR', rate_key)
  if n == 1 then redis.call('EXPIRE', rate_key, window) end
  if tonumber(limit) >= 0 and n > tonumber(limit) then
    redis.call('RPUSH', digest_key, payload)
    redis.call('ZADD', digest_due, 'NX', due_ms, digest_key)
    return 0
  end
  redis.call('RPUSH', outbox, payload)
  return 1
end
"""

APPLY = (
    _ENQUEUE
    + """
-- KEYS: offsets hash, outbox; ARGV: partition field, first offset, last offset, ops (JSON).
-- Refused (0, recorded offset) if any offset of the batch is already recorded: a partition
-- moved by a rebalance can straddle what its previous owner applied, and the worker then
-- routes again only the events after the recorded offset.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(cur) >= tonumber(ARGV[2]) then return {0, 0, 0, tonumber(cur)} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
local queued, digested = 0, 0
for _, op in ipairs(cjson.decode(ARGV[4])) do
  if op[1] == 'ENQ' then
    if enqueue(KEYS[2], op[2], op[3], op[4], op[5], op[6], op[7], op[8]) == 1 then
      queued = queued + 1 else digested = digested + 1 end
  else
    redis.call(unpack(op))
  end
end
return {1, queued, digested, -1}
"""
)

APPLY_SHARED = (
    _ENQUEUE
    + """
-- a state topic's partition, read in full by every worker of the group: KEYS: offsets hash,
-- outbox; ARGV: partition field, groups (JSON [[offset, ops], ...], ascending). Each event's
-- ops are applied only if no worker recorded its offset yet; returns the offset recorded before.
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
local last = cur
for _, group in ipairs(cjson.decode(ARGV[2])) do
  if group[1] > cur then
    for _, op in ipairs(group[2]) do
      if op[1] == 'ENQ' then
        enqueue(KEYS[2], op[2], op[3], op[4], op[5], op[6], op[7], op[8])
      else
        redis.call(unpack(op))
      end
    end
    last = group[1]
  end
end
if last > cur then redis.call('HSET', KEYS[1], ARGV[1], last) end
return cur
"""
)

# the right to flush and send, held by one worker of the group at a time (renewed every poll);
# KEYS: lease key; ARGV: worker id, lease (ms). 1: held by this worker
LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

FLUSH_BATCHES = (
    _ENQUEUE
    + """
-- every due batch of a flush round in one call, each guarded on its own as before:
-- KEYS: due zset, outbox, then per batch its hash and actors set;
-- ARGV per batch (9): member, actor count, then the 7 ENQ args (payload '': nothing to send);
-- returns per batch: -1 an actor joined since the read (left for the next round), 2 removed
-- with nothing to send, 1 queued, 0 digested
local results = {}
local batches = (#KEYS - 2) / 2
for b = 0, batches - 1 do
  local hash, actors, a = KEYS[3 + 2 * b], KEYS[4 + 2 * b], 9 * b
  local result
  if redis.call('SCARD', actors) ~= tonumber(ARGV[a + 2]) then
    result = -1
  else
    redis.call('DEL', hash, actors)
    redis.call('ZREM', KEYS[1], ARGV[a + 1])
    if ARGV[a + 9] == '' then
      result = 2
    else
      result = enqueue(KEYS[2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6],
                       ARGV[a + 7], ARGV[a + 8], ARGV[a + 9])
    end
  end
  results[#results + 1] = result
end
return results
"""
)

READ_BATCHES = """
-- KEYS: per batch its hash and actors set; returns per batch the hash (flat) and the actors
local out = {}
for i = 1, #KEYS, 2 do
  out[#out + 1] = redis.call('HGETALL', KEYS[i])
  out[#out + 1] = redis.call('SMEMBERS', KEYS[i + 1])
end
return out
"""

MARK_SENT = """
-- KEYS: outbox, then the idempotency keys sent; ARGV: their ttl (s), outbox entries to trim
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
end
redis.call('LTRIM', KEYS[1], ARGV[2], -1)
return #KEYS - 1
"""

FLUSH_DIGEST = """
-- KEYS: digest due zset, digest list, outbox; ARGV: member, length, payload
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[2]) then return -1 end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Timing:
    delay_seconds: float = 300.0  # non-urgent kinds wait this long, batching what comes
    digest_limit: int = 50  # notifications per recipient per window before digests; -1: never
    digest_window_seconds: int = 3600
    sent_ttl_seconds: int = 7 * 24 * 3600


def _ms() -> int:
    return int(time.time() * 1000)


class NotificationStore:
    def __init__(self, redis: Any, keys: Keys, timing: Timing) -> None:
        self.redis = redis
        self.keys = keys
        self.timing = timing
        self._apply = redis.register_script(APPLY)
        self._apply_shared = redis.register_script(APPLY_SHARED)
        self._lease = redis.register_script(LEASE)
        self._flush_batches = redis.register_script(FLUSH_BATCHES)
        self._read_batches = redis.register_script(READ_BATCHES)
        self._mark_sent = redis.register_script(MARK_SENT)
        self._flush_digest = redis.register_script(FLUSH_DIGEST)

    # --- applying events -------------------------------------------------------------------

    def applied_offsets(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.redis.hgetall(self.keys.offsets).items()}

    def enqueue_args(self, recipient: int, payload: str, now_ms: int) -> list[str]:
        window = self.timing.digest_window_seconds
        bucket = now_ms // 1000 // window
        due_ms = (bucket + 1) * window * 1000
        return [
            self.keys.rate(recipient, bucket),
            str(window * 2),
            str(self.timing.digest_limit),
            self.keys.digest(recipient),
            self.keys.digest_due,
            str(due_ms),
            payload,
        ]

    def ops_for(self, outcome: Outcome, topic: str, partition: int) -> list[list[str]]:
        now = _ms()
        ops = list(outcome.ops)
        for note in outcome.now:
            ops.append(["ENQ", *self.enqueue_args(note.recipient, note.to_json(), now)])
        due = str(now + int(self.timing.delay_seconds * 1000))
        ops += self._pending_ops(outcome.pending, now, due)
        for event, reason in outcome.dead_letters:
            record = {"reason": reason, "topic": topic, "partition": partition, "event": event}
            ops.append(["RPUSH", self.keys.dead_letters, json.dumps(record, default=str)])
        if outcome.dead_letters:
            ops.append(["LTRIM", self.keys.dead_letters, str(-MAX_DEAD_LETTERS), "-1"])
        return ops

    def _pending_ops(self, pending: list[Pending], now: int, due: str) -> list[list[str]]:
        """Batch entries, four commands per batch however many of the poll's events join it:
        one SADD of all their actors, the batch's created/source times set only if new (the
        first event's, as one HSETNX per event would leave) and its due time added only if
        new. N likes of a hot post in one poll cost the script 4 commands, not 4 N."""
        actors: dict[str, list[str]] = {}
        first: dict[str, Pending] = {}
        for p in pending:
            batch_id = p.batch_id
            if batch_id not in first:
                first[batch_id] = p
                actors[batch_id] = []
            actors[batch_id].append(str(p.actor))
        ops: list[list[str]] = []
        for batch_id, p in first.items():
            batch = self.keys.batch(batch_id)
            members = list(dict.fromkeys(actors[batch_id]))
            for start in range(0, len(members), SADD_CHUNK):  # Lua's unpack has a stack limit
                ops.append(
                    ["SADD", self.keys.actors(batch_id), *members[start : start + SADD_CHUNK]]
                )
            ops += [
                ["HSETNX", batch, "created_ms", str(now)],
                ["HSETNX", batch, "source_ms", str(p.source_ms)],
                ["ZADD", self.keys.due, "NX", due, batch_id],
            ]
        return ops

    def apply(
        self, topic: str, partition: int, first: int, last: int, ops: list[list[str]]
    ) -> int | None:
        """Apply a partition's batch (offsets first..last) once: None when applied, else the
        offset already recorded (>= first): the batch was applied, or part of it was, by this
        worker before a crash or by the partition's previous owner; nothing was written."""
        done, _, _, recorded = self._apply(
            keys=[self.keys.offsets, self.keys.outbox],
            args=[f"{topic}:{partition}", str(first), str(last), orjson.dumps(ops)],
        )
        return None if done else int(recorded)

    def apply_shared(
        self, topic: str, partition: int, groups: list[tuple[int, list[list[str]]]]
    ) -> int:
        """Apply each event of a state partition's batch unless some worker already did (by
        offset); returns the offset recorded before (-1: none), so the caller knows which
        of the events were its own to count."""
        recorded = self._apply_shared(
            keys=[self.keys.offsets, self.keys.outbox],
            args=[f"{topic}:{partition}", orjson.dumps(groups)],
        )
        return int(recorded)

    def hold_lease(self, worker_id: str, lease_ms: int) -> bool:
        """Take or renew the delivery lease (flush and send); False while another holds it."""
        return bool(self._lease(keys=[self.keys.deliver_lease], args=[worker_id, lease_ms]))

    # --- batches and digests ---------------------------------------------------------------

    def flush_due(self, state: RoutingState, limit: int = 2_000) -> Counter[str]:
        """Due batches -> one outbox entry each ('ada and 9 others liked your post').

        Three commands per round however many batches are due: the due ids, one script reading
        every batch, one script flushing them all (each guarded on its own: a batch an actor
        joined since the read stays for the next round). redis-py's CPU is per command (about
        5 us each in a pipeline), so a command per batch cost more than routing the event."""
        counts: Counter[str] = Counter()
        now = _ms()
        due = [
            b.decode()
            for b in self.redis.zrangebyscore(self.keys.due, "-inf", now, start=0, num=limit)
        ]
        if not due:
            return counts
        batch_keys = [
            key
            for batch_id in due
            for key in (self.keys.batch(batch_id), self.keys.actors(batch_id))
        ]
        replies = self._read_batches(keys=batch_keys, args=[])
        args: list[Any] = []
        planned = []
        for i, batch_id in enumerate(due):
            flat, members = replies[2 * i], replies[2 * i + 1]
            meta = dict(zip(flat[::2], flat[1::2], strict=True))
            recipient, kind_name, post = batch_id.split(":")
            kind = Kind(kind_name)
            actors = sorted(int(a) for a in members)
            hidden = state.graph.hidden_authors(int(recipient))
            visible = [a for a in actors if a not in hidden]  # a block since still counts
            withheld = int(post) > 0 and state.graph.is_withheld(int(post))
            if withheld:  # deleted or hidden by moderation since it was batched
                visible = []
            payload = ""
            if visible:
                created = int(meta.get(b"created_ms", now))
                payload = Notification(
                    key=f"batch:{batch_id}:{created}",
                    recipient=int(recipient),
                    kind=str(kind),
                    text=summary(kind, [state.name(a) for a in visible[:3]], len(visible)),
                    actors=visible[:3],
                    actor_count=len(visible),
                    post_id=int(post) or None,
                    source_ms=int(meta.get(b"source_ms", 0)),
                ).to_json()
            args += [batch_id, str(len(actors)), *self.enqueue_args(int(recipient), payload, now)]
            planned.append((len(actors), len(visible), withheld))
        results = self._flush_batches(
            keys=[self.keys.due, self.keys.outbox, *batch_keys], args=args
        )
        for result, (n_actors, n_visible, withheld) in zip(results, planned, strict=True):
            if result == -1:
                continue  # an actor joined meanwhile: next round
            counts["batches"] += 1
            counts["batched"] += max(n_visible - 1, 0)
            if withheld:
                counts["suppressed_withheld_post"] += n_actors
            else:
                counts["suppressed_blocked_or_muted"] += n_actors - n_visible
            counts["digested"] += int(result == 0)
        return counts

    def flush_digests(self, state: RoutingState, limit: int = 500) -> int:
        now = _ms()
        flushed = 0
        for raw_key in self.redis.zrangebyscore(
            self.keys.digest_due, "-inf", now, start=0, num=limit
        ):
            key = raw_key.decode()
            items = [Notification.from_json(r) for r in self.redis.lrange(key, 0, -1)]
            if not items:
                self.redis.zrem(self.keys.digest_due, key)
                continue
            recipient = items[0].recipient
            by_kind = Counter(n.kind for n in items)
            text = "While you were away: " + ", ".join(
                f"{count} {kind.replace('_', ' ')}{'s' if count > 1 else ''}"
                for kind, count in by_kind.most_common()
            )
            note = Notification(
                key=f"digest:{recipient}:{items[0].key}",
                recipient=recipient,
                kind="digest",
                text=text,
                actor_count=sum(n.actor_count for n in items),
                source_ms=min(n.source_ms for n in items),
                digest=True,
            )
            payload = note.to_json() if state.wants(recipient, "digests") else ""
            if payload:
                result = self._flush_digest(
                    keys=[self.keys.digest_due, key, self.keys.outbox],
                    args=[key, str(len(items)), payload],
                )
            else:
                pipe = self.redis.pipeline(transaction=True)
                pipe.delete(key)
                pipe.zrem(self.keys.digest_due, key)
                pipe.execute()
                result = 1
            flushed += int(result == 1)
        return flushed

    # --- sending ---------------------------------------------------------------------------

    def send(self, provider: PushProvider, limit: int = 2_000) -> Counter[str]:
        """Send the outbox head, oldest first; returns sent counts by kind.

        One round trip reads the head, one (MGET) which keys are already sent, the provider gets
        the others in one call, one script marks them all sent and trims them off the outbox
        (atomically: a crash leaves all of them marked and trimmed, or none)."""
        sent: Counter[str] = Counter()
        raws = self.redis.lrange(self.keys.outbox, 0, limit - 1)
        if not raws:
            return sent
        notes = [Notification.from_json(raw) for raw in raws]
        # one MGET of every idempotency key, not one EXISTS per notification: the reply is
        # per key (None: not sent), and redis-py's cost is per command, not per key
        already = self.redis.mget([self.keys.sent(note.key) for note in notes])
        todo = [note for note, done in zip(notes, already, strict=True) if done is None]
        provider.send_many(todo)
        sent.update(note.kind for note in todo)
        self._mark_sent(  # atomic, as a MULTI of one SET per key was, in one command
            keys=[self.keys.outbox, *(self.keys.sent(note.key) for note in notes)],
            args=[self.timing.sent_ttl_seconds, len(notes)],
        )
        return sent

    def sizes(self) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(self.keys.outbox)
        pipe.zcard(self.keys.due)
        pipe.zcard(self.keys.digest_due)
        pipe.llen(self.keys.dead_letters)
        outbox, due, digests, dead = pipe.execute()
        return {"outbox": outbox, "batches": due, "digests": digests, "dead_letters": dead}

    def dead_letters(self) -> list[dict[str, Any]]:
        return [json.loads(r) for r in self.redis.lrange(self.keys.dead_letters, 0, -1)]
