"""The brand page says in words why orders went unattributed: every reason the event
contract names has its words (seven renewal reasons showed as raw codes)."""

from __future__ import annotations

from typing import get_args

import pytest

from afflux.payouts.portal.brand_pages import REASON_WORDS
from afflux.shared.events import UnattributedReason

pytestmark = pytest.mark.unit


def test_every_unattributed_reason_has_words_on_the_brand_page() -> None:
    assert set(REASON_WORDS) == set(get_args(UnattributedReason))
