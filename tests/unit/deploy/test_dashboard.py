"""The Grafana dashboard asks Prometheus only for series afflux exports, in valid PromQL
(promtool), per campaign and data source, with money in major units of its currency."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from afflux.attribution.metrics import AttributionMetrics
from afflux.clicks.metrics import ClicksMetrics
from afflux.orders.metrics import OrdersMetrics
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.redis_memory import RedisMemory
from afflux.shared.core.money import CURRENCY_EXPONENTS
from afflux.shared.io.lag import lag_gauge

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD: dict[str, Any] = json.loads(
    (ROOT / "deploy/grafana/dashboards/afflux.json").read_text(encoding="utf-8")
)
METRIC = re.compile(r"(?<![:\w])afflux_[a-z0-9_]+")
# What Grafana substitutes before it sends a query, with values Prometheus accepts.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "6h",
    '"$campaign"': '".*"',
}
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def _registries() -> list[CollectorRegistry]:
    payouts = PayoutsMetrics()
    payouts.redis_memory.last = RedisMemory(used_bytes=1, max_bytes=1, evicted_keys=0)
    lag = CollectorRegistry()
    lag_gauge(lag)
    return [
        ClicksMetrics().registry,
        OrdersMetrics().registry,
        AttributionMetrics().registry,
        payouts.registry,
        lag,
    ]


def _exported() -> tuple[set[str], set[str]]:
    """Series names the services expose on /metrics, and the histograms' base names."""
    names: set[str] = set()
    histograms: set[str] = set()
    for registry in _registries():
        for family in registry.collect():
            names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type])
            if family.type == "histogram":
                histograms.add(family.name)
    return names, histograms


def _panels() -> list[dict[str, Any]]:
    return list(DASHBOARD["panels"])


def _exprs() -> list[str]:
    return [t["expr"] for panel in _panels() for t in panel.get("targets", [])]


def _variable(name: str) -> dict[str, Any]:
    found = [v for v in DASHBOARD["templating"]["list"] if v["name"] == name]
    assert len(found) == 1, f"no dashboard variable {name!r}"
    return found[0]


def test_every_panel_has_a_query() -> None:
    assert [p["title"] for p in _panels() if not p.get("targets")] == []


def test_queries_name_only_series_afflux_exports() -> None:
    exported, histograms = _exported()
    used = {name for expr in _exprs() for name in METRIC.findall(expr)}
    assert used
    bare = sorted(used & histograms)
    assert bare == [], "a histogram's base name has no series: use _bucket, _sum or _count"
    assert sorted(used - exported) == []


def test_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    # promtool parses each expression as a recording rule; Grafana's variables are
    # replaced by what Grafana would send.
    rules = []
    for i, expr in enumerate(_exprs()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"an unknown Grafana variable in {expr!r}"
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_query_reads_the_chosen_data_source() -> None:
    source = _variable("datasource")
    assert source["type"] == "datasource"
    assert source["query"] == "prometheus"
    provisioned = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert source["current"]["value"] == provisioned["datasources"][0]["uid"]
    used = {p["datasource"]["uid"] for p in _panels()}
    used |= {t["datasource"]["uid"] for p in _panels() for t in p["targets"]}
    assert used == {"${datasource}"}


def test_queries_on_campaign_series_keep_to_the_chosen_campaigns() -> None:
    campaign = _variable("campaign")
    assert campaign["includeAll"]
    assert campaign["allValue"] == ".*"
    labelled = {
        "afflux_clicks_total",
        "afflux_orders_total",
        "afflux_refunds_total",
        "afflux_conversions_total",
        "afflux_unattributed_orders_total",
        "afflux_reversals_total",
        "afflux_commission_minor_total",
        "afflux_cap_cuts_total",
    }
    unfiltered = [
        selector
        for expr in _exprs()
        for selector in re.findall(r"(afflux_[a-z0-9_]+)(\{[^}]*\})?", expr)
        if selector[0] in labelled and 'campaign=~"$campaign"' not in selector[1]
    ]
    assert unfiltered == []


def _commission_exprs() -> list[str]:
    return [e for e in _exprs() if "afflux_commission_minor_total" in e]


def test_commission_is_shown_in_major_units_of_its_currency() -> None:
    # Each currency is in exactly one selector, divided by 10 ** its exponent.
    exprs = _commission_exprs()
    assert exprs
    for expr in exprs:
        scale: dict[str, int] = {}
        for codes, divisor in re.findall(r'currency=~"([A-Z|]+)"\}\[[^]]+\]\)\)( / \d+)?', expr):
            for code in codes.split("|"):
                assert code not in scale, f"{code} twice in {expr!r}"
                scale[code] = int(divisor.removeprefix(" / ")) if divisor else 1
        assert scale == {code: 10**e for code, e in CURRENCY_EXPONENTS.items()}


def test_commission_panels_show_each_currency_with_its_decimals() -> None:
    panels = [p for p in _panels() if any(t["expr"] in _commission_exprs() for t in p["targets"])]
    assert panels
    for panel in panels:
        assert all("{{currency}}" in t["legendFormat"] for t in panel["targets"])
        # One override per exponent, naming its currencies: ".* (JPY|KRW)$"; and the
        # symbol of each currency Grafana has a unit for: ".* EUR$".
        decimals: dict[str, int] = {}
        units: dict[str, str] = {}
        for o in panel["fieldConfig"]["overrides"]:
            options = o["matcher"]["options"].removeprefix(".* ").removesuffix("$")
            codes = options.removeprefix("(").removesuffix(")")
            for p in o["properties"]:
                if p["id"] == "decimals":
                    for code in codes.split("|"):
                        assert code not in decimals, f"{code} in two overrides"
                        decimals[code] = p["value"]
                if p["id"] == "unit":
                    units[codes] = p["value"]
        assert decimals == CURRENCY_EXPONENTS
        assert units["EUR"] == "currencyEUR"
        assert units["JPY"] == "currencyJPY"
        assert all(unit == f"currency{code}" for code, unit in units.items())


def test_conversion_rate_is_the_kpi_apis_conversions_per_valid_click() -> None:
    # docs/payouts.md, KPIs: conversion_rate = conversions / unique (valid) clicks, the
    # clicks with no quality flag; the clicks service counts those as outcome="redirected".
    rates = [p for p in _panels() if p["title"].startswith("Conversion rate")]
    assert len(rates) == 1
    [expr] = [t["expr"] for t in rates[0]["targets"]]
    numerator, _, denominator = expr.partition("\n/ ")
    assert "afflux_conversions_total{" in numerator
    assert re.search(r'afflux_clicks_total\{[^}]*outcome="redirected"', denominator)
    assert rates[0]["fieldConfig"]["defaults"]["unit"] == "percentunit"
