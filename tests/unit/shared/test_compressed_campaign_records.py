"""A campaigns record holds its campaign's whole history; above a size it goes out as an
xz stream, which only a campaigns record may be, within bounds a hostile record cannot
stretch (``afflux.shared.wire``, ``afflux.shared.io.campaign_publish.record_value``)."""

from __future__ import annotations

import json
import lzma
import random
import string

import pytest

from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_publish import (
    COMPRESS_ABOVE_BYTES,
    TermsTooLarge,
    record_value,
)
from afflux.shared.io.campaign_view import CampaignDirectory, apply_record
from afflux.shared.wire import (
    MAX_DEPTH,
    MAX_EXPANDED_BYTES,
    MAX_RECORD_BYTES,
    XZ_MAGIC,
    UndecodableRecord,
    compress,
    decode_record,
    encode,
)

pytestmark = pytest.mark.unit


def history(
    campaign_id: str, versions: int, codes: int, *, seed: int = 7
) -> CampaignTermsPublished:
    """``versions`` versions of one coupon map of ``codes`` random codes, each version
    adding one code: what a brand with many creators publishes month after month."""
    rng = random.Random(seed)
    alphabet = string.ascii_uppercase + string.digits
    coupons = {"".join(rng.choices(alphabet, k=12)): f"creator-{i % 500}" for i in range(codes)}
    made = []
    for n in range(1, versions + 1):
        coupons[f"MONTH{n:04d}"] = "creator-1"
        terms = CampaignTerms(
            campaign_id=campaign_id, merchant_id="m", currency="EUR", coupons=dict(coupons)
        )
        made.append(TermsVersion(version=n, effective_from=n, published_at=n, terms=terms))
    return CampaignTermsPublished(
        event_id=f"ev-{campaign_id}", occurred_at=0, campaign_id=campaign_id, versions=tuple(made)
    )


def test_a_small_history_stays_plain_json_for_readers_of_the_topic() -> None:
    record = history("small", versions=2, codes=10)
    value = record_value(record)
    assert len(value) <= COMPRESS_ABOVE_BYTES
    assert json.loads(value)["campaign_id"] == "small"


def test_thirty_versions_of_nine_thousand_codes_fit_one_record_and_read_back_equal() -> None:
    record = history("large", versions=30, codes=9_000)
    plain = encode(record)
    assert len(plain) > 4 * MAX_RECORD_BYTES  # far more than one plain record could hold

    value = record_value(record)

    assert value.startswith(XZ_MAGIC)
    assert len(value) < MAX_RECORD_BYTES // 2
    assert decode_record(value) == [record]
    directory = CampaignDirectory()
    assert apply_record(directory, value) == []
    assert directory.versions("large") == record.versions


def test_a_history_expanding_beyond_the_readers_bound_is_refused_before_sending() -> None:
    record = history("long", versions=3, codes=2_000)
    size = len(encode(record))
    with pytest.raises(TermsTooLarge, match=f"its 3 versions encode to {size:,} bytes, over the"):
        record_value(record, max_expanded=size - 1)
    assert record_value(record, max_expanded=size)


def test_a_history_whose_compressed_record_is_too_large_is_refused() -> None:
    record = history("random", versions=2, codes=3_000)
    compressed = len(compress(encode(record)))
    with pytest.raises(TermsTooLarge, match=f"{compressed:,} compressed, over the"):
        record_value(record, max_record=compressed - 1)
    assert len(record_value(record, max_record=compressed)) == compressed


def refusal(value: bytes) -> str:
    with pytest.raises(UndecodableRecord) as caught:
        decode_record(value)
    return str(caught.value)


def test_only_a_campaigns_record_may_be_compressed() -> None:
    order = {"type": "LeadConfirmed", "event_id": "l", "occurred_at": 0}
    order |= {"order_id": "o", "campaign_id": "c"}
    packed = [history("a", 1, 1).model_dump(mode="json")] * 2
    for doc in (order, packed):
        reason = refusal(compress(json.dumps(doc).encode()))
        assert reason == "a compressed record must hold one event of type CampaignTermsPublished"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(
            compress(b" " * (MAX_EXPANDED_BYTES + 1)),
            f"compressed record expands beyond {MAX_EXPANDED_BYTES} bytes",
            id="a bomb",
        ),
        pytest.param(
            compress(encode(history("t", 1, 1)))[:-9], "compressed record is truncated", id="cut"
        ),
        pytest.param(
            compress(encode(history("t", 1, 1))) + b"{}",
            "bytes after the end of a compressed record",
            id="trailing bytes",
        ),
        pytest.param(XZ_MAGIC + b"not xz at all", "not a readable xz stream", id="garbage"),
        pytest.param(
            lzma.compress(encode(history("t", 1, 1)), preset=9 | lzma.PRESET_EXTREME),
            "not a readable xz stream: Memory usage limit",
            id="a header asking for 64 MiB of decoder memory",
        ),
        pytest.param(
            compress(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)),
            f"nested deeper than {MAX_DEPTH} levels",
            id="deep inside",
        ),
        pytest.param(
            XZ_MAGIC + b"\x00" * MAX_RECORD_BYTES,
            f"record of {MAX_RECORD_BYTES + 6} bytes exceeds {MAX_RECORD_BYTES}",
            id="over the record bound before expanding",
        ),
    ],
)
def test_a_hostile_compressed_record_is_refused_with_its_reason(value: bytes, reason: str) -> None:
    assert refusal(value).startswith(reason)
