"""Idempotency claims in Redis: orders, refunds and lead confirmations.

An id is first *claimed* (pending, with a short expiry), the event is produced,
and only after the broker acknowledged it is the claim marked *done*. If
producing fails the claim is kept *unsure*: the broker may still have stored the
record (a request it took but did not answer in time), so a retry with the same
facts is taken again (the same event, which attribution dedupes) and one with other
facts is refused, never accepted beside a copy that may be on the topic. A caller
that finds a live pending claim waits for it to settle instead of answering
"duplicate" for an order that might still fail. If the process dies between
the acknowledgement and marking done, the pending claim expires and a retry
produces the same event (same deterministic event id) once more; attribution
dedupes by campaign + order id, so this costs nothing. A done mark (``mark_done``), the
first as any retry of one Redis refused (afflux.orders.marks), writes a claim Redis lost
anew, and a renewal's number key with it.

Each order is a hash ``<prefix>:o:<campaign>:<order_id>`` holding ``state``
(``done`` or the pending claim's expiry in ms), ``pkey`` (its partition key),
``amount``, ``kind``, ``terms`` (what it pays and to whom, so the id sent again with
other terms is a conflict, not a duplicate), ``at`` and ``reported_at`` (its event time
and, when it was placed elsewhere, the merchant's time: a refund dated before either is
refused; a claim written before they were kept has neither, and its refunds are not
compared), ``confirmed`` (a lead's confirmation
claim), ``survey`` and ``survey_answer`` (a later survey answer's claim and the answer)
and one field ``r:<refund_id>`` = ``<amount>:<state>`` per refund, so cumulative refunds are
checked atomically; a refund of an order not accepted yet writes its field too (a hash
with no ``state`` is no order), so it counts once the order arrives. A refund priced by
the items it names also has ``ri:<refund_id>``, what it took of each sku (JSON), so what
the live refunds take of one sku is checked against the order's amount of it. Each refund id also
has its own key, for idempotency across the campaign's orders. A renewal is an order of
kind ``renewal`` whose ``pkey`` is its first order, with its ``number`` and ``currency``
beside its ``amount`` (so its renewal order id sent again with other content, or as
an order's id, is a conflict, not a duplicate), and its number of that first order has a key
``<prefix>:rn:<campaign>:<number>:<first order>`` holding its renewal order id. The
scripts touch several keys (the batch scripts name them in a JSON argument), so the
store needs one Redis, not a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from afflux.shared.core.products import ItemRefundPart

# conflict: the order id was accepted with other terms (``NewOrder.terms``); renewal: it
# was accepted as a renewal's renewal order id; unsure_conflict: it was sent with other
# terms in a request the broker did not acknowledge (it may be on the topic)
OrderClaim = Literal["reserved", "duplicate", "pending", "conflict", "renewal", "unsure_conflict"]
_CLAIMS: dict[str, OrderClaim] = {
    "r": "reserved",
    "d": "duplicate",
    "p": "pending",
    "c": "conflict",
    "n": "renewal",
    "u": "unsure_conflict",
}

# Refunds one order takes, counting those accepted before it arrived: each reservation
# reads the order's refunds in Redis's one thread, so without a bound one order's
# refunds (a leaked secret, a runaway integration) slowed every merchant's claims.
MAX_REFUNDS_PER_ORDER = 100

# The batch scripts take their keys inside one JSON argument: packing hundreds of
# separate arguments cost more client CPU than the rest of a request's handling.
# A done claim of kind ``renewal`` is a renewal order id: it keeps no order terms, so
# without its own answer ('n') an order reusing the id found nothing to compare and was a
# "duplicate", though only the renewal was produced. A renewal's claim in flight is 'p'
# like any other, so the order waits for it and is then answered by what it became.
_RESERVE_ORDERS = """
local batch = cjson.decode(ARGV[1])
local now, until_ms, ttl = batch[1], tostring(batch[2]), batch[3]
local out = {}
for i, item in ipairs(batch[4]) do
  local key = item[1]
  local state = redis.call('HGET', key, 'state')
  if state == 'done' then
    local kept = redis.call('HMGET', key, 'terms', 'kind')
    if kept[2] == 'renewal' then
      out[i] = 'n'
    elseif kept[1] and item[5] ~= '' and kept[1] ~= item[5] then
      out[i] = 'c'
    else
      out[i] = 'd'
    end
  elseif state and tonumber(state) > now then
    out[i] = 'p'
  elseif state and redis.call('HEXISTS', key, 'unsure') == 1
      and redis.call('HGET', key, 'kind') == 'renewal' then
    out[i] = 'n'
  elseif state and redis.call('HEXISTS', key, 'unsure') == 1 and item[5] ~= ''
      and redis.call('HGET', key, 'terms') ~= item[5] then
    out[i] = 'u'
  else
    redis.call('HSET', key, 'state', until_ms, 'pkey', item[2], 'amount', item[3], 'kind', item[4])
    if item[5] ~= '' then redis.call('HSET', key, 'terms', item[5]) end
    redis.call('HDEL', key, 'at', 'reported_at')
    if item[6] ~= '' then redis.call('HSET', key, 'at', item[6]) end
    if item[7] ~= '' then redis.call('HSET', key, 'reported_at', item[7]) end
    redis.call('EXPIRE', key, ttl)
    out[i] = 'r'
  end
end
return table.concat(out)
"""

# Claims whose produce failed unanswered: the broker may have stored the record. Kept,
# expired (a retry is not kept waiting) and marked unsure, so only the same facts are
# taken again.
_UNSURE_ORDERS = """
for _, key in ipairs(cjson.decode(ARGV[1])) do
  local state = redis.call('HGET', key, 'state')
  if state and state ~= 'done' then
    redis.call('HSET', key, 'state', '0', 'unsure', '1')
  end
end
return 1
"""

# Claims released when nothing was sent (the broker gone before the produce began), so a
# retry with any facts is taken.
_RELEASE_ORDERS = """
for _, key in ipairs(cjson.decode(ARGV[1])) do
  local state = redis.call('HGET', key, 'state')
  if state and state ~= 'done' then
    redis.call('HDEL', key, 'state', 'pkey', 'amount', 'kind', 'terms', 'number', 'currency',
      'at', 'reported_at', 'unsure')
  end
end
return 1
"""

# The done mark of acknowledged orders, the first one and any retry of it alike (a first
# mark that only set ``state`` wrote nothing for a claim or a renewal's number key Redis
# had lost since the reservation, so the number was taken again). A pending claim is
# marked done; a claim Redis lost (restarted on a file that missed its last writes, or
# a reservation released by another request) is written again whole, since the order is
# on the topic either way. A renewal's number key (item[8], holding its renewal order
# id, item[9]) is written again too if it is gone: with the claim alone back, the same
# number was accepted again under another renewal order id and paid twice. One another
# renewal took while it was gone is left to it (NX): that renewal is on the topic as well.
_MARK_ORDERS_DONE = """
local batch = cjson.decode(ARGV[1])
local ttl = batch[1]
for _, item in ipairs(batch[2]) do
  local key = item[1]
  local state = redis.call('HGET', key, 'state')
  if not state then
    redis.call('HSET', key, 'state', 'done', 'pkey', item[2], 'amount', item[3], 'kind', item[4])
    if item[5] ~= '' then redis.call('HSET', key, 'terms', item[5]) end
    if item[6] ~= '' then redis.call('HSET', key, 'number', item[6], 'currency', item[7]) end
    if item[10] ~= '' then redis.call('HSET', key, 'at', item[10]) end
    if item[11] ~= '' then redis.call('HSET', key, 'reported_at', item[11]) end
  elseif state ~= 'done' then
    redis.call('HSET', key, 'state', 'done')
  end
  redis.call('HDEL', key, 'unsure')
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ttl) end
  if item[8] ~= '' then redis.call('SET', item[8], item[9], 'NX', 'EX', ttl) end
end
return 1
"""

_RESERVE_REFUND = """
local rkey, okey = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local until_ms = tostring(now + tonumber(ARGV[2]))
local ttl = tonumber(ARGV[3])
local rid, amount = ARGV[4], tonumber(ARGV[5])
local most = tonumber(ARGV[11])
local claim = redis.call('GET', rkey)
if claim and string.sub(claim, 1, 5) == 'done#' then
  -- 'done#<amount>:<order>': the same order with another amount is no duplicate either
  local sep = string.find(claim, ':', 6, true)
  if string.sub(claim, sep + 1) ~= ARGV[6] then return {'conflict'} end
  local kept = string.sub(claim, 6, sep - 1)
  if kept ~= ARGV[5] then return {'amount_conflict', kept} end
  return {'duplicate'}
end
if claim and string.sub(claim, 1, 4) == 'done' then
  -- 'done' alone: written before the order was kept beside it; 'done:<order>' before
  -- its amount was
  if claim == 'done' or claim == 'done:' .. ARGV[6] then return {'duplicate'} end
  return {'conflict'}
end
if claim and string.sub(claim, 1, 7) == 'unsure#' then
  -- 'unsure#<amount>:<order>': sent in a request the broker did not acknowledge; it may
  -- be on the topic, so only the same refund is taken again
  local sep = string.find(claim, ':', 8, true)
  local kept = string.sub(claim, 8, sep - 1)
  if string.sub(claim, sep + 1) ~= ARGV[6] or kept ~= ARGV[5] then
    return {'unsure_conflict', kept, string.sub(claim, sep + 1)}
  end
  claim = nil
end
if claim and tonumber(claim) > now then return {'pending'} end
local state = redis.call('HGET', okey, 'state')
if state == 'done' or (state and tonumber(state) > now) then
  -- dated before its order by the merchant's times (the order's as reported when it was
  -- placed elsewhere): refused. After it by them, but before it on the event-time axis
  -- (the order placed at its receive time, the refund reported late at its own): moved
  -- to the order's event time. A claim kept without its times: unknown.
  local times = redis.call('HMGET', okey, 'at', 'reported_at')
  local moved = false
  if times[1] then
    local sent = times[2] or times[1]
    -- an order the merchant sent no time for (UNDATED) has none to be before
    if sent ~= '-' and tonumber(ARGV[8]) < tonumber(sent) then return {'before_order', sent} end
    if tonumber(ARGV[7]) < tonumber(times[1]) then moved = times[1] end
  end
  local total = tonumber(redis.call('HGET', okey, 'amount'))
  local fields = redis.call('HGETALL', okey)
  local refunded, count = 0, 0
  local live = {}
  for j = 1, #fields, 2 do
    local name = fields[j]
    if string.sub(name, 1, 2) == 'r:' and name ~= 'r:' .. rid then
      local value = fields[j + 1]
      local sep = string.find(value, ':', 1, true)
      local st = string.sub(value, sep + 1)
      -- an unsure refund (its produce unanswered) may be on the topic: it counts
      if st == 'done' or st == 'unsure' or tonumber(st) > now then
        refunded = refunded + tonumber(string.sub(value, 1, sep - 1))
        live[string.sub(name, 3)] = true
        count = count + 1
      end
    end
  end
  if count >= most then return {'too_many', tostring(most)} end
  if refunded + amount > total then
    return {'exceeds', string.format('%.0f', total - refunded)}
  end
  -- per item: what the live refunds took of each sku (amounts kept as text, since Lua
  -- prints numbers with 14 digits)
  local parts = cjson.decode(ARGV[9])
  if #parts > 0 then
    local taken = {}
    for j = 1, #fields, 2 do
      local name = fields[j]
      if string.sub(name, 1, 3) == 'ri:' and live[string.sub(name, 4)] then
        for _, row in ipairs(cjson.decode(fields[j + 1])) do
          taken[row[1]] = (taken[row[1]] or 0) + tonumber(row[2])
        end
      end
    end
    for _, row in ipairs(parts) do
      local before = taken[row[1]] or 0
      if before + tonumber(row[2]) > tonumber(row[3]) then
        return {'item_exceeds', row[1], string.format('%.0f', before), row[3]}
      end
    end
    redis.call('HSET', okey, 'ri:' .. rid, ARGV[10])
  end
  redis.call('HSET', okey, 'r:' .. rid, ARGV[5] .. ':' .. until_ms)
  redis.call('SET', rkey, until_ms, 'EX', ttl)
  return {'reserved', 'known', moved}
end
-- An order not (yet) accepted here: its refund is kept beside the claim the order will
-- have, so refunds accepted before it count against its amount once it arrives.
local kept = 0
for _, name in ipairs(redis.call('HKEYS', okey)) do
  if string.sub(name, 1, 2) == 'r:' then kept = kept + 1 end
end
if kept >= most then return {'too_many', tostring(most)} end
redis.call('HSET', okey, 'r:' .. rid, ARGV[5] .. ':' .. until_ms)
if redis.call('TTL', okey) < 0 then redis.call('EXPIRE', okey, ttl) end
redis.call('SET', rkey, until_ms, 'EX', ttl)
return {'reserved', 'unknown'}
"""

_SETTLE_REFUND = """
local rkey, okey, rid, ttl = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
local field = 'r:' .. rid
if ARGV[3] == 'done' or ARGV[3] == 'unsure' then
  -- 'unsure': the broker may have stored it, so the same refund alone is taken again,
  -- and it still counts against its order's amount (and its items')
  redis.call('SET', rkey, ARGV[3] .. '#' .. ARGV[5] .. ':' .. ARGV[4], 'EX', ttl)
  local value = redis.call('HGET', okey, field)
  if value then
    local sep = string.find(value, ':', 1, true)
    redis.call('HSET', okey, field, string.sub(value, 1, sep) .. ARGV[3])
  end
else
  redis.call('DEL', rkey)
  redis.call('HDEL', okey, field, 'ri:' .. rid)
end
return 1
"""

_RESERVE_CONFIRM = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local state = redis.call('HGET', key, 'state')
if not state then return {'unknown'} end
if state ~= 'done' then
  if tonumber(state) > now then return {'pending'} end
  return {'unknown'}
end
if redis.call('HGET', key, 'kind') ~= 'lead' then return {'not_lead'} end
local confirmed = redis.call('HGET', key, 'confirmed')
if confirmed == 'done' then return {'duplicate'} end
if confirmed and tonumber(confirmed) > now then return {'pending'} end
redis.call('HSET', key, 'confirmed', tostring(now + tonumber(ARGV[2])))
return {'reserved', redis.call('HGET', key, 'pkey')}
"""

_SETTLE_CONFIRM = """
if ARGV[1] == 'done' then
  redis.call('HSET', KEYS[1], 'confirmed', 'done')
else
  redis.call('HDEL', KEYS[1], 'confirmed')
end
return 1
"""


# A renewal's claim is an order claim too (kind ``renewal``, ``pkey`` its first order):
# an answer for its renewal order id is refused ('renewal', with that first order), since
# it was produced keyed by the first order's id, where no order of that id is, and answered
# 202 for a survey that could never be anyone's.
_RESERVE_SURVEY = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local state = redis.call('HGET', key, 'state')
if not state then return {'unknown'} end
if state ~= 'done' then
  if tonumber(state) > now then return {'pending'} end
  return {'unknown'}
end
if redis.call('HGET', key, 'kind') == 'renewal' then
  return {'renewal', redis.call('HGET', key, 'pkey')}
end
local survey = redis.call('HGET', key, 'survey')
if survey == 'done' then
  if redis.call('HGET', key, 'survey_answer') == ARGV[3] then return {'duplicate'} end
  return {'conflict'}
end
if survey and tonumber(survey) > now then return {'pending'} end
redis.call('HSET', key, 'survey', tostring(now + tonumber(ARGV[2])), 'survey_answer', ARGV[3])
return {'reserved', redis.call('HGET', key, 'pkey')}
"""

_SETTLE_SURVEY = """
if ARGV[1] == 'done' then
  redis.call('HSET', KEYS[1], 'survey', 'done')
else
  redis.call('HDEL', KEYS[1], 'survey', 'survey_answer')
end
return 1
"""

# A renewal: its renewal order id claimed as an order (kind ``renewal``, ``pkey`` its
# first order), and its number of that first order claimed for that id, so a second
# renewal with the same number under another id, or a renewal reusing the id of another
# order of the campaign, is refused instead of paid twice or dropped as a "duplicate".
# A renewal naming another renewal as its first order is refused too: its limit
# (``max_renewals``, ``max_months``) would start again from that renewal.
# The renewal order id sent again is a duplicate only with the number, amount and
# currency it was accepted with: only the first body is produced, so a "duplicate" for
# another number or amount would tell the merchant a renewal or correction landed that
# was never paid. A field a claim was written without (before it was kept) is not
# compared. A claim in flight answers 'pending', so the caller waits for it to settle
# and is then held to what it recorded (if it is released instead, the caller takes it).
_RESERVE_RENEWAL = """
local okey, nkey, fkey = KEYS[1], KEYS[2], KEYS[3]
local now, until_ms, ttl = tonumber(ARGV[1]), tostring(ARGV[2]), tonumber(ARGV[3])
local first, amount, renewal, number, currency = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if redis.call('HGET', fkey, 'kind') == 'renewal' then return {'first_is_renewal'} end
local number_of = redis.call('GET', nkey)
if number_of and number_of ~= renewal then return {'number_taken', number_of} end
local kept = redis.call('HMGET', okey, 'state', 'kind', 'pkey', 'number', 'amount', 'currency')
local state = kept[1]
if state and state ~= 'done' and redis.call('HEXISTS', okey, 'unsure') == 1 then
  -- sent before in a request the broker did not acknowledge (it may be on the topic):
  -- only the same renewal is taken again
  if kept[2] ~= 'renewal' then return {'order_taken'} end
  if kept[3] ~= first then return {'order_taken', kept[3]} end
  if kept[4] and kept[4] ~= number then return {'unsure', 'renewal_number', kept[4]} end
  if kept[5] and tonumber(kept[5]) ~= tonumber(amount) then
    return {'unsure', 'amount_minor', kept[5]}
  end
  if kept[6] and kept[6] ~= currency then return {'unsure', 'currency', kept[6]} end
end
local live = state == 'done' or (state and tonumber(state) > now)
if live then
  if kept[2] ~= 'renewal' then return {'order_taken'} end
  if kept[3] ~= first then return {'order_taken', kept[3]} end
  if state ~= 'done' then return {'pending'} end
  if kept[4] and kept[4] ~= number then return {'conflict', 'renewal_number', kept[4]} end
  -- as numbers: a claim written anew by a retried done mark got its amount through a
  -- Lua number (exact: amounts are at most 10^15)
  if kept[5] and tonumber(kept[5]) ~= tonumber(amount) then
    return {'conflict', 'amount_minor', kept[5]}
  end
  if kept[6] and kept[6] ~= currency then return {'conflict', 'currency', kept[6]} end
  return {'duplicate'}
end
redis.call('HSET', okey, 'state', until_ms, 'pkey', first, 'amount', amount, 'kind', 'renewal',
  'number', number, 'currency', currency)
redis.call('HDEL', okey, 'at', 'reported_at')
if ARGV[9] ~= '' then redis.call('HSET', okey, 'at', ARGV[9]) end
if ARGV[10] ~= '' then redis.call('HSET', okey, 'reported_at', ARGV[10]) end
redis.call('EXPIRE', okey, ttl)
redis.call('SET', nkey, renewal, 'EX', ttl)
return {'reserved'}
"""

_RELEASE_RENEWAL_NUMBER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


@dataclass(frozen=True, slots=True)
class RenewalClaim:
    """``number_taken``: the first order's renewal of this number has another renewal order
    id (``taken_by``); ``order_taken``: the renewal order id is another order's
    (``taken_by``: the first order it renews, when it is a renewal of another one);
    ``first_is_renewal``: the first order named is itself a renewal; ``conflict``: the
    renewal order id was accepted with another ``field`` (``renewal_number``,
    ``amount_minor`` or ``currency``), whose accepted value is ``recorded``; ``unsure``:
    it was sent with another ``field`` in a request the broker did not acknowledge."""

    status: Literal[
        "reserved",
        "duplicate",
        "pending",
        "number_taken",
        "order_taken",
        "first_is_renewal",
        "conflict",
        "unsure",
    ]
    taken_by: str | None = None
    field: str | None = None
    recorded: int | str | None = None


@dataclass(frozen=True, slots=True)
class NewOrder:
    """``terms``: what the order pays and to whom (``rules.order_terms``), kept with the
    claim so the same id sent with other terms is a conflict; empty: not compared.
    ``renewal_number`` and ``currency``: a renewal's (None for any other order), kept with
    its claim for the same reason. ``occurred_at`` and ``reported_occurred_at``: its event
    time and the merchant's time when it was placed elsewhere, so a refund dated before the
    order is refused (None: not kept, and refunds are not compared); ``undated``: the
    merchant gave the order no time, so no refund is refused as before it."""

    campaign_id: str
    order_id: str
    partition_key: str
    amount_minor: int
    kind: str
    terms: str = ""
    renewal_number: int | None = None
    currency: str | None = None
    occurred_at: int | None = None
    reported_occurred_at: int | None = None
    undated: bool = False


@dataclass(frozen=True, slots=True)
class RefundClaim:
    # conflict: the refund id was taken by a refund of another order of the campaign;
    # amount_conflict: by a refund of this order of another amount (``remaining_minor``
    # is then that amount); before_order: the refund is dated before its order by the
    # merchant's times (``order_at``: the order's time it is before); reserved with
    # ``order_at``: after it by them, before it by the event times produced, so to be
    # produced at the order's event time ``order_at``
    # too_many: the order has MAX_REFUNDS_PER_ORDER refunds already (``remaining_minor``
    # is that bound); item_exceeds: earlier refunds took ``item_taken_minor`` of
    # ``item_sku`` already, and this one's part of it would take more than the order holds
    # (``item_whole_minor``); unsure_conflict: the id was sent with ``remaining_minor`` of
    # order ``unsure_order`` in a request the broker did not acknowledge (it may be stored)
    status: Literal[
        "reserved",
        "duplicate",
        "pending",
        "exceeds",
        "item_exceeds",
        "too_many",
        "conflict",
        "amount_conflict",
        "before_order",
        "unsure_conflict",
    ]
    remaining_minor: int | None = None
    order_at: int | None = None
    item_sku: str | None = None
    item_taken_minor: int | None = None
    item_whole_minor: int | None = None
    unsure_order: str | None = None


@dataclass(frozen=True, slots=True)
class SurveyClaim:
    """``conflict``: the order already has another answer; ``renewal``: the id is a
    renewal's renewal order id, no order (``partition_key``: the first order it renews)."""

    status: Literal["reserved", "duplicate", "pending", "unknown", "conflict", "renewal"]
    partition_key: str | None = None


@dataclass(frozen=True, slots=True)
class ConfirmClaim:
    status: Literal["reserved", "duplicate", "pending", "unknown", "not_lead"]
    partition_key: str | None = None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _time(ms: int | None) -> str:
    return "" if ms is None else str(ms)


# An order's claim keeps the merchant's time for it, to refuse a refund dated before it;
# an order the merchant sent no time for keeps this in its place (the refund script
# compares nothing with it).
UNDATED = "-"


def _merchant_time(order: NewOrder) -> str:
    return UNDATED if order.undated else _time(order.reported_occurred_at)


def _renewal_number(renewal: NewOrder) -> int:
    if renewal.renewal_number is None:
        raise ValueError(f"{renewal.order_id} is no renewal: it has no renewal_number")
    return renewal.renewal_number


class ClaimStore:
    """The Redis side of idempotency; every operation is one atomic script call."""

    def __init__(self, redis: Redis[bytes], prefix: str, *, pending_ms: int, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.pending_ms = pending_ms
        self.ttl_s = ttl_s
        self._reserve_orders = redis.register_script(_RESERVE_ORDERS)
        self._release_orders = redis.register_script(_RELEASE_ORDERS)
        self._unsure_orders = redis.register_script(_UNSURE_ORDERS)
        self._mark_orders_done = redis.register_script(_MARK_ORDERS_DONE)
        self._reserve_refund = redis.register_script(_RESERVE_REFUND)
        self._settle_refund = redis.register_script(_SETTLE_REFUND)
        self._reserve_confirm = redis.register_script(_RESERVE_CONFIRM)
        self._settle_confirm = redis.register_script(_SETTLE_CONFIRM)
        self._reserve_survey = redis.register_script(_RESERVE_SURVEY)
        self._settle_survey = redis.register_script(_SETTLE_SURVEY)
        self._reserve_renewal = redis.register_script(_RESERVE_RENEWAL)
        self._release_renewal_number = redis.register_script(_RELEASE_RENEWAL_NUMBER)

    def order_key(self, campaign_id: str, order_id: str) -> str:
        return f"{self.prefix}:o:{campaign_id}:{order_id}"

    def refund_key(self, campaign_id: str, refund_id: str) -> str:
        return f"{self.prefix}:r:{campaign_id}:{refund_id}"

    def renewal_number_key(self, campaign_id: str, first_order_id: str, number: int) -> str:
        return f"{self.prefix}:rn:{campaign_id}:{number}:{first_order_id}"

    async def reserve_renewal(self, renewal: NewOrder, now_ms: int) -> RenewalClaim:
        """Claim a renewal (``renewal.order_id`` its renewal order id, ``partition_key`` its
        first order) and its number of that first order, atomically."""
        number = _renewal_number(renewal)
        keys = [
            self.order_key(renewal.campaign_id, renewal.order_id),
            self.renewal_number_key(renewal.campaign_id, renewal.partition_key, number),
            self.order_key(renewal.campaign_id, renewal.partition_key),
        ]
        args: list[str | int] = [
            now_ms,
            now_ms + self.pending_ms,
            self.ttl_s,
            renewal.partition_key,
            renewal.amount_minor,
            renewal.order_id,
            number,
            renewal.currency or "",
            _time(renewal.occurred_at),
            _time(renewal.reported_occurred_at),
        ]
        result = [_text(r) for r in await self._reserve_renewal(keys=keys, args=args)]
        if result[0] in ("conflict", "unsure"):
            field, kept = result[1], result[2]
            return RenewalClaim(
                result[0],  # type: ignore[arg-type]
                field=field,
                recorded=kept if field == "currency" else int(kept),
            )
        return RenewalClaim(result[0], result[1] if len(result) > 1 else None)  # type: ignore[arg-type]

    async def unsure_renewal(self, renewal: NewOrder) -> None:
        """After a produce the broker did not answer: the renewal order's claim kept unsure
        and its number kept for it, so only the same renewal is taken again."""
        await self.unsure_orders([(renewal.campaign_id, renewal.order_id)])

    async def release_renewal(self, renewal: NewOrder) -> None:
        """After a failed produce: the renewal order's claim and its number's, so a retry
        (under any renewal order id) is taken again."""
        await self.release_orders([(renewal.campaign_id, renewal.order_id)])
        number = _renewal_number(renewal)
        key = self.renewal_number_key(renewal.campaign_id, renewal.partition_key, number)
        await self._release_renewal_number(keys=[key], args=[renewal.order_id])

    async def reserve_orders(self, orders: Sequence[NewOrder], now_ms: int) -> list[OrderClaim]:
        items = [
            [
                self.order_key(o.campaign_id, o.order_id),
                o.partition_key,
                o.amount_minor,
                o.kind,
                o.terms,
                _time(o.occurred_at),
                _merchant_time(o),
            ]
            for o in orders
        ]
        batch = json.dumps([now_ms, now_ms + self.pending_ms, self.ttl_s, items])
        result = _text(await self._reserve_orders(keys=[], args=[batch]))
        return [_CLAIMS[letter] for letter in result]

    async def renewed_order(self, campaign_id: str, order_id: str) -> str | None:
        """The first order the id was accepted as a renewal of, if its claim is a renewal's."""
        kind, first = await self.redis.hmget(self.order_key(campaign_id, order_id), "kind", "pkey")
        return None if kind is None or _text(kind) != "renewal" or first is None else _text(first)

    async def accepted_terms(self, campaign_id: str, order_id: str) -> str | None:
        """The terms an order id was accepted with (``NewOrder.terms``), if kept."""
        kept = await self.redis.hget(self.order_key(campaign_id, order_id), "terms")
        return None if kept is None else _text(kept)

    async def unsure_orders(self, keys: Sequence[tuple[str, str]]) -> None:
        """Keep the claims of orders whose produce failed unanswered, marked unsure."""
        names = json.dumps([self.order_key(campaign, order) for campaign, order in keys])
        await self._unsure_orders(keys=[], args=[names])

    async def release_orders(self, keys: Sequence[tuple[str, str]]) -> None:
        """Release the pending claims of orders whose produce never began."""
        names = json.dumps([self.order_key(campaign, order) for campaign, order in keys])
        await self._release_orders(keys=[], args=[names])

    async def mark_done(self, orders: Sequence[NewOrder]) -> None:
        """Mark acknowledged orders' claims done (the first mark after the broker's ack,
        its retry, or a claim the topics show was acknowledged), writing a claim that is
        gone anew, and a renewal's number key that is gone."""
        items = [
            [
                self.order_key(o.campaign_id, o.order_id),
                o.partition_key,
                o.amount_minor,
                o.kind,
                o.terms,
                "" if o.renewal_number is None else str(o.renewal_number),
                o.currency or "",
                ""
                if o.renewal_number is None
                else self.renewal_number_key(o.campaign_id, o.partition_key, o.renewal_number),
                o.order_id,
                _time(o.occurred_at),
                _merchant_time(o),
            ]
            for o in orders
        ]
        await self._mark_orders_done(keys=[], args=[json.dumps([self.ttl_s, items])])

    async def refund_known(self, campaign_id: str, refund_id: str) -> bool:
        """Whether this refund id was claimed before (accepted, or on its way)."""
        return bool(await self.redis.exists(self.refund_key(campaign_id, refund_id)))

    async def reserve_refund(
        self,
        campaign_id: str,
        order_id: str,
        refund_id: str,
        amount_minor: int,
        now_ms: int,
        *,
        occurred_at: int,
        reported_at: int,
        item_parts: Sequence[ItemRefundPart] = (),
    ) -> RefundClaim:
        """Claim a refund against its order's amount; ``before_order`` when the order is
        known with its times and the merchant's time for the refund (``reported_at``) is
        before the merchant's for the order; ``reserved`` with ``order_at`` when only its
        event time (``occurred_at``) is before the order's. ``item_parts``:
        what it takes of each of the order's skus (``products.item_refund_parts``), checked
        against the order's earlier refunds when the order is known: ``item_exceeds``."""
        parts = [[p.sku, str(p.part_minor), str(p.whole_minor)] for p in item_parts]
        kept = [[p.sku, str(p.part_minor)] for p in item_parts]
        keys = [self.refund_key(campaign_id, refund_id), self.order_key(campaign_id, order_id)]
        args: list[str | int] = [
            now_ms,
            self.pending_ms,
            self.ttl_s,
            refund_id,
            amount_minor,
            order_id,
            occurred_at,
            reported_at,
            json.dumps(parts),
            json.dumps(kept),
            MAX_REFUNDS_PER_ORDER,
        ]
        result = [_text(r) for r in await self._reserve_refund(keys=keys, args=args)]
        if result[0] == "item_exceeds":
            return RefundClaim(
                "item_exceeds",
                item_sku=result[1],
                item_taken_minor=int(result[2]),
                item_whole_minor=int(result[3]),
            )
        if result[0] == "too_many":
            return RefundClaim("too_many", int(result[1]))
        if result[0] in ("exceeds", "amount_conflict"):
            return RefundClaim(result[0], int(result[1]))  # type: ignore[arg-type]
        if result[0] == "before_order":
            return RefundClaim("before_order", order_at=int(result[1]))
        if result[0] == "unsure_conflict":
            return RefundClaim("unsure_conflict", int(result[1]), unsure_order=result[2])
        if result[0] == "reserved" and len(result) > 2 and result[2]:
            return RefundClaim("reserved", order_at=int(result[2]))
        return RefundClaim(result[0])  # type: ignore[arg-type]

    async def settle_refund(
        self,
        campaign_id: str,
        order_id: str,
        refund_id: str,
        amount_minor: int,
        *,
        done: bool,
        unsure: bool = False,
    ) -> None:
        """``done``: acknowledged; else ``unsure``: the produce failed unanswered (kept: the
        same refund alone is taken again), or released (nothing was sent)."""
        keys = [self.refund_key(campaign_id, refund_id), self.order_key(campaign_id, order_id)]
        args: list[str | int] = [
            refund_id,
            self.ttl_s,
            "done" if done else "unsure" if unsure else "release",
            order_id,
            amount_minor,
        ]
        await self._settle_refund(keys=keys, args=args)

    async def reserve_confirm(self, campaign_id: str, order_id: str, now_ms: int) -> ConfirmClaim:
        key = self.order_key(campaign_id, order_id)
        result = [
            _text(r)
            for r in await self._reserve_confirm(keys=[key], args=[now_ms, self.pending_ms])
        ]
        if result[0] == "reserved":
            return ConfirmClaim("reserved", result[1])
        return ConfirmClaim(result[0])  # type: ignore[arg-type]

    async def settle_confirm(self, campaign_id: str, order_id: str, *, done: bool) -> None:
        await self._settle_confirm(
            keys=[self.order_key(campaign_id, order_id)], args=["done" if done else "release"]
        )

    async def reserve_survey(
        self, campaign_id: str, order_id: str, answer: str, now_ms: int
    ) -> SurveyClaim:
        """Claim an order's one later survey answer (``answer``: its canonical text, so a
        retry of the same answer is a duplicate and another answer a conflict)."""
        key = self.order_key(campaign_id, order_id)
        args: list[str | int] = [now_ms, self.pending_ms, answer]
        result = [_text(r) for r in await self._reserve_survey(keys=[key], args=args)]
        if result[0] in ("reserved", "renewal"):
            return SurveyClaim(result[0], result[1])  # type: ignore[arg-type]
        return SurveyClaim(result[0])  # type: ignore[arg-type]

    async def settle_survey(self, campaign_id: str, order_id: str, *, done: bool) -> None:
        await self._settle_survey(
            keys=[self.order_key(campaign_id, order_id)], args=["done" if done else "release"]
        )
