"""The worker's Redis side: atomic apply per partition batch, batches, digests, the outbox.

Exactly once in effect:
- `apply` runs one Lua script per (partition, poll): it records the partition's last offset and
  makes every state change, batch entry, outbox entry and dead letter of those events, or none
  of them; a re-delivered offset at or below the recorded one is skipped whole.
- batches and digests are turned into outbox entries by guarded scripts (the batch is removed in
  the same step), so a crash between never sends or loses one;
- `send` claims the outbox head (marks the idempotency keys, trims the entries, keeps them
  in flight) in one script fenced by the delivery lease's token, then calls the provider,
  then confirms. Nothing is ever sent twice, by a restarted worker or by a lease holder paused
  past its lease alongside its successor. The price: a crash between a claim and the
  provider's return loses that claim's entries to the `unconfirmed` list (they may or may
  not have reached the provider); they are counted, never re-sent automatically.
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
# KEYS: lease key, token counter; ARGV: worker id, lease (ms). Returns this holder's fencing
# token (> 0), 0 while another worker holds the lease. Every acquisition takes a new token
# (INCR), so a holder whose lease lapsed (paused, GC) holds a stale one: `CLAIM` refuses it.
LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]))
end
if holder == false then
  local token = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return token
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

CLAIM = """
-- claim the outbox head before calling the provider (at most once: a claimed entry is never
-- claimed again). KEYS: lease, token counter, outbox, inflight, inflight token, unconfirmed,
-- then the idempotency keys of the n head entries the caller read; ARGV: worker id, token, n,
-- ttl (s). Refused ({-1}) unless the caller holds the lease with the current token: only the
-- current holder trims the outbox, so the head it read is still the head. A claim left in
-- flight by an earlier holder (crashed or paused between its claim and its confirm) moves to
-- the unconfirmed list first: it may or may not have reached the provider, and is not re-sent.
-- Returns {entries moved to unconfirmed, then the 1-based indexes of the entries claimed}.
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then
  return {-1}
end
local moved = redis.call('LLEN', KEYS[4])
if moved > 0 then
  for _, entry in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do
    redis.call('RPUSH', KEYS[6], entry)
  end
  redis.call('DEL', KEYS[4])
end
local out = {moved}
local head = redis.call('LRANGE', KEYS[3], 0, tonumber(ARGV[3]) - 1)
for i = 1, #head do
  if redis.call('SET', KEYS[6 + i], ARGV[2], 'NX', 'EX', ARGV[4]) then
    redis.call('RPUSH', KEYS[4], head[i])
    out[#out + 1] = i
  end
end
redis.call('LTRIM', KEYS[3], #head, -1)
redis.call('SET', KEYS[5], ARGV[2])
return out
"""

CONFIRM = """
-- the provider returned: KEYS: inflight, inflight token; ARGV: token
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""

RELEASE = """
-- the provider raised: put the claim back at the outbox head for a retry (same keys), only if
-- this holder still holds the lease with its token and the claim is still its own.
-- KEYS: lease, token counter, inflight, inflight token, outbox, then the claimed idempotency
-- keys; ARGV: worker id, token
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2]
   or redis.call('GET', KEYS[4]) ~= ARGV[2] then
  return 0
end
local entries = redis.call('LRANGE', KEYS[3], 0, -1)
for i = #entries, 1, -1 do redis.call('LPUSH', KEYS[5], entries[i]) end
for i = 6, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[3])
return #entries
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
        self._claim = redis.register_script(CLAIM)
        self._confirm = redis.register_script(CONFIRM)
        self._release = redis.register_script(RELEASE)
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

    def hold_lease(self, worker_id: str, lease_ms: int) -> int:
        """Take or renew the delivery lease (flush and send): this holder's fencing token, 0
        while another worker holds it."""
        return int(
            self._lease(
                keys=[self.keys.deliver_lease, self.keys.deliver_token], args=[worker_id, lease_ms]
            )
        )

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

    def send(
        self, provider: PushProvider, holder: str, token: int, limit: int = 2_000
    ) -> tuple[Counter[str], int]:
        """Claim the outbox head, call the provider for it, confirm; returns the sent counts by
        kind and how many entries of an earlier holder's unconfirmed claim were set aside.

        Claim -> provider -> confirm, so no notification is ever sent twice, even by a holder
        paused past its lease: the claim (fenced by `token`) marks the idempotency keys and
        trims the entries off the outbox in one script before any call, and a stale token
        claims nothing. A crash (or a pause outlived by the next holder's claim) between
        claim and confirm leaves the claim in flight; the next claim moves it to the
        `unconfirmed` list: at most once, those may have reached the provider or not, and are
        not re-sent automatically. A provider that raises gets its claim back at the outbox
        head (same keys) for the next round, unless the lease moved meanwhile."""
        sent: Counter[str] = Counter()
        raws = self.redis.lrange(self.keys.outbox, 0, limit - 1)
        if not raws:
            return sent, 0
        notes = [Notification.from_json(raw) for raw in raws]
        k = self.keys
        reply = self._claim(
            keys=[
                k.deliver_lease,
                k.deliver_token,
                k.outbox,
                k.inflight,
                k.inflight_token,
                k.unconfirmed,
                *(k.sent(note.key) for note in notes),
            ],
            args=[holder, token, len(notes), self.timing.sent_ttl_seconds],
        )
        moved = int(reply[0])
        if moved < 0:
            return sent, 0  # the lease moved since this poll renewed it: the holder sends
        todo = [notes[int(i) - 1] for i in reply[1:]]
        try:
            provider.send_many(todo)
        except Exception:
            self._release(
                keys=[
                    k.deliver_lease,
                    k.deliver_token,
                    k.inflight,
                    k.inflight_token,
                    k.outbox,
                    *(k.sent(note.key) for note in todo),
                ],
                args=[holder, token],
            )
            raise
        self._confirm(keys=[k.inflight, k.inflight_token], args=[token])
        sent.update(note.kind for note in todo)
        return sent, moved

    def unconfirmed(self) -> list[Notification]:
        return [Notification.from_json(r) for r in self.redis.lrange(self.keys.unconfirmed, 0, -1)]

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
