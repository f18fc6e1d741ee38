"""A chart's data block never ends early or swallows the page, whatever its title holds
(a campaign id is the merchant's text)."""

from __future__ import annotations

import json
import re

import pytest

from afflux.payouts.portal import html as h
from afflux.payouts.portal.timeline import Daily

pytestmark = pytest.mark.unit

HOSTILE = [
    "</script><script>alert(1)</script>",  # ends the block and opens a script
    "<!--<script>",  # puts the parser in script data escaped state
    "a & b > c",  # entities and brackets
    "</SCRIPT >",  # case and space
]


@pytest.mark.parametrize("title", HOSTILE)
def test_a_hostile_title_stays_inside_the_data_block_and_reads_back_the_same(
    title: str,
) -> None:
    series = Daily(starts=(0, 86_400_000), values={"clicks": (1, 2)})
    block = h.chart("c1", title, series, [("clicks", title)])

    data = re.fullmatch(
        r'<div class="chart" id="c1"></div>'
        r'<script type="application/json" class="chart-data" data-target="c1">(.*)</script>',
        block,
        re.DOTALL,
    )
    assert data is not None
    assert not set(data.group(1)) & {"<", ">", "&"}
    spec = json.loads(data.group(1))
    assert spec["title"] == title
    assert spec["series"][0]["label"] == title
