"""Who decided a held conversion, claimed in Redis before the decision is sent.

The ledger keeps the first decision on the ``reviews`` topic, and every decision on a
conversion has the same event id, so a second request could only ever be a copy of the
first: the API must not answer it as its own. A claim holds the whole decision (approve
or decline, the reason, who) and a token of the request that made it:

- the other decision asked meanwhile is a 409 naming the one that stands;
- the same decision from someone else, or with another reason, is a 409 too, naming who
  decided and why (20 declines at once each answered 202 where the ledger kept one
  reason and one decider);
- the same request again (a retry after a 503) takes the claim as its own and is sent
  again: the same event, which the ledger keeps once;
- a decision the broker never took is released only by the request that claimed it
  (compare-and-delete), so a failed copy never frees a claim another request sent; and
  once a copy matched it (it is about to be sent too) by no request at all: the first
  request's send failing says nothing of the copy's.

A claim from before reasons were kept holds only the decision: any request for that
decision matches it. The claim expires with the review entry."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from afflux.payouts.reviews import Entry
from afflux.payouts.store import LedgerStore

REVIEW_DECISION = "decision"
REVIEW_DECISIONS = "review_decisions"  # every conversion's, as ledgers before kept them

# Delete the claim only if it is still the value this request wrote.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# One step, so no release lands between reading a claim and sharing it: the claim is
# taken when free; the same decision, reason and decider asked by another request (a
# copy, about to be sent too) makes it shared, no longer one request's to release.
_CLAIM = """
local taken = redis.call('GET', KEYS[1])
if not taken then
  if ARGV[2] == '' then redis.call('SET', KEYS[1], ARGV[1])
  else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
  return ARGV[1]
end
if string.sub(taken, 1, 1) == '[' then
  local held = cjson.decode(taken)
  local asked = cjson.decode(ARGV[1])
  if held[1] == asked[1] and held[2] == asked[2] and held[3] == asked[3]
     and held[4] ~= asked[4] and held[4] ~= 'shared' and held[4] ~= '' then
    held[4] = 'shared'
    local shared = cjson.encode(held)
    redis.call('SET', KEYS[1], shared, 'KEEPTTL')
    return shared
  end
end
return taken
"""
SHARED = "shared"  # the token of a claim sent by more than one request


@dataclass(frozen=True)
class Claim:
    decision: str  # "approve" or "decline"
    reason: str | None  # None: claimed before reasons were kept
    decided_by: str | None
    token: str

    def encode(self) -> bytes:
        return orjson.dumps([self.decision, self.reason, self.decided_by, self.token])

    @classmethod
    def decode(cls, raw: bytes) -> Claim:
        if not raw.startswith(b"["):  # the decision alone, as claims were first written
            return cls(raw.decode(), None, None, "")
        decision, reason, decided_by, token = orjson.loads(raw)
        return cls(str(decision), reason, decided_by, str(token))

    def answers(self, asked: Claim) -> bool:
        """Whether ``asked`` is this decision again: the same request, or one a claim
        written before reasons were kept cannot tell from it."""
        if self.decision != asked.decision:
            return False
        if self.reason is None:
            return True
        return (self.reason, self.decided_by) == (asked.reason, asked.decided_by)


async def claim_decision(store: LedgerStore, found: Entry, asked: Claim) -> Claim:
    """The conversion's claim: ``asked`` when it is the first, else the one that stands."""
    earlier = await store.redis.hget(store.keys.ledger(REVIEW_DECISIONS), found.conversion_id)
    if earlier is not None:
        return Claim(earlier.decode(), None, None, "")
    key = store.keys.review(found.conversion_id, REVIEW_DECISION)
    ttl = "" if found.kept_ms is None else str(found.kept_ms)
    taken = await store.redis.eval(_CLAIM, 1, key, asked.encode(), ttl)  # type: ignore[no-untyped-call]
    return Claim.decode(taken if isinstance(taken, bytes) else str(taken).encode())


async def release_decision(store: LedgerStore, conversion_id: str, claim: Claim) -> None:
    """Forget a claim the broker did not take, if it is still this request's."""
    key = store.keys.review(conversion_id, REVIEW_DECISION)
    await store.redis.eval(_RELEASE, 1, key, claim.encode())  # type: ignore[no-untyped-call]
