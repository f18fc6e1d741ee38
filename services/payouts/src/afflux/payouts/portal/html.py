"""The portal's HTML, built from escaped pieces (pure): the layout, tables, money,
dates, the period picker and chart blocks.

Every value a page shows passes through ``esc`` (or a helper that calls it). Charts
are a ``<div>`` and a JSON data block (``type="application/json"``: never run) that
``portal.js`` draws with the vendored uPlot; the pages carry no inline script or style,
so the Content-Security-Policy allows scripts and styles of this origin only.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from afflux.payouts.portal.timeline import Daily
from afflux.shared.core.journal.explain import money
from afflux.shared.core.money import CURRENCY_EXPONENTS
from afflux.shared.core.review import HELD_UNTIL

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it a browser posts a form with "Origin: null", which the
    # CSRF check must refuse; same-origin keeps the referrer off every other site.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
CONVERSION_RATE_DEFINITION = (
    "Conversion rate = conversions ÷ valid clicks (clicks with no quality flag: not a bot, "
    "not a duplicate, not rate-limited, not embedded), both counted in the period shown."
)


_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def day(ms: int) -> str:
    if ms >= HELD_UNTIL:  # a conversion held for review: no date until a decision
        return "a review decision"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def amount(minor: int, currency: str) -> str:
    return esc(money(minor, currency))


def url(path: str, **query: str | None) -> str:
    """``path`` with the query values that are set (empty ones left out)."""
    wanted = {k: v for k, v in query.items() if v}
    return path + ("?" + urlencode(wanted) if wanted else "")


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: frozenset[int] = frozenset(),
    cls: str = "",
) -> str:
    """A table of already-escaped cells; columns in ``numeric`` align right."""

    def cell(tag: str, i: int, text: str) -> str:
        attr = ' class="num"' if i in numeric else ""
        return f"<{tag}{attr}>{text}</{tag}>"

    head = "".join(cell("th", i, esc(h)) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    klass = f' class="{esc(cls)}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str, *, nav: str = "", csrf: str = "", logged_in: bool = True) -> str:
    logout = (
        '<form method="post" action="/logout" class="inline">'
        f'<input type="hidden" name="csrf_token" value="{esc(csrf)}">'
        '<button type="submit" id="logout">Log out</button></form>'
        if logged_in
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} · afflux</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="/portal/assets/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/portal/assets/uPlot.min.css">'
        '<link rel="stylesheet" href="/portal/assets/portal.css">'
        "</head><body>"
        f'<header><strong>afflux</strong><nav class="tabs">{nav}</nav>{logout}</header>'
        f"<main><h1>{esc(title)}</h1>{body}</main>"
        '<script src="/portal/assets/uPlot.iife.min.js"></script>'
        '<script src="/portal/assets/portal.js"></script>'
        "</body></html>"
    )


def period_picker(
    action: str, periods: Sequence[str], chosen: str, current: str, **keep: str | None
) -> str:
    """A GET form choosing the period; ``keep`` are other query values it carries on."""
    options = "".join(
        f'<option value="{esc(p)}"{" selected" if p == chosen else ""}>'
        f"{esc(p)}{' (current)' if p == current else ''}</option>"
        for p in sorted({*periods, current, chosen}, reverse=True)
    )
    hidden = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in keep.items() if v
    )
    return (
        f'<form method="get" action="{esc(action)}" id="period-picker">'
        f'<label>Period <select name="period" id="period">{options}</select></label>{hidden} '
        '<button type="submit">Show</button></form>'
    )


def period_label(chosen: str, current: str) -> str:
    """What the page says it shows: the period, and "current period" only when it is."""
    which = "current period" if chosen == current else "past period"
    return f'<p id="period-label">Showing {esc(chosen)} ({which})</p>'


def chart(
    element_id: str,
    title: str,
    series: Daily,
    fields: Sequence[tuple[str, str]],
    currency: str = "",
    span: tuple[int, int] | None = None,
) -> str:
    """A chart of ``series``' ``fields`` (field, label); money fields in major units. The
    time axis runs over ``span`` ([start, end) in ms: the period shown) when given."""
    exponent = CURRENCY_EXPONENTS.get(currency, 0)
    lines: list[dict[str, Any]] = []
    for field, label in fields:
        values: list[float | int] = list(series.values[field])
        entry: dict[str, Any] = {"label": label, "field": field}
        if field.endswith("_minor"):
            values = [v / 10**exponent for v in values]
            entry.update(money=True, decimals=exponent)
        entry["values"] = values
        lines.append(entry)
    spec = {
        "title": title,
        "unit": currency if any(f.endswith("_minor") for f, _ in fields) else "",
        "range": [span[0] // 1000, span[1] // 1000] if span else None,
        "x": [start // 1000 for start in series.starts],
        "series": lines,
    }
    # No "<", ">" or "&" at all inside the script element (JSON escapes read back the
    # same): "</script>" would end it, and "<!--" with "<script" would make the parser
    # take the rest of the page as script data.
    data = json.dumps(spec).translate(_SCRIPT_SAFE)
    return (
        f'<div class="chart" id="{esc(element_id)}"></div>'
        f'<script type="application/json" class="chart-data" data-target="{esc(element_id)}">'
        f"{data}</script>"
    )
