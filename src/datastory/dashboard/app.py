"""The dashboard's own styles, page body and script, as text that `page` inlines.

The script reads the embedded JSON (`page.DATA_ID`) and only looks up words Python wrote (`data.extract`):
it formats no figure itself, so a tile reads as the report does. Text from data reaches the page only
through `textContent` and Vega's escaped tooltips, never as HTML. When the charts are drawn the root element
gets `data-ready="1"` (and `data-ready-ms`, the milliseconds since navigation), and every update after a choice counts up `data-updates`, so a browser test (or the
benchmark) knows when the page is interactive without guessing a delay.
"""

from __future__ import annotations

CSS = """
:root { --blue: #0072B2; --ink: #1d2733; --muted: #5b6773; --line: #d9dee4; --bg: #f6f8fa; --good: #00734d;
        --bad: #b34700; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 "DejaVu Sans", system-ui, sans-serif; color: var(--ink); background: var(--bg); }
header { background: #fff; border-bottom: 4px solid var(--blue); padding: 12px 20px; }
h1 { margin: 0; font-size: 22px; color: var(--blue); }
h2 { font-size: 17px; margin: 0 0 8px; }
header p { margin: 2px 0; color: var(--muted); font-size: 13px; }
main { padding: 12px 20px 24px; display: grid; gap: 14px; grid-template-columns: minmax(0, 1fr); max-width: 1280px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; min-width: 0; }
.controls { display: flex; flex-wrap: wrap; gap: 10px 18px; align-items: end; }
.controls label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 3px; }
select, input[type=search] { font: inherit; padding: 5px 8px; border: 1px solid #9aa5b1; border-radius: 4px;
        background: #fff; max-width: 100%; }
.seg { display: inline-flex; border: 1px solid #9aa5b1; border-radius: 4px; overflow: hidden; }
.seg button { font: inherit; border: 0; padding: 5px 12px; background: #fff; cursor: pointer; }
.seg button[aria-pressed=true] { background: var(--blue); color: #fff; }
.tiles { display: grid; gap: 10px; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.tile .name { font-size: 12px; color: var(--muted); }
.tile .value { font-size: 24px; font-weight: bold; }
.tile .delta { font-size: 13px; }
.tile .delta.good { color: var(--good); } .tile .delta.bad { color: var(--bad); }
.tile .prev, .note, .msg { font-size: 12px; color: var(--muted); }
.msg { font-size: 14px; }
.charts { display: grid; gap: 14px; grid-template-columns: repeat(auto-fit, minmax(min(420px, 100%), 1fr)); }
.chart { width: 100%; min-height: 60px; }
.capacity { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; margin-bottom: 8px; }
.capacity input[type=range] { width: min(360px, 100%); }
.plan { font-weight: bold; }
.toggle { font: inherit; font-size: 13px; margin-bottom: 6px; padding: 3px 10px; border: 1px solid #9aa5b1;
        border-radius: 4px; background: #fff; cursor: pointer; }
.toggle[aria-pressed=true] { background: var(--blue); color: #fff; }
#more { font: inherit; margin-top: 8px; padding: 5px 12px; border: 1px solid #9aa5b1; border-radius: 4px;
        background: #fff; cursor: pointer; }
.scroll { overflow-x: auto; max-height: 560px; overflow-y: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
td.num, th.num { text-align: right; white-space: nowrap; }
th button { font: inherit; font-weight: bold; border: 0; background: none; padding: 0; cursor: pointer; color: inherit; }
th[aria-sort=ascending] button::after { content: " \\25B2"; }
th[aria-sort=descending] button::after { content: " \\25BC"; }
thead th { position: sticky; top: 0; background: #fff; }
tr.in-plan td:first-child { border-left: 4px solid #D55E00; }
td.reasons { min-width: 220px; }
bdi { unicode-bidi: isolate; }
@media (max-width: 600px) { main { padding: 8px; } .tiles { grid-template-columns: repeat(2, minmax(0, 1fr)); } header { padding: 10px; } .tile .value { font-size: 20px; } }
"""

BODY = """<main>
<section class="controls" aria-label="Choices">
  <label>Period<span class="seg" id="grain" role="group" aria-label="Period"></span></label>
  <label>Region<select id="scope"></select></label>
  <label>Product line (forecast)<select id="line"></select></label>
</section>
<section aria-labelledby="tiles-h"><h2 id="tiles-h">Key figures</h2>
  <p class="msg" id="tiles-msg"></p><div class="tiles" id="tiles"></div></section>
<div class="charts">
<section aria-labelledby="fc-h"><h2 id="fc-h">Revenue and forecast</h2>
  <p class="msg" id="fc-msg"></p>
  <button type="button" class="toggle" id="fc-own" aria-pressed="true"></button>
  <div class="chart" id="fc-chart"></div><p class="note" id="fc-note"></p></section>
<section aria-labelledby="rev-h"><h2 id="rev-h">Revenue per period</h2>
  <div class="chart" id="rev-chart"></div><p class="note">Grey: a period still running on the data's last day.</p>
</section>
</div>
<section aria-labelledby="calls-h"><h2 id="calls-h">Customers to call</h2>
  <p id="churn-sentence"></p>
  <div class="capacity"><label for="capacity">Calls we can make:</label>
    <input type="range" id="capacity" min="0" max="0" step="1" value="0">
    <output id="capacity-out" for="capacity" class="plan"></output></div>
  <p class="msg" id="calls-msg"></p>
  <label>Search <input type="search" id="search" placeholder="name, id, reason"></label>
  <p class="note" id="calls-shown"></p>
  <div class="scroll"><table id="calls"><thead><tr>
    <th data-key="name" aria-sort="none"><button type="button">Customer</button></th>
    <th data-key="region" aria-sort="none"><button type="button">Region</button></th>
    <th data-key="list" aria-sort="none"><button type="button">List</button></th>
    <th data-key="status" aria-sort="none"><button type="button">Status</button></th>
    <th data-key="p" class="num" aria-sort="none"><button type="button">Churn probability</button></th>
    <th data-key="value" class="num" aria-sort="none"><button type="button">Annual value</button></th>
    <th data-key="risk" class="num" aria-sort="descending"><button type="button">Revenue at risk</button></th>
    <th data-key="last" aria-sort="none"><button type="button">Last order</button></th>
    <th>Reasons</th></tr></thead><tbody></tbody></table></div>
  <button type="button" id="more">Show more</button>
</section>
<section aria-labelledby="bridge-h"><h2 id="bridge-h">What changed</h2>
  <p id="bridge-sentence"></p><p class="msg" id="bridge-msg"></p>
  <div class="scroll"><table id="bridge"><thead><tr><th>Part</th><th class="num">Revenue</th>
  <th class="num">Customers</th><th>What it counts</th></tr></thead><tbody></tbody></table></div>
  <p class="note" id="bridge-note"></p>
</section>
</main>
"""

JS = r"""
"use strict";
(function () {
  var D = JSON.parse(document.getElementById("dashboard-data").textContent);
  var root = document.documentElement, views = {}, updates = 0, PAGE = 50;
  var S = {grain: D.grains.length ? D.grains[0][0] : "M", scope: D.scopes[0][0], line: "All",
           capacity: null, sortKey: "risk", sortDir: -1, query: "", rows: PAGE, fcOwn: true};
  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  function clear(n) { while (n.firstChild) { n.removeChild(n.firstChild); } }
  function inScope(c) { return S.scope === "All" || c.region === S.scope; }

  function tiles() {
    var box = $("tiles"), set = (D.tiles[S.grain] || {})[S.scope];
    clear(box);
    $("tiles-msg").textContent = set ? set.message : D.messages.noEarlier;
    if (!set || set.message) { return; }
    $("tiles-h").textContent = "Key figures: " + set.period + " vs " + set.previous;
    set.items.forEach(function (t) {
      var d = el("div", null, "tile");
      d.setAttribute("data-kpi", t.kpi);
      d.appendChild(el("div", t.label, "name"));
      d.appendChild(el("div", t.now, "value"));
      if (t.note) { d.appendChild(el("div", t.note, "note")); }
      else {
        var arrow = t.trend === "up" ? "\u25B2 " : t.trend === "down" ? "\u25BC " : "";
        var cls = "delta" + (t.good === true ? " good" : t.good === false ? " bad" : "");
        d.appendChild(el("div", arrow + t.delta, cls));
        d.appendChild(el("div", set.previous + ": " + t.prev, "prev"));
      }
      box.appendChild(d);
    });
  }

  function seriesNow() {
    var want = S.line === "All" ? [S.scope, "All"] : [S.scope, S.line];
    for (var i = 0; i < D.series.length; i++) {
      var s = D.series[i];
      if (s.region === want[0] && s.line === want[1]) { return s; }
    }
    return null;
  }
  // The forecast at the chosen period's totals (no range: see dashboard.totals), or at the model's own periods.
  function fcTotals(s) { return s && !S.fcOwn ? s.grains[S.grain] || null : null; }
  function fcValues(s) {
    var t = fcTotals(s);
    if (t) { return t.map(function (p) { return {date: p[0], actual: p[1], forecast: p[2], low: null, high: null}; }); }
    return s ? s.points.map(function (p) {
      return {date: p[0], actual: p[1], forecast: p[2], low: p[3], high: p[4]};
    }) : [];
  }
  function fcNote(s) {
    if (!s || !s.model) { return ""; }
    var t = fcTotals(s);
    if (!t) { return S.fcOwn ? D.fcNotes.own : D.fcNotes[S.grain] || D.fcNotes.own; }
    return t.some(function (p) { return p[2] !== null; }) ? D.fcNotes[S.grain] : D.fcNotes["none" + S.grain];
  }
  function revValues() {
    return ((D.revenue[S.grain] || {})[S.scope] || []).map(function (r) {
      return {period: r[0], revenue: r[1], text: r[2], partial: r[3] ? "running" : "complete"};
    });
  }
  var money = {type: "quantitative", format: ",.0f"};
  // The layers a chart's rows can fill: a layer without a single value is left out (Vega would warn of an
  // empty extent), so totals (no range) and a history without a forecast draw only what they have.
  function fcLayers(values) {
    function any(k) { return values.some(function (v) { return v[k] !== null; }); }
    return {band: any("low"), actual: any("actual"), forecast: any("forecast")};
  }
  function fcSpec(values) {
    var has = fcLayers(values);
    var y = {type: "quantitative", title: "Revenue (" + D.currency + ")", axis: {format: "~s"}};
    var when = {field: "date", type: "temporal", title: "Period starting", format: "%d %b %Y"};
    var actualTip = [when, Object.assign({field: "actual", title: "Actual"}, money)];
    var forecastTip = [when, Object.assign({field: "forecast", title: "Forecast"}, money),
                       Object.assign({field: "low", title: "Range low"}, money),
                       Object.assign({field: "high", title: "Range high"}, money)];
    return {
      description: "Revenue over time: actual in blue, forecast dashed in orange with its range shaded",
      width: "container", height: 240, data: {name: "fc", values: values},
      encoding: {x: {field: "date", type: "temporal", title: null}},
      layer: [
        has.band && {mark: {type: "area", color: D.colors.band}, encoding: {y: Object.assign({field: "low"}, y),
          y2: {field: "high"}, tooltip: forecastTip}},
        has.actual && {mark: {type: "line", color: D.colors.actual, point: {size: 14, filled: true}},
         encoding: {y: Object.assign({field: "actual"}, y), tooltip: actualTip}},
        has.forecast && {mark: {type: "line", color: D.colors.forecast, strokeDash: [5, 3],
         point: {size: 14, filled: true}},
         encoding: {y: Object.assign({field: "forecast"}, y), tooltip: has.band ? forecastTip : forecastTip.slice(0, 2)}}
      ].filter(Boolean)
    };
  }
  function revSpec() {
    var values = revValues();
    return {
      description: "Revenue per period, bars; a period still running is grey",
      width: "container", height: 240, data: {name: "rev", values: values},
      mark: {type: "bar"},
      encoding: {
        x: {field: "period", type: "ordinal", sort: null, title: null, axis: {labelOverlap: true}},
        y: {field: "revenue", type: "quantitative", title: "Revenue (" + D.currency + ")", axis: {format: "~s"}},
        color: {field: "partial", type: "nominal", legend: null,
                scale: {domain: ["complete", "running"], range: [D.colors.actual, D.colors.neutral]}},
        tooltip: [{field: "period", title: "Period"}, {field: "text", title: "Revenue"},
                  Object.assign({field: "revenue", title: "Exact"}, money)]
      }
    };
  }
  // A chart is embedded the first time it has data, then only fed new data while its layers stay the same:
  // views[id] holds the promise of its Vega view (and `shape`, the layers it was built with), so two quick
  // choices never embed twice. New layers (totals without a range, say) embed it afresh. An empty chart is
  // hidden, not drawn.
  function draw(id, name, values, spec) {
    $(id).style.display = values.length ? "" : "none";
    if (!values.length) { return Promise.resolve(); }
    var shape = JSON.stringify(name === "fc" ? fcLayers(values) : {});
    if (views[id] && views[id].shape !== shape) {   // the old view is detached, then let go
      views[id].then(function (v) { v.finalize(); });
      views[id] = null;
      clear($(id));
    }
    if (!views[id]) {
      views[id] = vegaEmbed("#" + id, spec(values), {actions: false, renderer: "svg", ast: true})
        .then(function (r) { return r.view; });
      views[id].shape = shape;
      return views[id];
    }
    return views[id].then(function (v) { return v.data(name, values).resize().runAsync(); });
  }
  function charts(parts) {
    var jobs = [];
    if (parts.fc) {
      var s = seriesNow();
      $("fc-msg").textContent = !s ? D.messages.noForecast :
        s.model ? s.name + ": " + s.sentence + " Model: " + s.model + "." : s.sentence;
      $("fc-note").textContent = fcNote(s);
      var own = $("fc-own");
      own.style.display = s && s.model && Object.keys(s.grains).length ? "" : "none";
      own.setAttribute("aria-pressed", String(S.fcOwn));
      jobs.push(draw("fc-chart", "fc", fcValues(s), fcSpec));
    }
    if (parts.rev) { jobs.push(draw("rev-chart", "rev", revValues(), revSpec)); }
    return Promise.all(jobs);
  }

  function scopeCalls() { return D.calls.filter(inScope); }
  function plan() {
    var cap = D.capacity[S.scope] || {cum: ["0"], total: "0", calls: 0};
    var n = cap.cum.length - 1, slider = $("capacity");
    if (S.capacity === null || S.capacity > n) { S.capacity = Math.min(cap.calls, n); }
    slider.max = String(n);
    slider.value = String(S.capacity);
    slider.disabled = n === 0;
    $("capacity-out").textContent = S.capacity + " of " + n + " customers at risk called, covering " +
      cap.cum[S.capacity] + " of " + cap.total + " " + D.currency + " revenue at risk";
    $("calls-msg").textContent = n > 0 ? "" : cap.scored === 0 ? D.messages.noScored : D.messages.noCustomers;
  }
  function table() {
    var q = S.query, rows = scopeCalls(), rank = {};
    rows.forEach(function (c, i) { rank[c.id] = i; });
    if (q) {
      rows = rows.filter(function (c) {
        return (c.name + " " + c.id + " " + c.reasons + " " + c.list + " " + c.status).toLowerCase().indexOf(q) >= 0;
      });
    }
    var k = S.sortKey, dir = S.sortDir;
    rows = rows.slice().sort(function (a, b) {
      var x = a[k], y = b[k];
      if (x === y) { return rank[a.id] - rank[b.id]; }
      return (x < y ? -1 : 1) * dir;
    });
    var body = document.querySelector("#calls tbody");
    clear(body);
    var frag = document.createDocumentFragment();
    rows.slice(0, S.rows).forEach(function (c) {
      var tr = el("tr");
      if (rank[c.id] < S.capacity) { tr.className = "in-plan"; }
      tr.setAttribute("data-id", c.id);
      var who = el("td"), b = el("bdi", c.name);
      who.appendChild(b); who.appendChild(el("div", c.id, "note"));
      tr.appendChild(who);
      tr.appendChild(el("td", c.region));
      tr.appendChild(el("td", c.list));
      tr.appendChild(el("td", c.status));
      tr.appendChild(el("td", c.pText, "num"));
      tr.appendChild(el("td", c.valueText, "num"));
      tr.appendChild(el("td", c.riskText, "num"));
      tr.appendChild(el("td", c.last));
      tr.appendChild(el("td", c.reasons, "reasons"));
      frag.appendChild(tr);
    });
    body.appendChild(frag);
    var more = rows.length > S.rows;
    $("calls-shown").textContent = more ?
      "Showing the first " + S.rows + " of " + rows.length + " customers: search to narrow, or show more." :
      rows.length + " customer" + (rows.length === 1 ? "" : "s") + " shown.";
    $("more").style.display = more ? "" : "none";
    Array.prototype.forEach.call(document.querySelectorAll("#calls th[data-key]"), function (th) {
      th.setAttribute("aria-sort", th.getAttribute("data-key") === k ? (dir > 0 ? "ascending" : "descending") : "none");
    });
  }
  function bridge() {
    var b = D.bridge[S.scope], body = document.querySelector("#bridge tbody");
    clear(body);
    $("bridge-h").textContent = b && b.title ? b.title : "What changed";
    $("bridge-sentence").textContent = b ? b.sentence : "";
    $("bridge-msg").textContent = b ? b.message : "";
    $("bridge-note").textContent = b ? b.note : "";
    $("bridge").style.display = b && b.rows.length ? "" : "none";
    (b ? b.rows : []).forEach(function (r) {
      var tr = el("tr", null, r[4]);
      tr.appendChild(el("td", r[0])); tr.appendChild(el("td", r[1], "num"));
      tr.appendChild(el("td", r[2], "num")); tr.appendChild(el("td", r[3]));
      body.appendChild(tr);
    });
  }
  function marks() {
    Array.prototype.forEach.call(document.querySelectorAll("#grain button"), function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-grain") === S.grain));
    });
    $("scope").value = S.scope;
    $("line").value = S.line;
  }
  // Only what a choice changes is redrawn: the period touches the tiles, the revenue bars and the forecast's totals, the product
  // line the forecast, the region everything.
  var ALL_PARTS = {tiles: true, calls: true, bridge: true, fc: true, rev: true};
  function update(parts) {
    parts = parts || ALL_PARTS;
    marks();
    keepView();
    if (parts.tiles) { tiles(); }
    if (parts.calls) { plan(); table(); }
    if (parts.bridge) { bridge(); }
    return charts(parts).then(function () { updates += 1; root.setAttribute("data-updates", String(updates)); });
  }

  // The product lines the chosen segment has a forecast for (the company total has none per line).
  function lines() {
    var l = $("line"), have = D.series.filter(function (x) { return x.region === S.scope && x.line !== "All"; })
      .map(function (x) { return x.line; });
    clear(l);
    [["All", "All product lines"]].concat(have.map(function (x) { return [x, x]; })).forEach(function (pair) {
      var o = el("option", pair[1]); o.value = pair[0]; l.appendChild(o);
    });
    if (have.indexOf(S.line) < 0) { S.line = "All"; }
    l.value = S.line;
    l.disabled = have.length === 0;
  }

  function controls() {
    var g = $("grain");
    D.grains.forEach(function (pair) {
      var b = el("button", pair[1]);
      b.type = "button"; b.setAttribute("data-grain", pair[0]);
      b.addEventListener("click", function () { S.grain = pair[0]; S.fcOwn = false; update({tiles: true, rev: true, fc: true}); });
      g.appendChild(b);
    });
    var s = $("scope");
    D.scopes.forEach(function (pair) { var o = el("option", pair[1]); o.value = pair[0]; s.appendChild(o); });
    s.disabled = D.scopes.length < 2;
    s.addEventListener("change", function () {
      S.scope = s.value; S.capacity = null; S.rows = PAGE; lines(); update();
    });
    var l = $("line");
    lines();
    l.addEventListener("change", function () { S.line = l.value; update({fc: true}); });
    $("capacity").addEventListener("input", function () { S.capacity = Number(this.value); plan(); table(); });
    $("search").addEventListener("input", function () { S.query = this.value.toLowerCase(); S.rows = PAGE; table(); });
    $("more").addEventListener("click", function () { S.rows += 4 * PAGE; table(); });
    Array.prototype.forEach.call(document.querySelectorAll("#calls th[data-key] button"), function (b) {
      b.addEventListener("click", function () {
        var k = b.parentNode.getAttribute("data-key");
        S.sortDir = S.sortKey === k ? -S.sortDir : (k === "name" || k === "region" || k === "list" ? 1 : -1);
        S.sortKey = k;
        table();
      });
    });
    $("churn-sentence").textContent = D.churnSentence;
    $("fc-own").textContent = D.fcOwnLabel;
    $("fc-own").addEventListener("click", function () { S.fcOwn = !S.fcOwn; update({fc: true}); });
  }

  // The reader's choices (period, segment, product line, the forecast's own grain) live in the address's #fragment:
  // a reload for a newer build, a bookmark or a shared link opens the same view. A value the dashboard does not
  // offer (another audience's region, a typo, text made to look like code) is ignored: the default stays.
  function keepView() {
    var q = "grain=" + encodeURIComponent(S.grain) + "&scope=" + encodeURIComponent(S.scope) +
      "&line=" + encodeURIComponent(S.line) + "&own=" + (S.fcOwn ? "1" : "0");
    if (location.hash.slice(1) !== q) {
      try { history.replaceState(null, "", "#" + q); } catch (e) { /* a sandboxed frame: the view still works */ }
    }
  }
  function restoreView() {
    var h = {};
    location.hash.slice(1).split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0) { try { h[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1)); } catch (e) { /* bad escape */ } }
    });
    function offered(pairs, v) { return pairs.some(function (p) { return p[0] === v; }); }
    if (offered(D.grains, h.grain)) { S.grain = h.grain; }
    if (offered(D.scopes, h.scope)) { S.scope = h.scope; }
    if (D.series.some(function (x) { return x.region === S.scope && x.line === h.line; })) { S.line = h.line; }
    if (h.own === "0" || h.own === "1") { S.fcOwn = h.own === "1"; }
  }

  restoreView();
  controls();
  update().then(function () {
    root.setAttribute("data-ready-ms", String(Math.round(performance.now())));
    root.setAttribute("data-ready", "1");
  },
                function (err) { console.error(err); root.setAttribute("data-ready", "error"); });
})();
"""

# ---------------------------------------------------------------- live: freshness and self-reload
# A block of its own, after the app's script and independent of it (see `datastory.live`). It reads only the
# freshness line's attributes (`page.page`), so the file holds no clock: the build time is the file's own
# `Last-Modified` over http(s), or `document.lastModified` (the file's mtime) from file://.
# Over http(s) it asks for its own URL (HEAD, never cached) every `data-poll` seconds, or `?poll=S` from the
# URL, remembers the first ETag (else Last-Modified) and reloads when it changes, after a note. Under file:// it
# requests nothing. The root element gets `data-live` ("off" under file://, "on" after the first answer) and
# `data-built` (ISO time), so a browser test knows when the page is watching.
LIVE_CSS = """
header p.stale { color: #fff; background: var(--bad); padding: 2px 8px; border-radius: 4px; display: inline-block; }
.reload-note { position: fixed; top: 10px; right: 10px; background: var(--ink); color: #fff; padding: 6px 12px;
        border-radius: 4px; z-index: 10; }
[hidden] { display: none !important; }
"""

LIVE_JS = r"""
(function () {
  "use strict";
  var fresh = document.getElementById("freshness"), root = document.documentElement;
  if (!fresh) { return; }
  function $(id) { return document.getElementById(id); }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function plain(d) {
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC";
  }
  function show(built) {
    if (!built || isNaN(built.getTime())) { return; }
    $("built-at").textContent = " \u00B7 built " + plain(built);
    root.setAttribute("data-built", built.toISOString());
    var day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(fresh.getAttribute("data-last-day") || "");
    if (!day) { return; }
    var days = Math.floor((built.getTime() - Date.UTC(+day[1], day[2] - 1, +day[3])) / 86400000);
    if (days > Number(fresh.getAttribute("data-stale-days"))) {
      $("stale").textContent = "Data may be stale: its last day, " + day[0] + ", is " + days +
        " days before this build.";
      $("stale").hidden = false;
    }
  }
  if (location.protocol !== "http:" && location.protocol !== "https:") {
    // Chromium and Firefox give a local file's mtime as local time, "MM/DD/YYYY hh:mm:ss".
    var m = /^(\d{2})\/(\d{2})\/(\d{4}) (\d{2}):(\d{2}):(\d{2})$/.exec(document.lastModified);
    if (m) { show(new Date(+m[3], m[1] - 1, +m[2], +m[4], +m[5], +m[6])); }
    root.setAttribute("data-live", "off");
    return;
  }
  var asked = /[?&]poll=([0-9]*\.?[0-9]+)/.exec(location.search);
  var every = Number(asked ? asked[1] : fresh.getAttribute("data-poll"));
  if (!(every > 0)) { every = 10; }
  var first = null;
  function check() {
    fetch(location.href, {method: "HEAD", cache: "no-store"}).then(function (r) {
      var stamp = r.ok ? (r.headers.get("ETag") || r.headers.get("Last-Modified") || "") : "";
      if (!stamp) { return true; }
      if (first === null) {
        first = stamp;
        show(new Date(r.headers.get("Last-Modified") || NaN));
        root.setAttribute("data-live", "on");
        return true;
      }
      if (stamp === first) { return true; }
      $("reload-note").textContent = "Newer build available \u2014 reloading\u2026";
      $("reload-note").hidden = false;
      root.setAttribute("data-live", "reloading");
      setTimeout(function () { location.reload(); }, 1500);
      return false;
    }, function () { return true; }).then(function (again) {
      if (again) { setTimeout(check, every * 1000); }
    });
  }
  check();
})();
"""

CSS = CSS + LIVE_CSS
JS = JS + LIVE_JS
