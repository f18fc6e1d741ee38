"""Each creator's running sums over all campaign-periods, so a balance reads one
creator's keys whatever the number of its campaign-periods.

A period's postings are written in the period's slot; the creator's sums live in the
creator's shard of the creator index (``{ci:<NN>}``). No atomic step spans both
slots, so a posting reaches the creator's sums through an outbox:

1. the period's compare-and-set also writes, in ``{p:…}:outbox`` (field: the write's
   first sequence number), what each new posting adds: ``[creator, currency, seq,
   approve_at, amount, reversed]``;
2. after the write, ``sync`` reads the outboxes of the periods it wrote, and per
   shard one script adds every posting whose ``seq`` is above the creator's
   high-water mark for that period (``{ci:<NN>}:marks:<a>`` field
   ``<campaign>|<period>``) to ``{ci:<NN>}:bal:<a>`` fields ``t|<currency>`` (every
   posting) and ``r|<currency>`` (reversals), and its
   amount to the creator's approval schedule (``due:<a>`` scored by approval time,
   ``dueamt:<a>`` the sum per ``<currency>|<time>``); then deletes the outbox fields.
   The scripts run in up to four rounds, creators who only lose first and those who
   only gain last (``sync_round``), so a correction is not seen credited to both creators.

Exactly once: a period's sequence numbers only grow, and a sync applies the outbox
in sequence order, all fields present at once: a later write's sync sees (and applies
first) any earlier write's fields not yet synced, so no high-water mark ever passes
a posting not applied, and a posting already applied is below it. A crash between the
write and the sync leaves the outbox in the period; ``drain`` (when a consumer joins
the ledger) syncs every outbox left.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from afflux.payouts.keys import Keys
from afflux.payouts.views import Balance
from afflux.shared.core.journal.bounds import is_reversal
from afflux.shared.core.journal.records import Posting

# (creator, currency, seq, approve_at, amount, reversed)
Entry = tuple[str, str, int, int, int, int]
_CHUNK = 1_000  # outbox fields deleted per command

# KEYS[1]: the shard's prefix, e.g. afx:pay:{ci:07}: (every key is in its slot).
# ARGV[1]: JSON [[creator, campaign, period, [write, ...]], ...], the writes in sequence
# order, each what one write posted for the creator: [first seq, last seq, currency,
# total, reversed, [[approve_at, amount], ...]]. A write is added whole or not at all
# (its sequence numbers are all above the mark, or none is), so it goes as sums: a few
# commands per creator and write instead of a few per posting.
_SYNC = b"""
local prefix = KEYS[1]
for _, item in ipairs(cjson.decode(ARGV[1])) do
  local creator, mark = item[1], item[2] .. '|' .. item[3]
  local bal, marks = prefix .. 'bal:' .. creator, prefix .. 'marks:' .. creator
  local due, dueamt = prefix .. 'due:' .. creator, prefix .. 'dueamt:' .. creator
  local high = tonumber(redis.call('HGET', marks, mark) or '0')
  for _, w in ipairs(item[4]) do
    if w[1] > high then
      local currency = w[3]
      if w[4] ~= 0 then
        redis.call('HINCRBY', bal, 't|' .. currency, w[4])
      else
        redis.call('HSETNX', bal, 't|' .. currency, 0)
      end
      if w[5] ~= 0 then redis.call('HINCRBY', bal, 'r|' .. currency, w[5]) end
      for _, d in ipairs(w[6]) do
        local slot = currency .. '|' .. string.format('%d', d[1])
        -- The schedule's member is written with its first amount: an amount already
        -- there has its member (both are only ever written here, together).
        if redis.call('HINCRBY', dueamt, slot, d[2]) == d[2] then
          redis.call('ZADD', due, d[1], slot)
        end
      end
      high = w[2]
    end
  end
  redis.call('HSET', marks, mark, string.format('%d', high))
end
return 1
"""
_SYNC_SHA = hashlib.sha1(_SYNC).hexdigest()  # noqa: S324 (Redis's script id)


def entries(postings: Iterable[Posting]) -> list[Entry]:
    """What each posting adds to its creator's sums (a reversal's amount is negative:
    ``reversed`` counts it as a positive amount)."""
    return [
        (
            p.affiliate_id,
            p.currency,
            p.seq,
            p.approve_at,
            p.amount_minor,
            -p.amount_minor if is_reversal(p.component) else 0,
        )
        for p in postings
    ]


def _write_sums(entries: Sequence[Sequence[Any]]) -> dict[str, list[object]]:
    """Per creator, what one write's postings add: [first seq, last seq, currency, total,
    reversed, [[approve_at, amount], ...]]."""
    out: dict[str, list[Any]] = {}
    for a, currency, seq, at, amount, rev in entries:
        write = out.get(a)
        if write is None:
            write = out[a] = [seq, seq, currency, 0, 0, {}]
        write[0], write[1] = min(write[0], seq), max(write[1], seq)
        write[3] += amount
        write[4] += rev
        write[5][at] = write[5].get(at, 0) + amount
    for write in out.values():
        write[5] = sorted(write[5].items())
    return out


def outbox_value(postings: Sequence[Posting]) -> str:
    return orjson.dumps(entries(postings)).decode()


SyncItem = tuple[str, list[Any], int]  # shard prefix, [creator, campaign, period, writes], round


def outbox_items(
    cid: str, period: str, box: Mapping[bytes, bytes], shard: Callable[[str], str]
) -> list[SyncItem]:
    """What one period's outbox adds to each creator's sums, oldest write first, and the
    round the creator's sums are synced in (``sync_round``)."""
    by_creator: dict[str, list[list[object]]] = defaultdict(list)
    losses: dict[str, int] = defaultdict(int)
    gains: dict[str, int] = defaultdict(int)
    for field in sorted(box, key=int):
        rows = orjson.loads(box[field])
        for row in rows:  # [creator, currency, seq, approve_at, amount, reversed]
            if row[4] < 0:
                losses[row[0]] += row[4]
            else:
                gains[row[0]] += row[4]
        for a, write in _write_sums(rows).items():
            by_creator[a].append(write)
    return [
        (shard(a), [a, cid, period, writes], sync_round(losses[a], gains[a]))
        for a, writes in by_creator.items()
    ]


def sync_round(lost: int, gained: int) -> int:
    """0: the creator only loses; 1 and 2: loses and gains, the net falling, then not;
    3: only gains. A correction moves an order from one creator to another in one period
    write, but the two creators' sums may sit in different shards (different scripts,
    different nodes), each creator's applied at once: in this order a balance read between
    the rounds sees the order credited to neither for a moment, not to both. (By the net
    alone, a creator who lost the order and earned a larger sale went after the one who
    received it.) When both creators lose and gain in the same write (the receiver also
    refunded, the loser also paid a sale), the falling net goes first, which can be the
    receiver: the order can then be seen, for a moment, credited to both."""
    if not gained:
        return 0
    if not lost:
        return 3
    return 1 if lost + gained < 0 else 2


def sync_rounds(items: Sequence[SyncItem]) -> list[dict[str, bytes]]:
    """The sync scripts' payloads per shard, in rounds run one after the other
    (``sync_round``); empty rounds left out."""
    rounds: list[dict[str, list[object]]] = [defaultdict(list) for _ in range(4)]
    for prefix, item, round_ in items:
        rounds[round_][prefix].append(item)
    return [
        {prefix: orjson.dumps(shard) for prefix, shard in round_.items()}
        for round_ in rounds
        if round_
    ]


# KEYS: bal, due, dueamt of one creator; ARGV: as of (ms). The sums, the approval slots
# after ``as of`` and their amounts, read at one instant.
_BALANCE = """
local later = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
local amounts = {}
for start = 1, #later, 1000 do
  local chunk = redis.call('HMGET', KEYS[3], unpack(later, start, math.min(start + 999, #later)))
  for _, amount in ipairs(chunk) do table.insert(amounts, amount or '0') end
end
return {redis.call('HGETALL', KEYS[1]), later, amounts}
"""


class CreatorSums:
    def __init__(self, redis: Redis[bytes], keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def shard(self, affiliate: str) -> str:
        """The prefix of the creator's keys in its shard (``…{ci:NN}:``)."""
        return self.keys.creator_index(affiliate).removesuffix("cps")

    async def sync(self, periods: Iterable[tuple[str, str]]) -> None:
        """Apply the outboxes of ``periods`` to their creators' sums, then clear them."""
        wanted = list(dict.fromkeys(periods))
        if not wanted:
            return
        redis = self.redis
        async with redis.pipeline(transaction=False) as pipe:
            for cid, period in wanted:
                pipe.hgetall(self.keys.period(cid, period, "outbox"))
            boxes: list[dict[bytes, bytes]] = await pipe.execute()
        items: list[SyncItem] = []
        for (cid, period), box in zip(wanted, boxes, strict=True):
            items += outbox_items(cid, period, box, self.shard)
        for round_ in sync_rounds(items):
            await self._run_sync(round_)
        async with redis.pipeline(transaction=False) as pipe:
            for (cid, period), box in zip(wanted, boxes, strict=True):
                fields = list(box)
                for start in range(0, len(fields), _CHUNK):
                    pipe.hdel(
                        self.keys.period(cid, period, "outbox"), *fields[start : start + _CHUNK]
                    )
            await pipe.execute()

    async def _run_sync(self, payloads: dict[str, bytes]) -> None:
        """The sync script once per shard, all in one pipeline (a batch touches most of
        the shards: one round trip each cost more than the scripts); a shard's node that
        does not know the script yet gets it by EVAL. Every shard's script runs even when
        another's fails: each is atomic on its own and stops at its high-water marks."""
        if not payloads:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for prefix, payload in payloads.items():
                pipe.execute_command("EVALSHA", _SYNC_SHA, 1, prefix, payload)
            answers = await pipe.execute(raise_on_error=False)
        for (prefix, payload), answer in zip(payloads.items(), answers, strict=True):
            if isinstance(answer, NoScriptError):
                await self.redis.execute_command(  # type: ignore[no-untyped-call]
                    "EVAL", _SYNC, 1, prefix, payload
                )
            elif isinstance(answer, Exception):
                raise answer

    async def drain(self, periods: Iterable[tuple[str, str]]) -> None:
        """Sync whatever outbox a crash left (every period with one)."""
        await self.sync(periods)

    async def balance(self, affiliate: str, as_of: int) -> Balance:
        """The creator's sums: O(currencies + approval times after ``as_of``)."""
        prefix = self.shard(affiliate)
        keys = [f"{prefix}{name}:{affiliate}" for name in ("bal", "due", "dueamt")]
        # One script: read in two round trips, a refund before approval landing between
        # them (the total lowered, the pending amount gone) showed pending money approved.
        flat, later, amounts = await self.redis.eval(  # type: ignore[no-untyped-call]
            _BALANCE, len(keys), *keys, as_of
        )
        total: dict[str, int] = {}
        reversed_: dict[str, int] = {}
        for name, value in zip(flat[::2], flat[1::2], strict=True):
            kind, _, currency = name.decode().partition("|")
            if kind == "t":
                total[currency] = int(value)
            elif kind == "r":
                reversed_[currency] = int(value)
        pending: dict[str, int] = defaultdict(int)
        schedule: dict[tuple[str, int], int] = {}
        for slot, amount in zip(later, amounts, strict=True):
            currency, _, at = slot.decode().partition("|")
            pending[currency] += int(amount or 0)
            if int(amount or 0):
                schedule[(currency, int(at))] = int(amount)
        return Balance(total, reversed_, dict(pending), schedule)

    async def known(self, affiliate: str) -> bool:
        """Whether any posting of the creator reached its sums."""
        return bool(await self.redis.exists(f"{self.shard(affiliate)}bal:{affiliate}"))
