"use strict";
(function () {
  const KPIS = [
    ["clicks", "Clicks", "count"],
    ["unique_clicks", "Unique clicks", "count"],
    ["conversions", "Conversions", "count"],
    ["conversion_rate", "Conversion rate", "percent"],
    ["revenue_minor", "Revenue", "money"],
    ["refunds_minor", "Refunds", "money"],
    ["net_revenue_minor", "Net revenue", "money"],
    ["commission_minor", "Commission", "money"],
    ["epc_minor", "EPC (commission per click)", "money"],
    ["cpa_minor", "CPA (commission per conversion)", "money"],
    ["aov_minor", "AOV (average order value)", "money"],
    ["roi", "ROI", "ratio"],
    ["new_customer_share", "New-customer share", "percent"],
  ];
  const CREATOR_COLUMNS = [
    ["clicks", "Clicks", "count"],
    ["conversions", "Conversions", "count"],
    ["net_revenue_minor", "Net revenue", "money"],
    ["commission_minor", "Commission", "money"],
    ["epc_minor", "EPC", "money"],
  ];
  const SERIES = [
    ["clicks", "Clicks", ["clicks"]],
    ["conversions", "Conversions", ["conversions"]],
    ["commission", "Commission", ["commission_minor", "commission"]],
  ];
  const TIME_KEYS = ["start", "bucket_start", "start_ms", "from", "t", "ts", "time", "at",
    "date", "day", "bucket", "label", "period"];
  const PASSED_ON = ["period", "campaign_id", "as_of"];
  const SVG = "http://www.w3.org/2000/svg";

  const parts = location.pathname.split("/");
  const at = parts.lastIndexOf("reports");
  const root = parts.slice(0, at).join("/");
  const kind = parts[at + 1];
  const id = decodeURIComponent(parts[at + 2] || "");
  const page = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const key of PASSED_ON) {
    if (page.get(key)) query.set(key, page.get(key));
  }
  const qs = query.toString() ? "?" + query.toString() : "";
  const base = root + "/v1/kpis/" + kind + "/" + encodeURIComponent(id);

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      let detail = "";
      try {
        const body = await response.json();
        detail = Array.isArray(body.detail)
          ? body.detail.map((d) => (d.field ? d.field + ": " : "") + d.reason).join("; ")
          : String(body.detail || "");
      } catch (e) { /* not JSON */ }
      throw new Error(url + ": HTTP " + response.status + (detail ? " (" + detail + ")" : ""));
    }
    return response.json();
  }

  function rowsOf(body) {
    if (Array.isArray(body)) return body;
    for (const key of ["creators", "campaigns", "kpis", "items"]) {
      if (body && Array.isArray(body[key])) return body[key];
    }
    return body ? [body] : [];
  }

  function bucketsOf(body) {
    if (Array.isArray(body)) return body;
    for (const key of ["buckets", "series", "points", "items", "data"]) {
      if (body && Array.isArray(body[key])) return body[key];
    }
    return [];
  }

  function fractionDigits(currency) {
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: currency })
        .resolvedOptions().maximumFractionDigits;
    } catch (e) {
      return 2;
    }
  }

  function format(value, type, currency) {
    if (value === null || value === undefined || value === "") return "—";
    const number = Number(value);
    if (!Number.isFinite(number)) return String(value);
    if (type === "count") return number.toLocaleString("en");
    if (type === "percent") return (number * 100).toLocaleString("en", { maximumFractionDigits: 2 }) + " %";
    if (type === "ratio") return number.toLocaleString("en", { maximumFractionDigits: 4 });
    const digits = fractionDigits(currency || "EUR");
    const major = (number / Math.pow(10, digits)).toLocaleString("en", {
      minimumFractionDigits: digits, maximumFractionDigits: digits + 2,
    });
    return currency ? major + " " + currency : major;
  }

  function cell(key, value, type, currency, column) {
    const attrs = { "data-kpi": key, "data-value": value === null || value === undefined ? "" : value };
    if (column !== undefined) attrs["data-column"] = column;
    return el("td", attrs, format(value, type, currency));
  }

  function heading(row) {
    const who = kind === "campaigns" ? row.campaign_id : (row.campaign_id || row.affiliate_id);
    return [who, row.currency].filter(Boolean).join(" · ") || id;
  }

  function renderKpis(rows) {
    const table = document.getElementById("kpis");
    const head = el("tr");
    head.appendChild(el("th", {}, "KPI"));
    rows.forEach((row, i) => head.appendChild(el("th", { "data-column": i }, heading(row))));
    table.tHead.replaceChildren(head);
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const [key, label, type] of KPIS) {
      const tr = el("tr", { "data-row": key });
      tr.appendChild(el("th", { scope: "row" }, label));
      rows.forEach((row, i) => tr.appendChild(cell(key, row[key], type, row.currency, i)));
      body.appendChild(tr);
    }
    if (!rows.length) body.appendChild(el("tr", {}, "No figures for this selection."));
  }

  function renderCreators(rows, currency) {
    const section = document.getElementById("creators-section");
    const table = document.getElementById("creators");
    const head = el("tr");
    head.appendChild(el("th", {}, "Creator"));
    for (const [, label] of CREATOR_COLUMNS) head.appendChild(el("th", {}, label));
    table.tHead.replaceChildren(head);
    const body = table.tBodies[0];
    body.replaceChildren();
    const sorted = rows.slice().sort((a, b) => (b.commission_minor || 0) - (a.commission_minor || 0));
    for (const row of sorted.slice(0, 200)) {
      const tr = el("tr", { "data-creator": row.affiliate_id });
      tr.appendChild(el("td", {}, row.affiliate_id));
      for (const [key, , type] of CREATOR_COLUMNS) {
        tr.appendChild(cell(key, row[key], type, row.currency || currency));
      }
      body.appendChild(tr);
    }
    section.hidden = rows.length === 0;
  }

  function timeLabel(value, spanMs) {
    if (typeof value === "number" && value > 1e11) {
      const iso = new Date(value).toISOString();
      return spanMs < 2 * 86400000 ? iso.slice(5, 16).replace("T", " ") : iso.slice(0, 10);
    }
    return String(value);
  }

  function valueOf(bucket, keys) {
    for (const key of keys) {
      if (bucket[key] !== undefined && bucket[key] !== null) return Number(bucket[key]);
    }
    return 0;
  }

  function renderChart(buckets, currency) {
    const width = 760, panel = 150, left = 70, right = 20, top = 28, bottom = 26;
    const chart = svg("svg", {
      width: width, height: panel * SERIES.length, role: "img", id: "series-chart",
      viewBox: "0 0 " + width + " " + panel * SERIES.length,
      "aria-label": "Clicks, conversions and commission over time",
      "data-buckets": buckets.length,
    });
    const times = buckets.map((b) => {
      for (const key of TIME_KEYS) if (b[key] !== undefined) return b[key];
      return "";
    });
    const numeric = times.filter((t) => typeof t === "number");
    const span = numeric.length > 1 ? Math.max(...numeric) - Math.min(...numeric) : 0;
    const labels = times.map((t) => timeLabel(t, span));
    const plotW = width - left - right;
    const x = (i) => left + (buckets.length > 1 ? (i * plotW) / (buckets.length - 1) : plotW / 2);
    SERIES.forEach(([name, title, keys], p) => {
      const y0 = p * panel;
      const values = buckets.map((b) => valueOf(b, keys));
      const total = values.reduce((a, v) => a + v, 0);
      const max = Math.max(1, ...values);
      const plotH = panel - top - bottom;
      const y = (v) => y0 + top + plotH - (v * plotH) / max;
      const type = name === "commission" ? "money" : "count";
      const group = svg("g", { class: "series", "data-series": name, "data-total": total });
      group.appendChild(svg("text", { x: left, y: y0 + 16, class: "title" },
        title + " — total " + format(total, type, currency)));
      group.appendChild(svg("line", { x1: left, x2: width - right, y1: y(0), y2: y(0), class: "axis" }));
      group.appendChild(svg("line", { x1: left, x2: left, y1: y(max), y2: y(0), class: "axis" }));
      group.appendChild(svg("text", { x: left - 6, y: y(max) + 4, "text-anchor": "end" }, format(max, type, currency)));
      group.appendChild(svg("text", { x: left - 6, y: y(0) + 4, "text-anchor": "end" }, "0"));
      if (buckets.length) {
        const points = values.map((v, i) => x(i).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
        group.appendChild(svg("polyline", { points: points, class: "line " + name }));
        values.forEach((v, i) => {
          const dot = svg("circle", {
            cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 3, class: "point " + name,
            "data-series": name, "data-index": i, "data-value": v, "data-time": times[i],
          });
          dot.appendChild(svg("title", {}, labels[i] + ": " + format(v, type, currency)));
          group.appendChild(dot);
        });
        const ticks = buckets.length > 2 ? [0, Math.floor((buckets.length - 1) / 2), buckets.length - 1]
          : buckets.map((_, i) => i);
        for (const i of ticks) {
          const anchor = ticks.length > 1 && i === 0 ? "start" : i === buckets.length - 1 && i > 0 ? "end" : "middle";
          group.appendChild(svg("text", { x: x(i), y: y0 + panel - 8, "text-anchor": anchor }, labels[i]));
        }
      } else {
        group.appendChild(svg("text", { x: left + plotW / 2, y: y0 + panel / 2, "text-anchor": "middle" },
          "no data in this period"));
      }
      chart.appendChild(group);
    });
    document.getElementById("chart").replaceChildren(chart);
  }

  async function main() {
    const noun = kind === "campaigns" ? "Campaign" : "Creator";
    document.title = noun + " " + id + " · afflux report";
    document.getElementById("title").textContent = noun + " " + id;
    const scope = PASSED_ON.filter((k) => query.get(k)).map((k) => k.replace("_id", "").replace("_", " ") + " " + query.get(k));
    document.getElementById("subtitle").textContent = scope.length ? scope.join(" · ") : "current period";
    const wanted = [getJSON(base + qs), getJSON(base + "/series" + qs)];
    if (kind === "campaigns") {
      const creators = new URLSearchParams(query);
      creators.set("campaign_id", id);
      wanted.push(getJSON(root + "/v1/kpis/creators?" + creators.toString()));
    }
    const [kpis, series, creators] = await Promise.all(wanted);
    const rows = rowsOf(kpis);
    const currency = rows.length ? rows[0].currency : (series && series.currency);
    renderKpis(rows);
    renderChart(bucketsOf(series), (series && series.currency) || currency);
    if (creators) {
      renderCreators(rowsOf(creators).filter((r) => !r.campaign_id || r.campaign_id === id), currency);
    }
    document.getElementById("status").textContent = "";
    document.body.dataset.state = "ready";
  }

  main().catch((error) => {
    const status = document.getElementById("status");
    status.textContent = "Could not load the report: " + error.message;
    status.className = "error";
    document.body.dataset.state = "error";
  });
})();
