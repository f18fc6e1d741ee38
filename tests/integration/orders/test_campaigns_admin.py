"""Publishing campaign terms over the admin API and with ``afflux campaigns apply``."""

from __future__ import annotations

import asyncio
import json
import random
import string
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.orders import campaigns_cli
from afflux.orders.routes.campaigns import MAX_TERMS_BODY_BYTES
from afflux.orders.terms_publisher import LOCK_WAIT_S
from afflux.shared.io.campaign_publish import read_all_versions

from .conftest import orders_settings

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer orders-admin-token"}


def entry(campaign_id: str, percent: str = "10") -> dict[str, Any]:
    # No effective_from: each version from its publication on (a later one may not start
    # before it: ``backdated_version``).
    return {
        "terms": {
            "campaign_id": campaign_id,
            "merchant_id": "merchant-a",
            "currency": "EUR",
            "plan": {"sale": {"rate": {"percent": percent}}},
        },
    }


async def test_put_publishes_a_new_version_that_orders_can_use_at_once(api: Any) -> None:
    campaign_id = f"admin-{uuid.uuid4().hex[:8]}"

    first = await api.http.put(
        f"/v1/campaigns/{campaign_id}", json=entry(campaign_id), headers=ADMIN
    )
    same = await api.http.put(
        f"/v1/campaigns/{campaign_id}", json=entry(campaign_id), headers=ADMIN
    )
    changed = await api.http.put(
        f"/v1/campaigns/{campaign_id}", json=entry(campaign_id, "12"), headers=ADMIN
    )
    listed = await api.http.get(f"/v1/campaigns/{campaign_id}", headers=ADMIN)

    assert (first.status_code, first.json()["version"]) == (201, 1), first.text
    assert (same.status_code, same.json()["published"]) == (200, False)
    assert (changed.status_code, changed.json()["version"]) == (201, 2)
    versions = listed.json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["terms"]["plan"]["sale"]["rate"]["percent"] == "12"
    order = {
        "order_id": "o-1",
        "campaign_id": campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 100,
        "currency": "EUR",
        "coupon_code": "ANY",
    }
    assert (await api.post("/v1/orders", order)).status_code == 202


@pytest.mark.parametrize(
    ("headers", "status", "field"),
    [
        pytest.param({}, 401, "Authorization", id="no token"),
        pytest.param({"Authorization": "Bearer wrong"}, 401, "Authorization", id="wrong token"),
        pytest.param(ADMIN, 422, "terms.campaign_id", id="path and body disagree"),
    ],
)
async def test_put_refuses_without_the_admin_token_or_with_a_mismatched_id(
    headers: dict[str, str], status: int, field: str, api: Any, topics: Any
) -> None:
    before = await topics.settle()

    response = await api.http.put("/v1/campaigns/some-id", json=entry("other-id"), headers=headers)

    assert response.status_code == status
    assert response.json()["detail"][0]["field"] == field
    assert await topics.written_since(before) == {}


@pytest.mark.parametrize(
    ("terms", "reason"),
    [
        pytest.param(
            {"coupons": {"abc": "creator-1", "ABC": "creator-2"}},
            'coupons: "abc" and "ABC" are the same code (codes are case-insensitive',
            id="a coupon code twice",
        ),
        pytest.param(
            {"coupons": {"SUMMER": "creator-1", " summer ": "creator-2"}},
            'coupons: "SUMMER" and " summer " are the same code',
            id="a coupon code twice once trimmed",
        ),
        pytest.param(
            {"survey": {"handles": {"@Mia": "creator-1", "mia": "creator-2"}}},
            'survey.handles: "@Mia" and "mia" are the same handle',
            id="a survey handle twice",
        ),
        pytest.param(
            {"allowed_domains": ["com"]},
            'allowed_domains[0]: "com" is a public suffix, not a site',
            id="a top-level domain",
        ),
        pytest.param(
            {"allowed_domains": ["shop.example.com", "co.uk"]},
            'allowed_domains[1]: "co.uk" is a public suffix, not a site',
            id="a multi-label public suffix",
        ),
        pytest.param(
            {"allowed_domains": ["https://shop.example.com/"]},
            'allowed_domains[0]: "https://shop.example.com/" is a URL',
            id="a URL",
        ),
        pytest.param(
            {"allowed_domains": ["*.example.com"]},
            'allowed_domains[0]: "*.example.com": no wildcards',
            id="a wildcard",
        ),
        pytest.param(
            {"allowed_domains": ["bücher.example"]},
            'allowed_domains[0]: "bücher.example" is not ASCII',
            id="an IDN not in punycode",
        ),
    ],
)
async def test_put_refuses_terms_that_would_lose_a_code_or_open_the_redirect(
    terms: dict[str, Any], reason: str, api: Any, topics: Any
) -> None:
    campaign_id = f"refused-{uuid.uuid4().hex[:8]}"
    body = entry(campaign_id)
    body["terms"].update(terms)
    before = await topics.settle()

    response = await api.http.put(f"/v1/campaigns/{campaign_id}", json=body, headers=ADMIN)

    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["field"] == "terms"
    assert problem["reason"].startswith(reason)
    await topics.settle()
    assert topics.mentioning(before, campaign_id) == []
    assert (await api.http.get(f"/v1/campaigns/{campaign_id}", headers=ADMIN)).status_code == 404


def padded(campaign_id: str, size: int) -> bytes:
    """A valid entry followed by spaces, ``size`` bytes in all."""
    raw = json.dumps(entry(campaign_id)).encode()
    return raw + b" " * (size - len(raw))


async def streamed(raw: bytes) -> AsyncIterator[bytes]:
    """``raw`` in 64 KiB chunks, without a Content-Length: only reading tells its size."""
    for at in range(0, len(raw), 65_536):
        yield raw[at : at + 65_536]


@pytest.mark.parametrize(
    ("size", "stream", "headers", "status", "field"),
    [
        pytest.param(MAX_TERMS_BODY_BYTES, False, ADMIN, 201, None, id="at the limit"),
        pytest.param(MAX_TERMS_BODY_BYTES + 1, False, ADMIN, 413, "body", id="declared over"),
        pytest.param(MAX_TERMS_BODY_BYTES + 1, True, ADMIN, 413, "body", id="streamed over"),
        pytest.param(
            MAX_TERMS_BODY_BYTES + 1, True, {}, 401, "Authorization", id="over, without token"
        ),
    ],
)
async def test_put_reads_a_body_only_up_to_the_limit_of_a_campaigns_record(
    size: int,
    stream: bool,
    headers: dict[str, str],
    status: int,
    field: str | None,
    api: Any,
    topics: Any,
) -> None:
    """Every reader refuses a campaigns record over MAX_RECORD_BYTES, so a larger body is
    refused as it arrives (after the admin token), and nothing is published."""
    campaign_id = f"sized-{uuid.uuid4().hex[:8]}"
    raw = padded(campaign_id, size)
    before = await topics.settle()

    response = await api.http.put(
        f"/v1/campaigns/{campaign_id}",
        content=streamed(raw) if stream else raw,
        headers={**headers, "Content-Type": "application/json"},
    )

    assert response.status_code == status, response.text
    if field is None:
        return
    assert response.json()["detail"][0]["field"] == field
    if status == 413:
        reason = f"larger than the {MAX_TERMS_BODY_BYTES} byte limit"
        assert response.json()["detail"][0]["reason"] == reason
    assert await topics.written_since(before) == {}


async def test_put_keeps_publishing_monthly_versions_of_a_large_coupon_map(
    api: Any, infra: Any
) -> None:
    """A campaigns record holds every version of its campaign; a brand adding a few codes
    to its 9,000 each month used to fill one after four versions (about 230 KB each) and
    could publish no more. Compressed, the repeated map costs next to nothing."""
    campaign_id = f"monthly-{uuid.uuid4().hex[:8]}"
    coupons = {f"BASE{i:05d}": f"creator-{i % 50}" for i in range(9_000)}

    for month in range(1, 7):
        coupons[f"MONTH{month:02d}"] = "creator-1"
        body = entry(campaign_id)
        body["terms"]["coupons"] = dict(coupons)
        answer = await api.http.put(f"/v1/campaigns/{campaign_id}", json=body, headers=ADMIN)
        assert answer.status_code == 201, (month, answer.text)

    listed = await api.http.get(f"/v1/campaigns/{campaign_id}", headers=ADMIN)
    assert [v["version"] for v in listed.json()["versions"]] == list(range(1, 7))
    history = await read_all_versions(infra.kafka_bootstrap)
    assert len(history[campaign_id]) == 6  # 1.4 MB of JSON, one record
    assert history[campaign_id][-1].terms.coupons["MONTH06"] == "creator-1"


async def test_put_refuses_a_version_whose_history_would_no_longer_fit_one_record(
    api: Any, infra: Any
) -> None:
    """Versions that share nothing (18,000 new random codes each) fill a compressed record
    after a few: the version that would overflow it is a 413 naming the sizes, and the
    versions before it stay readable."""
    campaign_id = f"history-{uuid.uuid4().hex[:8]}"
    rng = random.Random(campaign_id)
    alphabet = string.ascii_uppercase + string.digits

    def with_random_coupons() -> dict[str, Any]:
        body = entry(campaign_id)
        codes = ("".join(rng.choices(alphabet, k=12)) for _ in range(18_000))
        body["terms"]["coupons"] = {code: f"creator-{i % 50}" for i, code in enumerate(codes)}
        return body

    answers = []
    for _ in range(12):
        answers.append(
            await api.http.put(
                f"/v1/campaigns/{campaign_id}", json=with_random_coupons(), headers=ADMIN
            )
        )
        if answers[-1].status_code != 201:
            break
    *taken, refused = answers
    assert [a.status_code for a in taken] == [201] * len(taken)
    assert len(taken) >= 2
    assert refused.status_code == 413, refused.text
    problem = refused.json()["detail"][0]
    assert problem["field"] == "body"
    assert f"its {len(taken) + 1} versions encode to" in problem["reason"]
    assert "compressed, over the" in problem["reason"]
    listed = await api.http.get(f"/v1/campaigns/{campaign_id}", headers=ADMIN)
    assert [v["version"] for v in listed.json()["versions"]] == list(range(1, len(taken) + 1))
    history = await read_all_versions(infra.kafka_bootstrap)
    assert len(history[campaign_id]) == len(taken)


def cli_env(infra: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``afflux campaigns apply`` on the broker and the orders service's Redis."""
    monkeypatch.setenv("AFFLUX_KAFKA_BOOTSTRAP", infra.kafka_bootstrap)
    monkeypatch.setenv("AFFLUX_REDIS_URL", orders_settings(infra).redis_url)
    monkeypatch.setenv("AFFLUX_ORDERS_REDIS_PREFIX", orders_settings(infra).orders_redis_prefix)


async def test_get_of_an_unknown_campaign_is_404(api: Any) -> None:
    response = await api.http.get("/v1/campaigns/never-published", headers=ADMIN)
    assert (response.status_code, response.json()["detail"][0]["field"]) == (404, "campaign_id")


def campaign_file(path: Path, campaign_id: str, *lines: str) -> Path:
    """A terms file of one campaign from time 0; ``lines``: more of its terms' fields."""
    path.write_text(
        "campaigns:\n"
        "  - effective_from: 0\n"
        "    terms:\n"
        f"      campaign_id: {campaign_id}\n"
        "      merchant_id: merchant-a\n"
        "      currency: EUR\n" + "".join(f"      {line}\n" for line in lines)
    )
    return path


def test_campaigns_apply_publishes_each_campaign_once(
    infra: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign_id = f"cli-{uuid.uuid4().hex[:8]}"
    terms = campaign_file(tmp_path / "campaigns.yaml", campaign_id)
    cli_env(infra, monkeypatch)

    assert campaigns_cli.main(["apply", str(terms)]) == 0
    assert campaigns_cli.main(["apply", str(terms)]) == 0

    assert capsys.readouterr().out.splitlines() == [
        f"{campaign_id}: published version 1",
        f"{campaign_id}: unchanged",
    ]
    history = asyncio.run(read_all_versions(infra.kafka_bootstrap))
    assert len(history[campaign_id]) == 1


def test_campaigns_apply_names_every_version_a_file_adds_in_one_line_per_campaign(
    infra: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two versions of one new campaign printed "published version 2" twice."""
    campaign_id = f"cli-{uuid.uuid4().hex[:8]}"
    version = (
        "  - effective_from: {at}\n"
        "    terms:\n"
        f"      campaign_id: {campaign_id}\n"
        "      merchant_id: merchant-a\n"
        "      currency: EUR\n"
        "      cookie_window_days: {days}\n"
    )
    terms = tmp_path / "campaigns.yaml"
    terms.write_text(
        "campaigns:\n"
        + version.format(at=0, days=30)
        + version.format(at=4_070_908_800_000, days=7)  # 2099-01-01
    )
    cli_env(infra, monkeypatch)

    assert campaigns_cli.main(["apply", str(terms)]) == 0

    assert capsys.readouterr().out.splitlines() == [f"{campaign_id}: published versions 1, 2"]


@pytest.mark.parametrize(
    ("effective_from", "published"),
    [
        pytest.param("2026-01-01T00:00:00Z", False, id="the first version's instant"),
        pytest.param(None, True, id="from its publication on"),
        pytest.param("2099-01-01T00:00:00Z", True, id="from a time to come"),
    ],
)
async def test_put_refuses_a_later_version_that_would_start_in_the_past(
    api: Any, effective_from: str | None, published: bool
) -> None:
    """A later version backdated into the past would change the terms of orders already
    decided and of lines already approved or paid, which every replay of the log then
    prices by the new terms (the live ledger and its own rebuild would disagree)."""
    campaign_id = f"back-{uuid.uuid4().hex[:8]}"
    first = entry(campaign_id)
    first["effective_from"] = "2026-01-01T00:00:00Z"  # a first version may start in the past
    taken = await api.http.put(f"/v1/campaigns/{campaign_id}", json=first, headers=ADMIN)
    assert taken.status_code == 201, taken.text
    later = entry(campaign_id, "50")
    if effective_from is not None:
        later["effective_from"] = effective_from

    answer = await api.http.put(f"/v1/campaigns/{campaign_id}", json=later, headers=ADMIN)

    listed = await api.http.get(f"/v1/campaigns/{campaign_id}", headers=ADMIN)
    percents = [v["terms"]["plan"]["sale"]["rate"]["percent"] for v in listed.json()["versions"]]
    if published:
        assert answer.status_code == 201, answer.text
        assert percents == ["10", "50"]
        return
    assert answer.status_code == 422, answer.text
    problem = answer.json()["detail"][0]
    assert problem["field"] == "effective_from"
    assert problem["reason"].startswith(
        "effective_from 2026-01-01T00:00:00.000+00:00 is before now"
    )
    assert percents == ["10"]


@pytest.mark.parametrize(
    ("effective_from", "published"),
    [
        # 2099-06-01 is a Monday and the first of a month: both cadences begin there
        pytest.param("2099-06-01T00:00:00Z", True, id="at a Monday that begins a month"),
        pytest.param("2099-06-02T00:00:00Z", False, id="inside a week and a month"),
        pytest.param("2099-06-08T00:00:00Z", False, id="a Monday inside a month"),
        pytest.param("2099-07-01T00:00:00Z", False, id="a first of the month inside a week"),
    ],
)
async def test_put_refuses_a_change_of_the_plans_period_inside_a_period(
    api: Any, effective_from: str, published: bool
) -> None:
    """Events before the change fall in the month, those after in the week, which began
    before it: both periods would pay a cap, a base fee and milestones of their own over
    the days they share."""
    campaign_id = f"cadence-{uuid.uuid4().hex[:8]}"
    taken = await api.http.put(
        f"/v1/campaigns/{campaign_id}", json=entry(campaign_id), headers=ADMIN
    )
    assert taken.status_code == 201, taken.text
    weekly = entry(campaign_id)
    weekly["terms"]["plan"]["period"] = "week"
    weekly["effective_from"] = effective_from

    answer = await api.http.put(f"/v1/campaigns/{campaign_id}", json=weekly, headers=ADMIN)

    listed = await api.http.get(f"/v1/campaigns/{campaign_id}", headers=ADMIN)
    cadences = [v["terms"]["plan"]["period"] for v in listed.json()["versions"]]
    if published:
        assert answer.status_code == 201, answer.text
        assert cadences == ["month", "week"]
        return
    assert answer.status_code == 422, answer.text
    problem = answer.json()["detail"][0]
    assert problem["field"] == "terms.plan.period"
    assert problem["reason"].startswith("the plan's period changes from month to week at ")
    assert cadences == ["month"]


def test_campaigns_apply_publishes_nothing_of_a_file_that_backdates_a_later_version(
    infra: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign_id = f"cli-back-{uuid.uuid4().hex[:8]}"

    def file_of(percent: str) -> Path:
        plan = f"plan: {{sale: {{rate: {{percent: '{percent}'}}}}}}"
        return campaign_file(tmp_path / f"campaigns-{percent}.yaml", campaign_id, plan)

    cli_env(infra, monkeypatch)
    assert campaigns_cli.main(["apply", str(file_of("10"))]) == 0
    assert campaigns_cli.main(["apply", str(file_of("10"))]) == 0  # the same again
    assert campaigns_cli.main(["apply", str(file_of("50"))]) == 2

    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{campaign_id}: published version 1",
        f"{campaign_id}: unchanged",
    ]
    assert "nothing published: effective_from: effective_from 1970-01-01" in captured.err
    history = asyncio.run(read_all_versions(infra.kafka_bootstrap))
    assert len(history[campaign_id]) == 1


def test_campaigns_apply_takes_now_from_redis_not_from_a_slow_machine_clock(
    infra: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator's laptop ten minutes slow let a later version start five minutes in
    the past: orders decided in those minutes were priced by the new version on every
    replay, while the live ledger kept what it had decided."""
    campaign_id = f"cli-slow-{uuid.uuid4().hex[:8]}"
    first = campaign_file(tmp_path / "first.yaml", campaign_id)
    five_minutes_ago = int(time.time() * 1000) - 300_000
    later = tmp_path / "later.yaml"
    later.write_text(
        first.read_text().replace("effective_from: 0", f"effective_from: {five_minutes_ago}")
        + "      plan: {sale: {rate: {percent: '50'}}}\n"
    )
    cli_env(infra, monkeypatch)
    assert campaigns_cli.main(["apply", str(first)]) == 0
    slow = campaigns_cli.system_clock
    monkeypatch.setattr(campaigns_cli, "system_clock", lambda: slow() - 600_000)

    assert campaigns_cli.main(["apply", str(later)]) == 2

    assert "nothing published: effective_from: " in capsys.readouterr().err
    history = asyncio.run(read_all_versions(infra.kafka_bootstrap))
    assert len(history[campaign_id]) == 1


async def test_put_refuses_terms_in_another_currency_than_the_campaigns(api: Any) -> None:
    """Every amount of a campaign is in its currency: a version in another one would
    leave older orders refundable only in a currency they were not paid in, and a payout
    run adding balances of both."""
    campaign_id = f"cur-{uuid.uuid4().hex[:8]}"
    first = await api.http.put(
        f"/v1/campaigns/{campaign_id}", json=entry(campaign_id), headers=ADMIN
    )
    assert first.status_code == 201, first.text
    in_yen = entry(campaign_id, "12")
    in_yen["terms"]["currency"] = "JPY"

    refused = await api.http.put(f"/v1/campaigns/{campaign_id}", json=in_yen, headers=ADMIN)

    assert refused.status_code == 422, refused.text
    problem = refused.json()["detail"][0]
    assert problem["field"] == "terms.currency"
    assert problem["reason"] == (
        f"campaign {campaign_id!r} is paid in EUR: a campaign's currency never changes"
        " (terms in JPY need a new campaign)"
    )
    listed = await api.http.get(f"/v1/campaigns/{campaign_id}", headers=ADMIN)
    assert [v["terms"]["currency"] for v in listed.json()["versions"]] == ["EUR"]


def test_campaigns_apply_publishes_nothing_of_a_file_that_changes_a_currency(
    infra: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kept, moved = (f"cli-{name}-{uuid.uuid4().hex[:8]}" for name in ("kept", "moved"))

    def file_of(*campaigns: tuple[str, str]) -> Path:
        path = tmp_path / f"campaigns-{len(campaigns)}.yaml"
        path.write_text(
            "campaigns:\n"
            + "".join(
                "  - effective_from: 0\n    terms:\n"
                f"      campaign_id: {cid}\n      merchant_id: merchant-a\n"
                f"      currency: {currency}\n"
                for cid, currency in campaigns
            )
        )
        return path

    cli_env(infra, monkeypatch)
    assert campaigns_cli.main(["apply", str(file_of((moved, "EUR")))]) == 0
    capsys.readouterr()

    changed = file_of((kept, "EUR"), (moved, "USD"))
    assert campaigns_cli.main(["apply", str(changed)]) == 2

    err = capsys.readouterr().err
    assert f"nothing published: currency: campaign {moved!r} is paid in EUR" in err
    history = asyncio.run(read_all_versions(infra.kafka_bootstrap))
    assert kept not in history  # listed before the refused one, and still not published
    assert [v.terms.currency for v in history[moved]] == ["EUR"]


async def test_put_refuses_terms_of_another_merchant_than_the_campaigns(api: Any) -> None:
    """Orders and refunds are checked against the merchant of the terms at their time: a
    version naming another merchant would let the former one report orders and refunds
    dated before the change, paying or taking back the campaign's creators."""
    campaign_id = f"mer-{uuid.uuid4().hex[:8]}"
    first = await api.http.put(
        f"/v1/campaigns/{campaign_id}", json=entry(campaign_id), headers=ADMIN
    )
    assert first.status_code == 201, first.text
    handed_over = entry(campaign_id, "12")
    handed_over["terms"]["merchant_id"] = "merchant-b"

    refused = await api.http.put(f"/v1/campaigns/{campaign_id}", json=handed_over, headers=ADMIN)

    assert refused.status_code == 422, refused.text
    problem = refused.json()["detail"][0]
    assert problem["field"] == "terms.merchant_id"
    assert problem["reason"] == (
        f"campaign {campaign_id!r} belongs to merchant-a: a campaign's merchant never changes"
        " (terms of merchant-b need a new campaign)"
    )
    listed = await api.http.get(f"/v1/campaigns/{campaign_id}", headers=ADMIN)
    versions = listed.json()["versions"]
    assert [v["terms"]["merchant_id"] for v in versions] == ["merchant-a"]
    assert versions[0]["terms"]["plan"]["sale"]["rate"]["percent"] == "10"


def merchants_file(path: Path, *campaigns: tuple[str, str]) -> Path:
    path.write_text(
        "campaigns:\n"
        + "".join(
            "  - effective_from: 0\n    terms:\n"
            f"      campaign_id: {cid}\n      merchant_id: {merchant}\n"
            "      currency: EUR\n"
            for cid, merchant in campaigns
        )
    )
    return path


def test_campaigns_apply_publishes_nothing_of_a_file_that_changes_a_merchant(
    infra: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kept, moved = (f"cli-{name}-{uuid.uuid4().hex[:8]}" for name in ("kept", "moved"))
    cli_env(infra, monkeypatch)
    first = merchants_file(tmp_path / "first.yaml", (moved, "merchant-a"))
    assert campaigns_cli.main(["apply", str(first)]) == 0
    capsys.readouterr()

    changed = merchants_file(tmp_path / "changed.yaml", (kept, "merchant-a"), (moved, "merchant-b"))
    assert campaigns_cli.main(["apply", str(changed)]) == 2

    err = capsys.readouterr().err
    assert (
        f"nothing published: merchant_id: campaign {moved!r} belongs to merchant-a:"
        " a campaign's merchant never changes (terms of merchant-b need a new campaign)"
    ) in err
    history = asyncio.run(read_all_versions(infra.kafka_bootstrap))
    assert kept not in history  # listed before the refused one, and still not published
    assert [v.terms.merchant_id for v in history[moved]] == ["merchant-a"]


def test_campaigns_apply_refuses_a_file_listing_a_new_campaign_under_two_merchants(
    infra: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file's own first entry of a campaign fixes its merchant for the entries after."""
    campaign_id = f"cli-twice-{uuid.uuid4().hex[:8]}"
    cli_env(infra, monkeypatch)
    twice = merchants_file(
        tmp_path / "twice.yaml", (campaign_id, "merchant-a"), (campaign_id, "merchant-b")
    )

    assert campaigns_cli.main(["apply", str(twice)]) == 2

    err = capsys.readouterr().err
    assert f"nothing published: merchant_id: campaign {campaign_id!r} belongs to merchant-a" in err
    history = asyncio.run(read_all_versions(infra.kafka_bootstrap))
    assert campaign_id not in history


def test_campaigns_apply_names_the_bad_field_of_an_invalid_file(
    infra: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terms = tmp_path / "campaigns.yaml"
    terms.write_text("campaigns:\n  - terms: {campaign_id: x, merchant_id: m, currency: EURO}\n")
    cli_env(infra, monkeypatch)

    assert campaigns_cli.main(["apply", str(terms)]) == 2

    assert "campaigns.0.terms.currency" in capsys.readouterr().err


def test_campaigns_apply_refuses_an_open_allowed_domain_and_publishes_nothing(
    infra: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign_id = f"cli-{uuid.uuid4().hex[:8]}"
    terms = tmp_path / "campaigns.yaml"
    terms.write_text(
        "campaigns:\n"
        "  - terms:\n"
        f"      campaign_id: {campaign_id}\n"
        "      merchant_id: merchant-a\n"
        "      currency: EUR\n"
        "      allowed_domains: [shop.example.com, com.au]\n"
    )
    cli_env(infra, monkeypatch)

    assert campaigns_cli.main(["apply", str(terms)]) == 2

    err = capsys.readouterr().err
    assert 'campaigns.0.terms: allowed_domains[1]: "com.au" is a public suffix' in err
    assert campaign_id not in asyncio.run(read_all_versions(infra.kafka_bootstrap))


def test_campaigns_apply_waits_for_the_campaign_lock_the_admin_api_takes(
    infra: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Held by a PUT of the same campaign, the lock keeps the file from being published
    (two publishers reading the same latest version would take the same number); once
    it is free, the file is published and the lock released."""
    free, held = (f"cli-{name}-{uuid.uuid4().hex[:8]}" for name in ("free", "held"))
    terms = tmp_path / "campaigns.yaml"
    terms.write_text(
        "campaigns:\n"
        + "".join(
            "  - effective_from: 0\n    terms:\n"
            f"      campaign_id: {cid}\n      merchant_id: merchant-a\n      currency: EUR\n"
            for cid in (free, held)
        )
    )
    cli_env(infra, monkeypatch)
    monkeypatch.setattr("afflux.orders.terms_publisher.LOCK_WAIT_S", 0.3)
    settings = orders_settings(infra)
    key = f"{settings.orders_redis_prefix}:terms-lock:{{}}"

    async def redis_do(*command: Any) -> Any:
        redis = Redis.from_url(settings.redis_url)
        try:
            return await redis.execute_command(*command)
        finally:
            await redis.aclose()

    asyncio.run(redis_do("SET", key.format(held), "an-admin-api-publication", "PX", 10_000))
    assert campaigns_cli.main(["apply", str(terms)]) == 1
    assert "nothing published: another publication of this campaign" in capsys.readouterr().err
    assert asyncio.run(redis_do("GET", key.format(held))) == b"an-admin-api-publication"
    history = asyncio.run(read_all_versions(infra.kafka_bootstrap))
    assert free not in history  # not even the campaign whose lock was free
    assert held not in history
    assert asyncio.run(redis_do("EXISTS", key.format(free))) == 0  # released on the way out

    asyncio.run(redis_do("DEL", key.format(held)))
    assert campaigns_cli.main(["apply", str(terms)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{free}: published version 1",
        f"{held}: published version 1",
    ]
    assert asyncio.run(redis_do("EXISTS", key.format(free), key.format(held))) == 0
    assert LOCK_WAIT_S >= 10  # the default leaves a running publication time enough
