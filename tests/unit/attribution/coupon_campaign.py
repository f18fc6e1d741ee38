"""One EUR campaign paying 10 % per sale, its coupon ANA naming the creator ana, at a
fixed time: the worker tests that feed records of one order share it."""

from __future__ import annotations

from afflux.shared.core.terms import CampaignTerms, TermsVersion

TS = 1_793_491_200_000
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "camp",
        "merchant_id": "merchant",
        "currency": "EUR",
        "coupons": {"ANA": "ana"},
        "grace_seconds": 1,
        "plan": {"sale": {"rate": {"percent": "10"}}},
    }
)
VERSION = TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS)
