// effbench site: draws the figures of a page with Plotly (assets/plotly.min.js) from the JSON in
// <script id="effbench-data" type="application/json">. Every string in that JSON is already
// HTML-escaped by effbench/render/site.py; this file never builds HTML from data.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("effbench-data").textContent);
  var cfg = { responsive: true, displaylogo: false };

  function historyPage() {
    var sel = document.getElementById("run");
    function draw() {
      var figs = data.figures[sel.value] || [];
      var box = document.getElementById("history");
      while (box.firstChild) box.removeChild(box.firstChild);
      figs.forEach(function (f, i) {
        var div = document.createElement("div");
        div.className = "plot history-plot";
        div.id = "history-" + i;
        box.appendChild(div);
        Plotly.newPlot(div, f.data, f.layout, cfg);
      });
    }
    sel.addEventListener("change", draw);
    draw();
  }

  // Indices of the points no other point dominates (at least as good on both axes, better on one).
  function front(pts, xHigh, yHigh) {
    function ge(a, b, high) { return high ? a >= b : a <= b; }
    function gt(a, b, high) { return high ? a > b : a < b; }
    var out = pts.filter(function (p) {
      return !pts.some(function (q) {
        return q !== p && ge(q.x, p.x, xHigh) && ge(q.y, p.y, yHigh) && (gt(q.x, p.x, xHigh) || gt(q.y, p.y, yHigh));
      });
    });
    return out.sort(function (a, b) { return a.x - b.x; });
  }

  function explorerPage() {
    var ids = ["x-metric", "y-metric", "scenario"];
    function checked(name) {
      return Array.prototype.filter.call(document.querySelectorAll("input[name=" + name + "]"), function (c) {
        return c.checked;
      }).map(function (c) { return Number(c.value); });
    }
    function draw() {
      var xm = document.getElementById("x-metric").value, ym = document.getElementById("y-metric").value;
      var scen = Number(document.getElementById("scenario").value), fams = checked("family");
      var pts = data.points.filter(function (p) {
        return p.scenario === scen && (p.baseline || p.families.some(function (f) { return fams.indexOf(f) >= 0; }))
          && p.m[xm] && p.m[ym];
      }).map(function (p) { return { p: p, x: p.m[xm].value, y: p.m[ym].value }; });
      function trace(sub, name, marker) {
        return {
          type: "scatter", mode: "markers", name: name, marker: marker,
          x: sub.map(function (q) { return q.x; }), y: sub.map(function (q) { return q.y; }),
          text: sub.map(function (q) { return q.p.label; }),
          hovertemplate: "%{text}<br>x %{x:.4g}<br>y %{y:.4g}<extra></extra>",
          error_x: { type: "data", symmetric: false, array: sub.map(function (q) { return q.p.m[xm].hi - q.x; }),
                     arrayminus: sub.map(function (q) { return q.x - q.p.m[xm].lo; }), thickness: 1 },
          error_y: { type: "data", symmetric: false, array: sub.map(function (q) { return q.p.m[ym].hi - q.y; }),
                     arrayminus: sub.map(function (q) { return q.y - q.p.m[ym].lo; }), thickness: 1 }
        };
      }
      var ax = data.axes, fr = front(pts, ax[xm].higher, ax[ym].higher);
      var traces = [
        trace(pts.filter(function (q) { return !q.p.baseline; }), "technique runs", { size: 9, color: "#1f77b4" }),
        trace(pts.filter(function (q) { return q.p.baseline; }), "baseline", { size: 15, symbol: "star", color: "#d62728" }),
        { type: "scatter", mode: "lines", name: "Pareto front", line: { dash: "dot", color: "#2ca02c" },
          x: fr.map(function (q) { return q.x; }), y: fr.map(function (q) { return q.y; }), hoverinfo: "skip" }
      ];
      var layout = {
        title: { text: ax[ym].title + " against " + ax[xm].title },
        xaxis: { title: { text: ax[xm].title + (ax[xm].higher ? " (higher is better)" : " (lower is better)") } },
        yaxis: { title: { text: ax[ym].title + (ax[ym].higher ? " (higher is better)" : " (lower is better)") } },
        margin: { t: 50 }, legend: { orientation: "h" }
      };
      document.getElementById("explorer-count").textContent = pts.length + " runs shown, " + fr.length + " on the front";
      Plotly.react("explorer", traces, layout, cfg);
    }
    ids.forEach(function (id) { document.getElementById(id).addEventListener("change", draw); });
    document.querySelectorAll("input[name=family]").forEach(function (c) { c.addEventListener("change", draw); });
    draw();
    // A link may choose the axes and scenario, e.g. sets/<set>.html#x-metric=memory&y-metric=accuracy
    // (select values); each is applied as a user's choice is, through the same "change" handler.
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var p = kv.split("="), el = ids.indexOf(p[0]) >= 0 ? document.getElementById(p[0]) : null;
      var v = p.length === 2 ? decodeURIComponent(p[1]) : null;
      var ok = el && Array.prototype.some.call(el.options, function (o) { return o.value === v; });
      if (ok && el.value !== v) {
        el.value = v;
        el.dispatchEvent(new Event("change"));
      }
    });
  }

  if (data.page === "history") historyPage();
  if (data.page === "explorer") explorerPage();
})();
