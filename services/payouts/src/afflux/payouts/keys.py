"""Where the journal lives in Redis: every atomic step touches keys of one hash slot.

Eight kinds of slot, by hash tag (prefix ``afx:pay:``):

- ``{ledger}``: ``offsets`` and ``last`` (per "topic|partition": the next offset and
  the fingerprint of the last record applied), ``generation``, ``rebuilding``, ``cps``
  (every "campaign|period"), ``content`` (``<platform>:<content_id>`` -> the
  "campaign|period" of its publication);
- ``{c:<campaign>}``: ``orders`` (order -> its period, for lead confirmations),
  ``early`` (confirmations that came before their conversion), ``periods``;
- ``{a:<affiliate>}``: ``payouts`` ("campaign|period" -> payout record), ``paid``
  (currency -> paid in all), and in ledgers written before the creator index,
  ``cps`` (the creator's "campaign|period"s);
- ``{ci:<NN>}``, one of ``CREATOR_INDEX_SHARDS`` shards of the creator index (a
  creator's shard: CRC-32 of its id): ``cps``, a sorted set of
  ``["<affiliate>","<campaign>","<period>"]`` members (JSON, all scores 0), so a
  creator's campaign-periods are one lexicographic range. A batch that brings
  thousands of creators writes one command per shard, not one per creator;
- ``{cv:<campaign>|<conversion>}``: ``period``, the period that placed the conversion
  first (``conversion_claims``), expiring at that period's retention when placed;
- ``{rv:<conversion>}``, a conversion of a campaign with review terms: ``entry`` (where
  the review queue finds it for a decision) and ``decision`` (the first decision asked
  over HTTP), both expiring at its period's retention when placed (``reviews``);
- ``{co:<campaign>|<order>}``: ``refused``, the order's conversions the ledger refused
  (``refused_conversions``), expiring after the ledger's retention;
- ``{p:<campaign>|<period>}``, one campaign-period: ``ver`` (the token of its last
  write), ``lines`` (line id -> line record), ``events`` (ids of applied conversions,
  reversals and confirmations), ``clickids`` (ids of counted clicks), ``clicks``
  (click tallies), ``confirmed`` (order -> confirmation event id), ``content``
  (``<platform>:<content_id>`` -> the content's state: publication, latest snapshot,
  review hold), ``kpis`` (KPI
  counters), ``sums`` (per creator: ``total|<a>``, ``reversed|<a>``), ``journal:<a>``
  (the creator's postings, scored by their sequence number), ``due:<a>`` and
  ``dueamt:<a>`` (the creator's postings summed per approval time, for balances);
  once compacted (``compaction``), ``snapshot`` and ``compacted`` instead of the
  journals, approval schedules and per-event keys (``snapshots``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import orjson

PREFIX = "afx:pay:"
CREATOR_INDEX_SHARDS = 64


@dataclass(frozen=True)
class Keys:
    prefix: str = PREFIX

    def ledger(self, name: str) -> str:
        return f"{self.prefix}{{ledger}}:{name}"

    def campaign(self, campaign_id: str, name: str) -> str:
        return f"{self.prefix}{{c:{campaign_id}}}:{name}"

    def creator(self, affiliate_id: str, name: str) -> str:
        return f"{self.prefix}{{a:{affiliate_id}}}:{name}"

    def period(self, campaign_id: str, period: str, name: str) -> str:
        return f"{self.prefix}{{p:{campaign_id}|{period}}}:{name}"

    def conversion_period(self, campaign_id: str, conversion_id: str) -> str:
        return f"{self.prefix}{{cv:{campaign_id}|{conversion_id}}}:period"

    def refused_conversions(self, campaign_id: str, order_id: str) -> str:
        return f"{self.prefix}{{co:{campaign_id}|{order_id}}}:refused"

    def review(self, conversion_id: str, name: str) -> str:
        return f"{self.prefix}{{rv:{conversion_id}}}:{name}"

    def creator_index(self, affiliate_id: str) -> str:
        shard = zlib.crc32(affiliate_id.encode()) % CREATOR_INDEX_SHARDS
        return f"{self.prefix}{{ci:{shard:02d}}}:cps"


def creator_index_member(affiliate_id: str, campaign_id: str, period: str) -> bytes:
    return orjson.dumps([affiliate_id, campaign_id, period])


def creator_index_range(affiliate_id: str) -> tuple[bytes, bytes]:
    """ZRANGE BYLEX bounds of one creator's members: the JSON text up to the comma after
    its id is a prefix no other id shares (the string's closing quote ends it)."""
    prefix = orjson.dumps([affiliate_id])[:-1] + b","
    return b"[" + prefix, b"(" + prefix[:-1] + b"-"  # "," + 1


def creator_index_pair(member: bytes) -> tuple[str, str]:
    _, campaign_id, period = orjson.loads(member)
    return str(campaign_id), str(period)
