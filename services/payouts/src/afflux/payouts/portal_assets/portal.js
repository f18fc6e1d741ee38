// Draws every chart of a portal page with uPlot from the JSON data block beside it.
// A block holds {title, unit, x: [epoch seconds of each day], series: [{label, values}]};
// days without activity are zeros in the data, so the time axis is real: the line
// never joins two distant days as if nothing lay between them.
(function () {
  "use strict";
  var colours = ["#1d5fa8", "#c2410c", "#15803d", "#7c3aed"];
  window.afxCharts = [];
  document.querySelectorAll("script.chart-data").forEach(function (block) {
    var spec = JSON.parse(block.textContent);
    var target = document.getElementById(block.dataset.target);
    var series = [{}];
    var data = [spec.x];
    spec.series.forEach(function (s, i) {
      series.push({
        label: s.label,
        stroke: colours[i % colours.length],
        width: 2,
        points: { show: true, size: 6 },
        // Grouped as the tables print it (133,333.69), in the chart's currency.
        value: function (u, v) {
          if (v == null) { return ""; }
          var opts = s.money ? { minimumFractionDigits: s.decimals, maximumFractionDigits: s.decimals } : {};
          var text = v.toLocaleString("en-US", opts);
          return s.money && spec.unit ? text + " " + spec.unit : text;
        }
      });
      data.push(s.values);
    });
    var options = {
      title: spec.title,
      width: Math.min(960, (target.parentElement || document.body).clientWidth || 800),
      height: 280,
      series: series,
      // Days are UTC days, as the tables say: in the viewer's own zone west of UTC every
      // point and date label fell on the day before.
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      // The period's whole span, so one busy day is not stretched over years.
      scales: {
        x: spec.range ? { time: true, range: spec.range } : { time: true },
        // Counts and money start at zero, so a flat day does not look like a drop.
        y: { range: function (u, min, max) { return [Math.min(0, min), max > 0 ? max * 1.1 : 1]; } }
      },
      // Ticks on whole days only, labelled as the tables date them: a week's chart put
      // ticks every 12 hours ("12pm"), between points that are days.
      axes: [
        {
          incrs: [86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400, 91 * 86400],
          values: function (u, splits) {
            return splits.map(function (ts) {
              return new Date(ts * 1e3).toLocaleDateString("en-US", {
                month: "short", day: "numeric", timeZone: "UTC"
              });
            });
          }
        },
        { label: spec.unit || "" }
      ]
    };
    var chart = new uPlot(options, data, target);
    target.dataset.points = String(spec.x.length);
    window.afxCharts.push({ id: block.dataset.target, spec: spec, chart: chart });
  });
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
  document.body.dataset.state = "ready";
})();
