"""What live times a creator's own key may publish (``creator_live_problem``): a stream
as it starts, its end as it ends, never a moved start or a second end."""

from __future__ import annotations

import pytest

from afflux.shared.core.content import CREATOR_LIVE_LAG_MS as LAG
from afflux.shared.core.content import creator_live_problem

pytestmark = pytest.mark.unit

NOW = 1_796_000_000_000
START = NOW - 2 * 3_600_000


@pytest.mark.parametrize(
    ("name", "start", "end", "recorded", "republished", "field"),
    [
        ("new, started at the lag", NOW - LAG, None, None, False, None),
        ("new, started 1 ms before the lag", NOW - LAG - 1, None, None, False, "live_started_at"),
        ("new, a short stream reported as it ends", NOW - LAG, NOW, None, False, None),
        ("not live (no start)", None, None, None, True, None),
        ("again, its end at the lag", START, NOW - LAG, (START, None), True, None),
        ("again, its end 1 ms before the lag", START, NOW - LAG - 1, (START, None), True,
         "live_ended_at"),
        ("again, still live", START, None, (START, None), True, None),
        ("again, the start 1 ms earlier", START - 1, NOW, (START, None), True, "live_started_at"),
        ("again, the start 1 ms later", START + 1, NOW, (START, None), True, "live_started_at"),
        ("again, the same end (a retry)", START, NOW - 3 * LAG, (START, NOW - 3 * LAG), True,
         None),
        ("again, another end", START, NOW, (START, NOW - 3 * LAG), True, "live_ended_at"),
        ("again, its end taken away", START, None, (START, NOW - 3 * LAG), True, "live_ended_at"),
        ("published on the topic, not here", START, NOW, None, True, "content_id"),
    ],
)  # fmt: skip
def test_a_creators_own_stream_times(
    name: str,
    start: int | None,
    end: int | None,
    recorded: tuple[int, int | None] | None,
    republished: bool,
    field: str | None,
) -> None:
    problem = creator_live_problem(start, end, NOW, recorded, republished)
    assert (problem[0] if problem else None) == field, problem
