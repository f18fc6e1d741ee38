"""A campaign follower applies the good items of a record and reports each bad one with
its reason and exception class, whatever fails on it, a listener included."""

from __future__ import annotations

import json

import pytest

from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_view import CampaignDirectory, apply_record
from afflux.shared.wire import decode_record, encode

pytestmark = pytest.mark.unit


def published(campaign_id: str, versions: int = 1) -> CampaignTermsPublished:
    terms = CampaignTerms(campaign_id=campaign_id, merchant_id="m", currency="EUR")
    return CampaignTermsPublished(
        event_id=f"ev-{campaign_id}",
        occurred_at=0,
        campaign_id=campaign_id,
        versions=tuple(
            TermsVersion(version=n, effective_from=0, published_at=0, terms=terms)
            for n in range(1, versions + 1)
        ),
    )


def test_a_packed_record_keeps_its_good_campaigns_and_reports_each_bad_item() -> None:
    directory = CampaignDirectory()
    no_versions = {**published("empty").model_dump(mode="json"), "versions": []}
    wrong_kind = {"type": "LeadConfirmed", "event_id": "l", "occurred_at": 0}
    wrong_kind |= {"order_id": "o", "campaign_id": "c"}
    items = [published("good").model_dump(mode="json"), no_versions, wrong_kind, 7]
    value = json.dumps(items).encode()

    bad = apply_record(directory, value)

    assert directory.campaign_ids() == ["good"]
    assert [reason.split(":")[0] for reason, _ in bad] == ["item 1", "item 2", "item 3"]
    assert "without any version" in bad[0][0]
    assert "unexpected event type LeadConfirmed" in bad[1][0]
    assert [error_class for _, error_class in bad] == ["UndecodableRecord"] * 3


def test_a_listener_that_raises_costs_only_that_record() -> None:
    directory = CampaignDirectory()

    def fussy(event: CampaignTermsPublished) -> None:
        if event.campaign_id == "boom":
            raise ZeroDivisionError("listener failed")

    directory.on_change(fussy)

    ((reason, error_class),) = apply_record(directory, encode(published("boom")))
    assert error_class == "ZeroDivisionError"
    assert "listener failed" in reason
    assert apply_record(directory, encode(published("fine"))) == []
    assert "fine" in directory


@pytest.mark.parametrize(
    ("value", "error_class"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "NestedTooDeep"),
        (b'{"versions":' + b"1" * 5_000 + b"}", "NumberTooLong"),
        (None, "UndecodableRecord"),
    ],
)
def test_an_undecodable_record_is_reported_whole(value: bytes | None, error_class: str) -> None:
    ((_, got),) = apply_record(CampaignDirectory(), value)
    assert got == error_class


def _with_coupon(record: CampaignTermsPublished, version: int, owner: str) -> bytes:
    """``record`` with version ``version``'s coupon ANNA10 given to ``owner``."""
    versions = [
        v.model_copy(update={"terms": v.terms.model_copy(update={"coupons": {"ANNA10": owner}})})
        if v.version == version
        else v
        for v in record.versions
    ]
    return encode(record.model_copy(update={"versions": tuple(versions)}))


def test_a_record_rewriting_an_earlier_version_is_refused_and_the_held_one_stays() -> None:
    """The campaigns topic took a record that gave version 1's coupon to another creator
    (its own history, re-sent with one field changed): the next order with the coupon
    paid them. Publishers only append versions."""
    directory = CampaignDirectory()
    honest = published("shop", 2)
    held = _with_coupon(honest, 1, "creator-01")
    assert apply_record(directory, held, b"shop") == []

    ((reason, error_class),) = apply_record(
        directory, _with_coupon(honest, 1, "evil-creator"), b"shop"
    )

    assert error_class == "HistoryRewrite"
    assert reason.startswith("history_rewrite: version 1 differs from the version 1 published")
    assert directory.versions("shop")[0].terms.coupon_owner("ANNA10") == "creator-01"


def test_a_record_replacing_the_latest_version_is_taken_as_two_racing_publishers_were() -> None:
    """Before publications took a lock per campaign, two at once could both append the
    same version number with their own terms, and every reader took the later record: a
    replay of such a history must end where the live run did."""
    directory = CampaignDirectory()
    honest = published("shop", 2)
    assert apply_record(directory, _with_coupon(honest, 2, "creator-01")) == []
    later = _with_coupon(honest, 2, "creator-02")

    assert apply_record(directory, later) == []

    assert directory.versions("shop")[1].terms.coupon_owner("ANNA10") == "creator-02"
    grown = published("shop", 3)
    on_top = grown.model_copy(
        update={"versions": (*decode_record(later)[0].versions, grown.versions[2])}  # type: ignore[union-attr]
    )
    assert apply_record(directory, encode(on_top)) == []
    assert len(directory.versions("shop")) == 3


def test_a_record_appending_a_version_follows_and_an_older_shorter_one_is_ignored() -> None:
    directory = CampaignDirectory()
    one, two = published("shop", 1), published("shop", 2)
    assert apply_record(directory, encode(one)) == []
    assert apply_record(directory, encode(two)) == []
    assert apply_record(directory, encode(one)) == []  # stale, consistent: nothing changes
    assert len(directory.versions("shop")) == 2


def test_a_record_dropping_an_earlier_version_for_another_is_refused() -> None:
    directory = CampaignDirectory()
    three = published("shop", 3)
    assert apply_record(directory, encode(three)) == []
    v1, v2, v3 = three.versions
    renumbered = three.model_copy(
        update={"versions": (v1, v2.model_copy(update={"version": 4}), v3)}
    )

    ((reason, error_class),) = apply_record(directory, encode(renumbered))

    assert (error_class, reason.split(" (")[0]) == (
        "HistoryRewrite",
        "history_rewrite: it leaves out version 2",
    )
    assert [v.version for v in directory.versions("shop")] == [1, 2, 3]
