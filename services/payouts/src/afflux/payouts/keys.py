"""Where the journal lives in Redis: every atomic step touches keys of one hash slot.

Four kinds of slot, by hash tag (prefix ``afx:pay:``):

- ``{ledger}``: ``offsets`` and ``last`` (per "topic|partition": the next offset and
  the fingerprint of the last record applied), ``generation``, ``rebuilding``, ``cps``
  (every "campaign|period");
- ``{c:<campaign>}``: ``orders`` (order -> its period, for lead confirmations),
  ``early`` (confirmations that came before their conversion), ``periods``;
- ``{a:<affiliate>}``: ``cps`` (the creator's "campaign|period"s), ``payouts``
  ("campaign|period" -> payout record), ``paid`` (currency -> paid in all);
- ``{p:<campaign>|<period>}``, one campaign-period: ``ver`` (the token of its last
  write), ``lines`` (line id -> line record), ``events`` (ids of applied conversions,
  reversals and confirmations), ``clickids`` (ids of counted clicks), ``clicks``
  (click tallies), ``confirmed`` (order -> confirmation event id), ``kpis`` (KPI
  counters), ``sums`` (per creator: ``total|<a>``, ``reversed|<a>``), ``journal:<a>``
  (the creator's postings, scored by their sequence number), ``due:<a>`` and
  ``dueamt:<a>`` (the creator's postings summed per approval time, for balances).
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "afx:pay:"


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
