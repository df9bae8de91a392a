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

  // The Pareto front, by the rule of effbench.read.tradeoff.frontier (the static Pareto figures;
  // tests/test_site_browser.py checks the two agree): within one comparable group (p.group), q
  // dominates p only where q's interval lies wholly at or beyond p's on both axes (higher is better:
  // q.lo >= p.hi; lower: q.hi <= p.lo) and the two points differ. Returns the points on the front.
  function front(pts, xHigh, yHigh) {
    function beyond(a, b, high) { return high ? a.lo >= b.hi : a.hi <= b.lo; }
    return pts.filter(function (p) {
      return !pts.some(function (q) {
        return q !== p && q.p.group === p.p.group && beyond(q.ix, p.ix, xHigh) && beyond(q.iy, p.iy, yHigh)
          && (q.x !== p.x || q.y !== p.y);
      });
    });
  }

  // A point's metrics under the batch filter: finetune runs are kept at their own batch size,
  // infer runs take their throughput and costs at the chosen decode batch (absent: not shown).
  function metricsAt(p, batch) {
    if (batch === "") return p.m;
    if (p.mb === undefined) return p.batch !== null && String(p.batch) === batch ? p.m : null;
    if (!p.mb[batch]) return null;
    var m = {};
    Object.keys(p.m).forEach(function (k) { m[k] = p.m[k]; });
    Object.keys(p.mb[batch]).forEach(function (k) { m[k] = p.mb[batch][k]; });
    return m;
  }

  function explorerPage() {
    var ids = ["x-metric", "y-metric", "scenario", "batch"];
    function checked(name) {
      return Array.prototype.filter.call(document.querySelectorAll("input[name=" + name + "]"), function (c) {
        return c.checked;
      }).map(function (c) { return Number(c.value); });
    }
    function draw() {
      var xm = document.getElementById("x-metric").value, ym = document.getElementById("y-metric").value;
      var scen = Number(document.getElementById("scenario").value), fams = checked("family");
      var batch = document.getElementById("batch").value;
      var pts = [];
      data.points.forEach(function (p, i) {
        var m = metricsAt(p, batch);
        if (p.scenario === scen && (p.baseline || p.families.some(function (f) { return fams.indexOf(f) >= 0; }))
            && m && m[xm] && m[ym]) {
          pts.push({ p: p, i: i, x: m[xm].value, y: m[ym].value, ix: m[xm], iy: m[ym] });
        }
      });
      function trace(sub, name, marker) {
        return {
          type: "scatter", mode: "markers", name: name, marker: marker,
          x: sub.map(function (q) { return q.x; }), y: sub.map(function (q) { return q.y; }),
          text: sub.map(function (q) { return q.p.label; }),
          hovertemplate: "%{text}<br>x %{x:.4g}<br>y %{y:.4g}<extra></extra>",
          error_x: { type: "data", symmetric: false, array: sub.map(function (q) { return q.ix.hi - q.x; }),
                     arrayminus: sub.map(function (q) { return q.x - q.ix.lo; }), thickness: 1 },
          error_y: { type: "data", symmetric: false, array: sub.map(function (q) { return q.iy.hi - q.y; }),
                     arrayminus: sub.map(function (q) { return q.y - q.iy.lo; }), thickness: 1 }
        };
      }
      var ax = data.axes, fr = front(pts, ax[xm].higher, ax[ym].higher);
      var traces = [
        trace(pts.filter(function (q) { return !q.p.baseline; }), "technique runs", { size: 9, color: "#1f77b4" }),
        trace(pts.filter(function (q) { return q.p.baseline; }), "baseline", { size: 15, symbol: "star", color: "#d62728" }),
        { type: "scatter", mode: "markers", name: "Pareto front", hoverinfo: "skip",
          marker: { size: 20, symbol: "circle-open", color: "#2ca02c", line: { width: 2 } },
          x: fr.map(function (q) { return q.x; }), y: fr.map(function (q) { return q.y; }) }
      ];
      var layout = {
        title: { text: ax[ym].title + " against " + ax[xm].title },
        xaxis: { title: { text: ax[xm].title + (ax[xm].higher ? " (higher is better)" : " (lower is better)") } },
        yaxis: { title: { text: ax[ym].title + (ax[ym].higher ? " (higher is better)" : " (lower is better)") } },
        margin: { t: 50 }, legend: { orientation: "h" }
      };
      var box = document.getElementById("explorer");
      // what is drawn, as indices into data.points (numbers only), for the browser tests
      box.setAttribute("data-shown", pts.map(function (q) { return q.i; }).join(","));
      box.setAttribute("data-front", fr.map(function (q) { return q.i; }).sort(function (a, b) { return a - b; }).join(","));
      document.getElementById("explorer-count").textContent = pts.length + " runs shown, " + fr.length + " on the front";
      Plotly.react(box, traces, layout, cfg);
    }
    ids.forEach(function (id) { document.getElementById(id).addEventListener("change", draw); });
    document.querySelectorAll("input[name=family]").forEach(function (c) { c.addEventListener("change", draw); });
    draw();
    // A link may choose the axes, scenario and batch, e.g. sets/<set>.html#x-metric=memory&batch=8
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
