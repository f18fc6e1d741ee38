"""What the payouts routes depend on, as ``Annotated`` aliases read from the app's state.

``create_app`` puts each value on ``app.state`` (the store and the producer once its
lifespan has connected: until then a route needing them answers 503); a route names
the ones it touches in its signature (afflux.shared.io.http.state).

``CreatorReader``, ``CampaignReader`` and ``CampaignListReader`` are who may read a
creator's or a campaign's figures (afflux.shared.core.access): every route of a
creator or a campaign names one, docs/portal.md "Access".
"""

from __future__ import annotations

from typing import Annotated

from aiokafka import AIOKafkaProducer
from fastapi import Depends

from afflux.payouts.compaction import REBUILDING, ledger_behind
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.queries import unknown_campaign, unknown_creator
from afflux.payouts.store import LedgerStore
from afflux.shared.core import access
from afflux.shared.core.access import Principal
from afflux.shared.core.clock import Clock
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.admin import AdminDep
from afflux.shared.io.http.principals import PrincipalDep
from afflux.shared.io.http.problems import Problem
from afflux.shared.io.http.state import started_dep, state_dep

__all__ = [
    "AdminDep",
    "CampaignListReader",
    "CampaignReader",
    "ClockDep",
    "CreatorReader",
    "DirectoryDep",
    "MetricsDep",
    "PrincipalDep",
    "ProducerDep",
    "ReplayedDep",
    "StoreDep",
]


StoreDep = Annotated[LedgerStore, Depends(started_dep("store"))]
ProducerDep = Annotated[AIOKafkaProducer, Depends(started_dep("producer"))]
DirectoryDep = Annotated[CampaignDirectory, Depends(state_dep("directory"))]
ClockDep = Annotated[Clock, Depends(state_dep("clock"))]
MetricsDep = Annotated[PayoutsMetrics, Depends(state_dep("metrics"))]


async def replayed(_: PrincipalDep, store: StoreDep) -> None:
    """503 while the ledger is rebuilt or its replay has not reached the topics' ends: a
    half-replayed ledger answered a paid creator 404 (no postings yet), or a debt that is
    none (the payout records, kept, read against the postings replayed so far). After the
    caller is authenticated (a request without a valid credential is the 401 it always
    is), and without the replay's partitions and lag, which are the operator's."""
    why = await ledger_behind(store)
    if why:
        what = why if why == REBUILDING else "it is replaying its topics after a rebuild"
        raise Problem(
            503,
            None,
            f"the ledger cannot be read now: {what}; read again once it has replayed",
            headers={"Retry-After": "30"},
        )


ReplayedDep = Depends(replayed)


async def creator_reader(principal: PrincipalDep, affiliate_id: str) -> Principal:
    """Admin or the creator ``affiliate_id`` itself; anyone else gets the 404 an
    unknown creator gets."""
    if not access.may_read_creator(principal, affiliate_id):
        raise unknown_creator(affiliate_id)
    return principal


def merchant_of(directory: CampaignDirectory, campaign_id: str) -> str | None:
    """The merchant the campaign's current terms name; None for an unknown campaign."""
    return directory.latest(campaign_id).terms.merchant_id if campaign_id in directory else None


async def campaign_reader(
    principal: PrincipalDep, directory: DirectoryDep, campaign_id: str
) -> Principal:
    """Admin or the campaign's merchant; anyone else gets the 404 an unknown campaign
    gets."""
    if not access.may_read_campaign(principal, merchant_of(directory, campaign_id)):
        raise unknown_campaign(campaign_id)
    return principal


async def campaign_list_reader(
    principal: PrincipalDep, directory: DirectoryDep, campaign_id: str | None = None
) -> Principal:
    """Rows of many creators: admin, or a merchant naming one of its campaigns."""
    if principal.is_admin:
        return principal
    if principal.role != "merchant":
        raise Problem(403, "Authorization", f"a {principal.role} key may not list creators")
    if campaign_id is None:
        raise Problem(422, "campaign_id", "required with a merchant key: one of its campaigns")
    if not access.may_read_campaign(principal, merchant_of(directory, campaign_id)):
        raise unknown_campaign(campaign_id)
    return principal


CreatorReader = Annotated[Principal, Depends(creator_reader)]
CampaignReader = Annotated[Principal, Depends(campaign_reader)]
CampaignListReader = Annotated[Principal, Depends(campaign_list_reader)]
