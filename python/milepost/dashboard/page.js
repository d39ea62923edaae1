(function () {
  "use strict";

  /* All text coming from the API is inserted with textContent / createTextNode /
     setAttribute only. Never use innerHTML & co. with data in this file. */

  // ------------------------------------------------------------------ token / fetch
  var TOKEN = new URLSearchParams(window.location.search).get("token");

  /* Every path is relative ("api/runs", not "/api/runs"): the page works wherever the app is
     mounted (app.mount("/progress", create_app()) serves it at /progress/). */

  function api(path, opts) {
    opts = opts || {};
    var headers = { "Accept": "application/json" };
    if (TOKEN) headers["Authorization"] = "Bearer " + TOKEN;
    return fetch(path, { method: opts.method || "GET", headers: headers, cache: "no-store" }).then(function (res) {
      if (!res.ok) {
        // The server says what went wrong in `error` (a run that has ended, naming how): shown as is.
        return res.json().catch(function () { return null; }).then(function (body) {
          var why = body && body.error ? String(body.error)
            : "HTTP " + res.status + (res.status === 401 || res.status === 403 ? " (unauthorized: is ?token= missing or wrong?)" : "");
          var err = new Error(why);
          err.status = res.status;
          throw err;
        });
      }
      return res.status === 204 ? {} : res.json();
    });
  }

  function eventsUrl(id) {
    var url = "api/runs/" + encodeURIComponent(id) + "/events";
    if (TOKEN) url += "?token=" + encodeURIComponent(TOKEN);
    return url;
  }

  // ------------------------------------------------------------------ formatting
  var NF = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  function fmtInt(n) { return (n == null || !isFinite(n)) ? "—" : NF.format(Math.round(n)); }
  function pad2(n) { return n < 10 ? "0" + n : String(n); }
  function fmtDur(s) {
    if (s == null || !isFinite(s)) return "—";
    if (s < 0) s = 0;
    if (s > 0 && s < 0.95) return s.toFixed(1) + "s";
    var t = Math.round(s);
    if (t < 60) return t + "s";
    if (t < 3600) return Math.floor(t / 60) + "m" + pad2(t % 60) + "s";
    return Math.floor(t / 3600) + "h" + pad2(Math.floor((t % 3600) / 60)) + "m";
  }
  function fmtNum(r) {
    if (r == null || !isFinite(r)) return "—";
    var a = Math.abs(r);
    if (a >= 100) return NF.format(Math.round(r));
    if (a >= 1) return r.toFixed(1);
    if (a === 0) return "0";
    return String(Number(r.toPrecision(2)));
  }
  function fmtTick(v) {
    if (v == null || !isFinite(v)) return "";
    return Math.abs(v) >= 1000 ? NF.format(v) : String(Number(v.toPrecision(4)));
  }
  function fmtRate(r, unit, divisor) {
    if (r == null || !isFinite(r)) return "—";
    if (divisor && r >= 1) return fmtSized(r, divisor) + (unit || "it") + "/s";
    return fmtNum(r) + " " + (unit || "it") + "/s";
  }
  /* tqdm's unit_scale, as the terminal shows it: three figures and an SI prefix ("12.3M"). */
  function fmtSized(v, divisor) {
    var prefixes = ["", "k", "M", "G", "T", "P", "E"];
    for (var i = 0; i < prefixes.length; i++) {
      var a = Math.abs(v);
      if (a < 999.5) return v.toFixed(a < 9.995 ? 2 : a < 99.95 ? 1 : 0) + prefixes[i];
      v /= divisor;
    }
    return v.toFixed(1) + "Z";
  }
  function fmtAmounts(processed, total, unit, divisor) {
    if (!divisor) return fmtInt(processed) + "/" + (total == null ? "?" : fmtInt(total));
    return fmtSized(processed, divisor) + (total == null ? (unit || "") : "/" + fmtSized(total, divisor));
  }
  function fmtPct(f) {
    if (f == null || !isFinite(f)) return "—";
    var p = f * 100;
    if (p >= 99.95 && f < 1) return "99.9%";
    return (p >= 10 || p === 0 ? p.toFixed(p === 100 || p === 0 ? 0 : 1) : p.toFixed(1)) + "%";
  }
  function fmtMoney(v) {
    if (v == null || !isFinite(v)) return "—";
    if (Math.abs(v) < 10) return "$" + v.toFixed(4);
    return "$" + v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  /* The cost of one item, as the terminal shows it: an item may cost a hundredth of a cent. */
  function fmtPerItem(v) {
    if (v == null || !isFinite(v)) return "—";
    var a = Math.abs(v);
    if (a >= 1) return "$" + v.toFixed(2);
    if (a >= 0.01 || a === 0) return "$" + v.toFixed(4);
    return "$" + v.toFixed(Math.min(10, Math.max(3, 2 - Math.floor(Math.log10(a)))));
  }
  /* Bytes in decimal units, as the terminal shows them: "310 MB", "2.1 GB". */
  function fmtBytes(n) {
    if (n == null || !isFinite(n)) return "—";
    var units = ["B", "kB", "MB", "GB", "TB", "PB"], v = Math.max(0, n), u = 0;
    while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
    return (u === 0 || v >= 9.95 ? Math.round(v) : v.toFixed(1)) + " " + units[u];
  }
  /* CPU in percent of one core (250% is two and a half cores busy). */
  function fmtCpu(p) { return (p == null || !isFinite(p)) ? "—" : Math.round(Math.max(0, p)) + "%"; }
  function fmtClock(unix) {
    if (unix == null || !isFinite(unix)) return "";
    var d = new Date(unix * 1000);
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
  }
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function fmtStart(unix) {
    if (unix == null || !isFinite(unix)) return "—";
    var d = new Date(unix * 1000), now = new Date();
    var hm = pad2(d.getHours()) + ":" + pad2(d.getMinutes());
    if (d.toDateString() === now.toDateString()) return "today " + hm;
    return MONTHS[d.getMonth()] + " " + d.getDate() + (d.getFullYear() !== now.getFullYear() ? " " + d.getFullYear() : "") + ", " + hm;
  }
  function fmtShortDate(unix) {
    if (unix == null || !isFinite(unix)) return "";
    var d = new Date(unix * 1000);
    return MONTHS[d.getMonth()] + " " + d.getDate();
  }
  function safeClass(s) { return String(s == null ? "unknown" : s).toLowerCase().replace(/[^a-z0-9_-]/g, "") || "unknown"; }

  // ------------------------------------------------------------------ DOM helpers
  function $(id) { return document.getElementById(id); }
  function h(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function setText(e, t) { t = t == null ? "" : String(t); if (e.textContent !== t) e.textContent = t; }
  function setTitle(e, t) { t = t == null ? "" : String(t); if (e.getAttribute("title") !== t) e.setAttribute("title", t); }
  function setState(e, base, state) {
    var c = base + " state-" + safeClass(state);
    if (e.className !== c) e.className = c;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function setEmpty(container, text) { clear(container); container.appendChild(h("div", "empty", text)); }

  /* Keyed reconciliation: reuses child elements by key so that updates at 10 Hz keep
     scroll position, hover state and CSS animations. */
  function reconcile(container, items, keyFn, createFn, updateFn) {
    var existing = new Map();
    Array.prototype.slice.call(container.children).forEach(function (ch) {
      if (ch.hasAttribute("data-key")) existing.set(ch.getAttribute("data-key"), ch);
      else container.removeChild(ch);
    });
    var prev = null;
    items.forEach(function (it, i) {
      var k = String(keyFn(it, i));
      var node = existing.get(k);
      if (node) existing.delete(k);
      else { node = createFn(it); node.setAttribute("data-key", k); }
      updateFn(node, it, i);
      var want = prev ? prev.nextSibling : container.firstChild;
      if (want !== node) container.insertBefore(node, want);
      prev = node;
    });
    existing.forEach(function (n) { container.removeChild(n); });
  }

  // ------------------------------------------------------------------ SVG charts
  var SVGNS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text != null) e.textContent = String(text);
    return e;
  }
  function niceTicks(max, count) {
    if (!(max > 0)) max = 1;
    var step0 = max / count;
    var mag = Math.pow(10, Math.floor(Math.log10(step0)));
    var norm = step0 / mag;
    var step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    var hi = Math.ceil(max / step - 1e-9) * step;
    var ticks = [];
    for (var v = 0; v <= hi + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
    return { hi: hi, ticks: ticks };
  }
  function niceSpanTicks(x0, x1, count) {
    var span = x1 - x0;
    if (!(span > 0)) return [x0];
    var step0 = span / count;
    var mag = Math.pow(10, Math.floor(Math.log10(step0)));
    var norm = step0 / mag;
    var step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    // time-friendly steps when the axis is seconds
    var out = [];
    for (var v = Math.ceil(x0 / step) * step; v <= x1 + 1e-9; v += step) out.push(v);
    return out;
  }
  function timeTicks(x0, x1) {
    var span = x1 - x0;
    var steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400];
    var step = steps[steps.length - 1];
    for (var i = 0; i < steps.length; i++) { if (span / steps[i] <= 5) { step = steps[i]; break; } }
    var out = [];
    for (var v = Math.ceil(x0 / step) * step; v <= x1 + 1e-9; v += step) out.push(v);
    return out;
  }

  /* cfg: { type: "line"|"bar", points: [{x, y, cls, title, hl}], xTicks: [{x, label}] | null,
            xFmt, yFmt, xLabel, yLabel, color, empty, area } */
  function drawChart(host, cfg) {
    host._cfg = cfg;
    clear(host);
    var r = host.getBoundingClientRect();
    var W = Math.max(180, Math.round(r.width) || 420), H = Math.max(90, Math.round(r.height) || 160);
    host.setAttribute("viewBox", "0 0 " + W + " " + H);
    host.setAttribute("preserveAspectRatio", "xMinYMin meet");
    var g = s("svg", { x: 0, y: 0, width: W, height: H, "class": "plot" });
    host.appendChild(g);
    var pts = (cfg.points || []).filter(function (p) { return p && p.y != null && isFinite(p.y) && p.x != null && isFinite(p.x); });
    var minPts = cfg.type === "bar" ? 1 : 2;
    if (pts.length < minPts) {
      g.appendChild(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "class": "chart-empty" }, cfg.empty || "No data yet"));
      return;
    }
    var yFmt = cfg.yFmt || fmtNum;
    var m = { l: 62, r: 14, t: 12, b: cfg.xLabel ? 32 : 20 };
    var pw = W - m.l - m.r, ph = H - m.t - m.b;
    var ymax = 0;
    pts.forEach(function (p) { if (p.y > ymax) ymax = p.y; });
    var yt = niceTicks(ymax * 1.05, H < 130 ? 3 : 4);
    var sy = function (v) { return m.t + ph - (Math.max(0, v) / yt.hi) * ph; };

    yt.ticks.forEach(function (v) {
      var y = sy(v);
      g.appendChild(s("line", { x1: m.l, x2: W - m.r, y1: y, y2: y, "class": "grid" }));
      g.appendChild(s("text", { x: m.l - 6, y: y + 3.5, "text-anchor": "end" }, yFmt(v)));
    });
    g.appendChild(s("line", { x1: m.l, x2: W - m.r, y1: m.t + ph, y2: m.t + ph, "class": "axis" }));
    g.appendChild(s("line", { x1: m.l, x2: m.l, y1: m.t, y2: m.t + ph, "class": "axis" }));
    if (cfg.yLabel) {
      var yl = s("text", { x: 0, y: 0, "text-anchor": "middle", "class": "axis-label",
        transform: "translate(11," + (m.t + ph / 2) + ") rotate(-90)" }, cfg.yLabel);
      g.appendChild(yl);
    }
    if (cfg.xLabel) g.appendChild(s("text", { x: m.l + pw / 2, y: H - 3, "text-anchor": "middle", "class": "axis-label" }, cfg.xLabel));
    var tickY = m.t + ph + 13;
    var color = cfg.color || "#2f6fed";

    if (cfg.type === "bar") {
      var n = cfg.n != null ? cfg.n : 0;
      pts.forEach(function (p) { if (p.x + 1 > n) n = p.x + 1; });
      var band = pw / Math.max(1, n), bw = Math.max(2, Math.min(34, band * 0.7));
      pts.forEach(function (p) {
        var y = sy(p.y), x = m.l + p.x * band + (band - bw) / 2;
        var rect = s("rect", { x: x, y: y, width: bw, height: Math.max(p.y > 0 ? 1 : 0, m.t + ph - y), rx: 2,
          "class": "col state-" + safeClass(p.cls) + (p.hl ? " hl" : "") });
        if (p.title) rect.appendChild(s("title", null, p.title));
        g.appendChild(rect);
      });
      (cfg.xTicks || []).filter(function (t) { return t.x >= 0 && t.x < n; }).forEach(function (t) {
        g.appendChild(s("text", { x: m.l + (t.x + 0.5) * band, y: tickY, "text-anchor": "middle" }, t.label));
      });
      return;
    }

    // line chart
    var x0 = Infinity, x1 = -Infinity;
    pts.forEach(function (p) { if (p.x < x0) x0 = p.x; if (p.x > x1) x1 = p.x; });
    if (x1 <= x0) x1 = x0 + 1;
    var sx = function (v) { return m.l + (v - x0) / (x1 - x0) * pw; };
    var ticks = cfg.xTicks || (cfg.timeAxis ? timeTicks(x0, x1) : niceSpanTicks(x0, x1, 5)).map(function (v) {
      return { x: v, label: (cfg.xFmt || fmtNum)(v) };
    });
    ticks.filter(function (t) { return t.x >= x0 - 1e-9 && t.x <= x1 + 1e-9; }).forEach(function (t) {
      var x = sx(t.x);
      var anchor = x < m.l + 12 ? "start" : (x > W - m.r - 12 ? "end" : "middle");
      g.appendChild(s("line", { x1: x, x2: x, y1: m.t + ph, y2: m.t + ph + 3, "class": "axis" }));
      g.appendChild(s("text", { x: x, y: tickY, "text-anchor": anchor }, t.label));
    });
    var d = "", i;
    for (i = 0; i < pts.length; i++) d += (i ? "L" : "M") + sx(pts[i].x).toFixed(1) + "," + sy(pts[i].y).toFixed(1);
    if (cfg.area !== false) {
      var ad = d + "L" + sx(pts[pts.length - 1].x).toFixed(1) + "," + (m.t + ph) + "L" + sx(pts[0].x).toFixed(1) + "," + (m.t + ph) + "Z";
      g.appendChild(s("path", { d: ad, "class": "area", fill: color }));
    }
    g.appendChild(s("path", { d: d, "class": "line", stroke: color }));
    if (cfg.dots) {
      pts.forEach(function (p) {
        var c = s("circle", { cx: sx(p.x), cy: sy(p.y), r: p.hl ? 4 : 3, fill: color, "class": "dot" + (p.hl ? " hl" : "") });
        if (p.title) c.appendChild(s("title", null, p.title));
        g.appendChild(c);
      });
    } else {
      var last = pts[pts.length - 1], lx = sx(last.x), ly = sy(last.y);
      g.appendChild(s("circle", { cx: lx, cy: ly, r: 3.5, fill: color, "class": "dot" }));
      var lbl = s("text", { x: lx - 6, y: Math.max(m.t + 9, ly - 7), "text-anchor": "end", "class": "last-label", fill: color }, (cfg.lastFmt || yFmt)(last.y));
      lbl.style.fill = color;
      g.appendChild(lbl);
    }
  }
  var CHARTS = ["chart-rate", "chart-cpu", "chart-rss", "chart-cost", "trend-duration", "trend-cost"];
  function redrawCharts() {
    CHARTS.forEach(function (id) {
      var e = $(id);
      if (e._cfg) drawChart(e, e._cfg);
    });
  }
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(redrawCharts, 120);
  });

  // ------------------------------------------------------------------ state
  var st = {
    runs: [],
    selectedId: null,
    selectedName: null,
    gen: 0,               // bumps on every run switch; stale responses are dropped
    live: false,
    es: null,
    pendingSnap: null,
    rafPending: false,
    lastSnap: null,
    rateSeries: [],
    costSeries: [],
    cpuSeries: [],        // the run's process tree: CPU % and resident bytes over run time
    rssSeries: [],
    sampled: false,       // the live run samples its resources (its snapshot has `resources`)
    lastChartDraw: 0,
    unit: "it",
    hasCost: false,       // the live run has money metrics (its snapshot gives a `cost`)
    logKeys: new Set(),
    logSources: new Set(),
    logGen: 0,
    logAfter: 0,          // the last log row id shown: live updates ask for the rows after it
    logBusy: false,
    logDirty: false,
    ended: false,         // the selected run's stream said "end": its final state is shown
    runState: null,       // the server's word on the run's state when its snapshot cannot say it ("crashed")
    finalRow: null,       // then its row (runs list, history table) from the final snapshot
    logCount: 0,
    historyRuns: [],
    cancelRequested: false,
    firstLoad: true
  };

  var cancelBtn = $("cancel");
  var retryBtn = $("retry");
  var costStat = $("run-cost-stat");
  var projectionStat = $("run-projection-stat");
  var costStatAnchor = projectionStat.nextElementSibling;
  var usageStat = $("run-usage-stat");
  usageStat.parentNode.removeChild(usageStat);
  cancelBtn.parentNode.removeChild(cancelBtn);
  retryBtn.parentNode.removeChild(retryBtn);
  costStat.parentNode.removeChild(costStat);
  projectionStat.parentNode.removeChild(projectionStat);

  function showCancel(show) {
    if (show && !cancelBtn.parentNode) $("cancel-msg").parentNode.appendChild(cancelBtn);
    if (!show && cancelBtn.parentNode) cancelBtn.parentNode.removeChild(cancelBtn);
    if (!show) showRetry(false);
  }
  /* Retry is offered while the run is live and has failures (the run answers how many will
     run again: those of its pools still running). */
  function showRetry(show) {
    if (show && !retryBtn.parentNode) $("cancel-msg").parentNode.insertBefore(retryBtn, cancelBtn.parentNode ? cancelBtn : null);
    if (!show && retryBtn.parentNode) retryBtn.parentNode.removeChild(retryBtn);
  }
  /* A state the snapshot cannot say (the run's process vanished: "crashed") wins over its own. */
  function stateOf(root) {
    return st.runState && st.runState !== "running" ? st.runState : root.state;
  }
  /* The cost, its mean per item under it, and (p: the run's projected_cost, while items are
     left) where it is heading, with its ~90% range when the items' own costs are known. */
  function showCost(value, perItem, unit, p) {
    var has = value != null && isFinite(value);
    if (has && !costStat.parentNode) $("stats").insertBefore(costStat, projectionStat.parentNode ? projectionStat : costStatAnchor);
    if (!has && costStat.parentNode) costStat.parentNode.removeChild(costStat);
    if (has) {
      setText($("run-cost"), fmtMoney(value));
      setText($("run-cost-per-item"), perItem != null ? fmtPerItem(perItem) + "/" + (unit === "it" ? "item" : unit) : "");
    }
    var heading = has && p != null && isFinite(p.value);
    if (heading && !projectionStat.parentNode) $("stats").insertBefore(projectionStat, costStatAnchor);
    if (!heading && projectionStat.parentNode) projectionStat.parentNode.removeChild(projectionStat);
    if (heading) {
      setText($("run-projection"), fmtMoney(p.value));
      var range = p.low != null && p.high != null && fmtMoney(p.low) !== fmtMoney(p.high);
      setText($("run-projection-range"), range ? fmtMoney(p.low) + "–" + fmtMoney(p.high).replace("$", "") : "");
    }
  }
  /* What the run's processes use (r: the snapshot's `resources`, or for a past run its CPU
     seconds and peak memory); hidden when the run samples none. */
  function showUsage(r) {
    if (r && !usageStat.parentNode) $("stats").appendChild(usageStat);
    if (!r && usageStat.parentNode) usageStat.parentNode.removeChild(usageStat);
    if (!r) return;
    if (r.live) {
      setText($("run-usage"), fmtCpu(r.cpu_percent) + " · " + fmtBytes(r.rss_bytes));
      var sub = ["peak " + fmtBytes(r.peak_rss_bytes), fmtDur(r.cpu_seconds) + " CPU"];
      (r.disks || []).forEach(function (d) { if (d.low) sub.push("disk " + (d.free_fraction * 100).toFixed(1) + "% free"); });
      setText($("run-usage-sub"), sub.join(" · "));
    } else {
      setText($("run-usage"), fmtDur(r.cpu_seconds) + " CPU");
      setText($("run-usage-sub"), "peak " + fmtBytes(r.peak_rss_bytes));
    }
  }
  function banner(msg) {
    var b = $("banner");
    if (msg) { setText(b, msg); b.hidden = false; } else { b.hidden = true; setText(b, ""); }
  }
  function setConn(cls, text) {
    var c = $("conn");
    c.className = cls || "";
    setText(c, text || "");
  }

  // ------------------------------------------------------------------ runs sidebar
  function loadRuns() {
    return api("api/runs?limit=50&offset=0").then(function (data) {
      banner(null);
      var runs = withFinal((data && data.runs) || []);
      st.runs = runs;
      renderRuns(runs, data && data.total);
      if (st.selectedId == null && runs.length) {
        var fromHash = hashRunId();
        var pick = null;
        if (fromHash != null && runs.some(function (r) { return String(r.id) === String(fromHash); })) pick = fromHash;
        else {
          var live = runs.filter(function (r) { return r.live; });
          pick = (live.length ? live[0] : runs.reduce(function (a, b) { return (b.started_at || 0) > (a.started_at || 0) ? b : a; })).id;
        }
        selectRun(pick);
      } else if (st.selectedId == null && !runs.length) {
        setText($("run-name"), "No runs yet");
      }
    }).catch(function (e) {
      if (!serverGoneAfterEnd(e)) banner("Cannot load runs: " + e.message);
    });
  }

  /* After the selected run's "end", a job that exits takes its server with it: requests then
     fail without an HTTP status. That is no error: the page keeps the run's final state. */
  function serverGoneAfterEnd(e) {
    if (!st.ended || (e && e.status != null)) return false;
    banner(null);
    setConn("", "finished · the job has exited");
    return true;
  }

  function renderRuns(runs, total) {
    setText($("runs-count"), total != null && total > runs.length ? runs.length + " of " + fmtInt(total) : fmtInt(runs.length));
    var ul = $("runs");
    if (!runs.length) { setEmpty(ul, "No runs recorded yet"); return; }
    reconcile(ul, runs, function (r) { return r.id; }, function () {
      var li = h("li", "run");
      var top = h("div", "run-top");
      top.appendChild(h("span", "live-dot"));
      top.appendChild(h("span", "run-name"));
      top.appendChild(h("span", "badge"));
      var meta = h("div", "run-meta");
      meta.appendChild(h("span", "run-time"));
      meta.appendChild(h("span", "run-progress"));
      var mini = h("div", "mini");
      mini.appendChild(h("div"));
      li.appendChild(top);
      li.appendChild(meta);
      li.appendChild(mini);
      li.addEventListener("click", function () {
        var id = li.getAttribute("data-id");
        var run = st.runs.filter(function (x) { return String(x.id) === id; })[0];
        selectRun(run ? run.id : id);
      });
      return li;
    }, function (li, r) {
      li.setAttribute("data-id", String(r.id));
      var cls = "run" + (r.live ? " live" : "") + (String(r.id) === String(st.selectedId) ? " active" : "");
      if (li.className !== cls) li.className = cls;
      var top = li.firstChild, meta = li.children[1], mini = li.children[2];
      top.children[0].style.display = r.live ? "" : "none";
      setText(top.children[1], r.name);
      setTitle(top.children[1], r.name);
      setState(top.children[2], "badge", r.status);
      setText(top.children[2], r.status);
      setText(meta.children[0], fmtStart(r.started_at));
      var prog = [];
      if (r.elapsed != null) prog.push(fmtDur(r.elapsed));
      // One meaning of progress: processed (done + failed + skipped) out of the total.
      var processed = r.processed != null ? r.processed : (r.done || 0) + (r.failed || 0) + (r.skipped || 0);
      if (r.total != null) prog.push(fmtInt(processed) + "/" + fmtInt(r.total));
      else prog.push(fmtInt(processed) + " processed");
      setText(meta.children[1], prog.join(" · "));
      var showMini = r.live && r.total;
      mini.style.display = showMini ? "" : "none";
      if (showMini) mini.firstChild.style.width = Math.min(100, 100 * processed / r.total) + "%";
    });
  }

  function markActive() {
    Array.prototype.forEach.call($("runs").children, function (li) {
      li.classList.toggle("active", li.getAttribute("data-id") === String(st.selectedId));
    });
  }

  function hashRunId() {
    var m = /(?:^#|&)run=([^&]+)/.exec(window.location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  // ------------------------------------------------------------------ run selection
  function closeStream() {
    if (st.es) { st.es.close(); st.es = null; }
  }

  function resetView() {
    closeStream();
    st.pendingSnap = null;
    st.lastSnap = null;
    st.rateSeries = [];
    st.costSeries = [];
    st.cpuSeries = [];
    st.rssSeries = [];
    st.sampled = false;
    st.hasCost = false;
    st.unit = "it";
    st.cancelRequested = false;
    st.ended = false;
    st.runState = null;
    st.finalRow = null;
    st.logAfter = 0;
    st.logKeys = new Set();
    st.logSources = new Set();
    st.historyRuns = [];
    clear($("phases"));
    clear($("lanes"));
    clear($("failures"));
    clear($("log-list"));
    clear($("history-rows"));
    setText($("phases-count"), "");
    setText($("lanes-count"), "");
    setText($("failures-count"), "");
    setText($("log-count"), "");
    setText($("cancel-msg"), "");
    setText($("run-note"), "");
    showCancel(false);
    cancelBtn.disabled = false;
    setText(cancelBtn, "Cancel run");
    retryBtn.disabled = false;
    setText(retryBtn, "Retry failed items");
    var srcSel = $("log-source");
    while (srcSel.options.length > 1) srcSel.remove(1);
    srcSel.value = "all";
    CHARTS.forEach(function (id) { $(id)._cfg = null; clear($(id)); });
  }

  function selectRun(id) {
    if (id == null) return;
    var gen = ++st.gen;
    resetView();
    st.selectedId = id;
    var row = st.runs.filter(function (r) { return String(r.id) === String(id); })[0];
    st.selectedName = row ? row.name : null;
    if (row) setText($("run-name"), row.name);
    markActive();
    try { window.history.replaceState(null, "", window.location.pathname + window.location.search + "#run=" + encodeURIComponent(String(id))); } catch (e) { /* ignore */ }
    setConn("", "loading…");
    loadRun(gen, true);
  }

  function loadRun(gen, full) {
    var id = st.selectedId;
    return api("api/runs/" + encodeURIComponent(id)).then(function (data) {
      if (gen !== st.gen) return;
      banner(null);
      st.runState = data.state || null;
      if (data.live) {
        st.live = true;
        var snap = data.snapshot || {};
        st.selectedName = snap.name || st.selectedName;
        renderSnapshot(snap, true);
        if (full) openStream(gen);
        else setConn("", "finishing…");
      } else if (data.snapshot && !data.run) {
        // finished, but the server still holds its last snapshot: show it as final
        st.live = false;
        closeStream();
        st.selectedName = data.snapshot.name || st.selectedName;
        renderSnapshot(data.snapshot, true, true);
        setConn("", "finished");
        setText($("chart-rate-title"), "Throughput per run (history)");
        setText($("chart-cost-title"), "Cost per run (history)");
        drawPastTrendCharts();
      } else {
        st.live = false;
        closeStream();
        st.selectedName = (data.run && data.run.name) || st.selectedName;
        renderPast(data);
        setConn("", "recorded run");
      }
      if (full || !data.live) {
        loadLogs();
        loadHistory(gen);
      }
      if (!full && data.live) {
        // the run reported "end" but the server still has it live: ask again shortly
        setTimeout(function () { if (gen === st.gen) loadRun(gen, false); }, 1000);
      }
    }).catch(function (e) {
      if (gen !== st.gen || serverGoneAfterEnd(e)) return;
      banner("Cannot load run: " + e.message);
      setConn("", "");
    });
  }

  // ------------------------------------------------------------------ live stream
  function openStream(gen) {
    closeStream();
    var es;
    try { es = new EventSource(eventsUrl(st.selectedId)); } catch (e) { setConn("reconnecting", "stream unavailable"); return; }
    st.es = es;
    setConn("reconnecting", "connecting…");
    es.onopen = function () { if (gen === st.gen) setConn("live", "live"); };
    es.onerror = function () {
      if (gen !== st.gen) return;
      if (es.readyState === EventSource.CLOSED) {
        setConn("reconnecting", "stream closed — retrying");
        // the browser gave up (e.g. an HTTP error): reload the run, which re-opens the stream if live
        setTimeout(function () { if (gen === st.gen && st.es === es) { st.es = null; loadRun(gen, true); } }, 3000);
      } else {
        setConn("reconnecting", "reconnecting…");
      }
    };
    es.addEventListener("snapshot", function (ev) {
      if (gen !== st.gen) return;
      var snap;
      try { snap = JSON.parse(ev.data); } catch (e) { return; }
      st.pendingSnap = snap;
      if (!st.rafPending) {
        st.rafPending = true;
        window.requestAnimationFrame(function () {
          st.rafPending = false;
          if (st.pendingSnap && gen === st.gen) {
            var sn = st.pendingSnap;
            st.pendingSnap = null;
            renderSnapshot(sn, false);
          }
        });
      }
    });
    // Log lines and failures are fetched from the log endpoint, after the last row shown:
    // one shape for every row (live or loaded), and the filters applied by the server.
    ["log", "item_failed", "skipped"].forEach(function (kind) {
      es.addEventListener(kind, function () { if (gen === st.gen) scheduleLogs(); });
    });
    es.addEventListener("run_finished", function () {
      if (gen !== st.gen) return;
      showCancel(false);
    });
    // Another process's run whose process vanished without ending it: "end" follows.
    es.addEventListener("run_crashed", function () {
      if (gen !== st.gen) return;
      st.runState = "crashed";
      showCancel(false);
    });
    es.addEventListener("end", function () { if (gen === st.gen) onEnd(gen); });
  }

  /* The run's last snapshot came just before "end": it is shown as final, then the finished
     run is asked for from the API, if the server is still there (it goes when the job exits). */
  function onEnd(gen) {
    closeStream();
    st.ended = true;
    var sn = st.pendingSnap || st.lastSnap;
    st.pendingSnap = null;
    if (sn) { renderSnapshot(sn, false); showFinalRow(sn); }
    showCancel(false);
    setConn("", "finished");
    scheduleLogs();
    setTimeout(function () {
      if (gen !== st.gen) return;
      loadRun(gen, false);
      loadRuns();
    }, 300);
  }

  /* The run that ended, in the runs list and the history table, from its final snapshot at
     once: both were loaded while it was live, and the server that would give them again goes
     when the job exits. (If it is still there, onEnd asks it for both too.) */
  function showFinalRow(snap) {
    var root = snap.root || {};
    var row = { live: false, status: stateOf(root) };
    ["elapsed", "done", "failed", "skipped", "processed", "total"].forEach(function (k) {
      if (root[k] !== undefined) row[k] = root[k];
    });
    if (root.cost !== undefined) row.cost = root.cost;
    row.id = st.selectedId;
    st.finalRow = row;
    st.runs = withFinal(st.runs);
    renderRuns(st.runs, null);
    if (st.historyRuns.length) {
      st.historyRuns = withFinal(st.historyRuns);
      renderHistory(st.historyRuns);
    }
  }

  /* `runs` with the row of the run that ended made final, where they still say it is live (a
     list asked for just before its end, or while the server has not closed it yet). */
  function withFinal(runs) {
    var f = st.finalRow;
    if (!f) return runs;
    return runs.map(function (r) {
      if (String(r.id) !== String(f.id) || !r.live) return r;
      var out = {};
      Object.keys(r).forEach(function (k) { out[k] = r[k]; });
      Object.keys(f).forEach(function (k) { if (f[k] !== undefined) out[k] = f[k]; });
      return out;
    });
  }

  // ------------------------------------------------------------------ rendering: header
  function renderHeader(o) {
    setText($("run-name"), o.name || "(unnamed)");
    setTitle($("run-name"), o.name || "");
    var rs = $("run-state");
    setState(rs, "badge", o.state);
    setText(rs, o.state || "");
    setText($("run-elapsed"), fmtDur(o.elapsed));
    setText($("run-processed"), fmtInt(o.processed) + " / " + (o.total == null ? "?" : fmtInt(o.total)));
    setText($("run-done"), fmtInt(o.done));
    var f = $("run-failed");
    setText(f, fmtInt(o.failed));
    f.classList.toggle("bad", (o.failed || 0) > 0);
    setText($("run-success"), fmtPct(o.success));
    setText($("run-rate"), fmtRate(o.rate, o.unit));
    setText($("run-eta"), o.etaText || "—");
    showCost(o.cost, o.costPerItem, o.unit, o.projected);
    var bar = $("run-bar");
    var cls = "bar state-" + safeClass(o.state) + (o.fraction == null ? " indeterminate" : "");
    if (bar.className !== cls) bar.className = cls;
    bar.firstChild.style.width = (o.fraction == null ? 100 : Math.max(0, Math.min(1, o.fraction)) * 100) + "%";
    setText($("run-note"), (o.notes || []).join("   ·   "));
  }

  function etaText(n) {
    var terminal = n.state === "completed" || n.state === "failed" || n.state === "cancelled";
    if (terminal) return { text: n.elapsed != null ? "took " + fmtDur(n.elapsed) : n.state, cls: "" };
    if (n.stalled_for != null && n.stalled_for > 0) return { text: "stalled " + fmtDur(n.stalled_for), cls: "stalled" };
    if (n.eta == null) return { text: "ETA ?", cls: "" };
    var t = "ETA " + fmtDur(n.eta);
    if (n.eta_low != null && n.eta_high != null) t += " (" + fmtDur(n.eta_low) + "–" + fmtDur(n.eta_high) + ")";
    return { text: t, cls: n.eta_from_history ? "hist" : "", sub: n.eta_from_history ? "from earlier runs" : "" };
  }

  // ------------------------------------------------------------------ rendering: phases
  function phaseRowCreate() {
    var row = h("div", "phase");
    var name = h("div", "ph-name");
    name.appendChild(h("span", "ph-dot"));
    name.appendChild(h("span", "ph-label"));
    name.appendChild(h("span", "ph-fail"));
    var bar = h("div", "bar");
    bar.appendChild(h("div", "fill"));
    row.appendChild(name);
    row.appendChild(bar);
    row.appendChild(h("div", "ph-pct"));
    row.appendChild(h("div", "ph-count"));
    row.appendChild(h("div", "ph-rate"));
    var eta = h("div", "ph-eta");
    eta.appendChild(h("span", "ph-eta-main"));
    eta.appendChild(h("span", "ph-eta-sub"));
    row.appendChild(eta);
    return row;
  }
  /* p: {id, name, kind, depth, state, fraction, processed, total, failed, rate, unit, divisor (unit_scale), eta: {text, cls}} */
  function phaseRowUpdate(row, p) {
    var cls = "phase kind-" + safeClass(p.kind) + " state-" + safeClass(p.state);
    if (row.className !== cls) row.className = cls;
    row.setAttribute("data-id", String(p.id));
    row.setAttribute("data-depth", String(p.depth));
    var name = row.children[0];
    name.style.paddingLeft = (p.depth * 16) + "px";
    setText(name.children[1], p.name);
    setTitle(name.children[1], p.title || p.name);
    setText(name.children[2], p.failed ? fmtInt(p.failed) + "\u2715" : "");
    setTitle(name.children[2], p.failed ? fmtInt(p.failed) + " failed" : "");
    var bar = row.children[1];
    var indet = p.total == null;
    var bcls = "bar" + (indet ? " indeterminate" : "");
    if (bar.className !== bcls) bar.className = bcls;
    var w = indet ? 100 : (p.fraction != null ? Math.max(0, Math.min(1, p.fraction)) * 100 : 0);
    var ws = w.toFixed(2) + "%";
    if (bar.firstChild.style.width !== ws) bar.firstChild.style.width = ws;
    setText(row.children[2], p.fraction != null ? fmtPct(p.fraction) : "—");
    setText(row.children[3], fmtAmounts(p.processed, p.total, p.unit, p.divisor));
    setText(row.children[4], fmtRate(p.rate, p.unit, p.divisor));
    var eta = row.children[5];
    setText(eta.children[0], p.eta.text);
    setText(eta.children[1], p.eta.sub || "");
    setTitle(eta, p.eta.text + (p.eta.sub ? " · " + p.eta.sub : ""));
    var ecls = "ph-eta" + (p.eta.cls ? " " + p.eta.cls : "");
    if (eta.className !== ecls) eta.className = ecls;
  }
  function renderPhases(list) {
    var c = $("phases");
    setText($("phases-count"), list.length ? String(list.length) : "");
    if (!list.length) { setEmpty(c, "No phases"); return; }
    reconcile(c, list, function (p) { return "p:" + p.id; }, phaseRowCreate, phaseRowUpdate);
  }

  // ------------------------------------------------------------------ rendering: lanes / failures
  function renderLanes(lanes, emptyText) {
    var c = $("lanes");
    var real = lanes.filter(function (l) { return l.done != null; });  // not an item outside any lane
    var busy = real.filter(function (l) { return l.state === "busy"; }).length;
    setText($("lanes-count"), real.length ? busy + " busy / " + real.length : "");
    if (!lanes.length) { setEmpty(c, emptyText || "No worker lanes"); return; }
    reconcile(c, lanes, function (l, i) { return "l:" + (l.id != null ? l.id : i); }, function () {
      var row = h("div", "lane");
      row.appendChild(h("span", "lane-name"));
      row.appendChild(h("span", "badge"));
      row.appendChild(h("span", "lane-item"));
      var counts = h("span", "lane-counts");
      counts.appendChild(h("span", "lane-done"));
      counts.appendChild(document.createTextNode(" · "));
      counts.appendChild(h("span", "lane-failed"));
      row.appendChild(counts);
      // The end of what the item streams, on a line of its own: clipped at its start, as the
      // newest of a stream is its end.
      var tail = h("div", "lane-tail");
      tail.appendChild(h("span"));
      row.appendChild(tail);
      // A worker process's own CPU and memory, on a line of its own: the item keeps its room.
      row.appendChild(h("div", "lane-usage"));
      // What the item reported of itself (an agent loop): iterations, checks, files.
      row.appendChild(h("div", "lane-report"));
      return row;
    }, function (row, l) {
      setState(row, "lane", l.state);
      row.setAttribute("data-id", String(l.id));
      setText(row.children[0], l.name);
      setTitle(row.children[0], l.name);
      setState(row.children[1], "badge", l.state);
      var stText = l.state || "";
      if ((l.state === "stalled" || l.state === "died") && l.heartbeat_age != null) stText += " " + fmtDur(l.heartbeat_age);
      setText(row.children[1], stText);
      var item = row.children[2];
      var hasItem = l.item != null && l.item !== "";
      var icls = "lane-item" + (hasItem ? "" : " none");
      if (item.className !== icls) item.className = icls;
      setText(item, hasItem ? l.item : "—");
      setTitle(item, hasItem ? l.item : "");
      row.children[3].hidden = l.done == null;  // an item outside any lane has no counts
      setText(row.children[3].children[0], fmtInt(l.done) + " done");
      var lf = row.children[3].children[1];
      setText(lf, fmtInt(l.failed) + " failed");
      lf.className = "lane-failed" + ((l.failed || 0) > 0 ? " bad" : "");
      // A thread's lane has no process of its own: no figures.
      var usage = [];
      if (l.cpu_percent != null) usage.push("CPU " + fmtCpu(l.cpu_percent));
      if (l.rss_bytes != null) usage.push("RSS " + fmtBytes(l.rss_bytes));
      setText(row.children[5], usage.join(" · "));
      var tail = row.children[4];
      var streams = l.tail != null && l.tail !== "";
      tail.hidden = !streams;
      setText(tail.firstChild, streams ? l.tail : "");
      setTitle(tail, streams ? l.tail : "");
      var said = reportText(l.report);
      row.children[6].hidden = !said;
      setText(row.children[6], said);
    });
  }

  /* `iteration 3/20 · checks 2/3 · 1 file`, as the monitor says it (agent.summary). */
  function reportText(r) {
    if (!r) return "";
    var parts = [];
    if (r.progress && r.progress.length === 2) parts.push("iteration " + fmtInt(r.progress[0]) + "/" + fmtInt(r.progress[1]));
    if (r.checks) parts.push("checks " + fmtInt(r.checks_ok || 0) + "/" + fmtInt(r.checks));
    if (r.artifacts) parts.push(fmtInt(r.artifacts) + (r.artifacts === 1 ? " file" : " files"));
    return parts.join(" · ");
  }

  /* The lanes, then a row for each item outside any lane that streams (its node keeps the tail)
     or reported of itself; each row with its item's report, if any. */
  function lanesWithStreams(snap) {
    var reports = snap.reports || {};
    var shown = {};
    var rows = (snap.lanes || []).map(function (l) {
      var report = l.item ? reports[l.item] : null;
      if (report) shown[l.item] = true;
      return report ? Object.assign({}, l, { report: report }) : l;
    });
    (function walk(n) {
      if (n.tail_item != null && n.tail) {
        shown[n.tail_item] = true;
        rows.push({ id: "n" + n.id, name: "main", state: "busy", item: n.tail_item, tail: n.tail, done: null, failed: null,
                    report: reports[n.tail_item] || null });
      }
      (n.children || []).forEach(walk);
    })(snap.root || {});
    Object.keys(reports).forEach(function (name) {
      if (!shown[name]) rows.push({ id: "r:" + name, name: "main", state: "busy", item: name, done: null, failed: null, report: reports[name] });
    });
    return rows;
  }

  /* f: {name, phase, error, meta} */
  function renderFailures(list, totalFailed) {
    var c = $("failures");
    setText($("failures-count"), list.length ? (totalFailed != null && totalFailed > list.length ? list.length + " of " + fmtInt(totalFailed) : String(list.length)) : "");
    if (!list.length) { setEmpty(c, "No failures"); return; }
    reconcile(c, list, function (f, i) { return "f:" + i; }, function () {
      var row = h("div", "failure");
      var top = h("div", "f-top");
      top.appendChild(h("span", "f-item"));
      top.appendChild(h("span", "f-phase"));
      top.appendChild(h("span", "f-meta"));
      row.appendChild(top);
      row.appendChild(h("div", "f-error"));
      return row;
    }, function (row, f) {
      var top = row.firstChild;
      setText(top.children[0], f.name);
      setTitle(top.children[0], f.name);
      setText(top.children[1], f.phase ? "in " + f.phase : "");
      setTitle(top.children[1], f.phase || "");
      setText(top.children[2], f.meta || "");
      setText(row.children[1], f.error);
      setTitle(row.children[1], f.error);
    });
  }

  // ------------------------------------------------------------------ live snapshot
  function flattenNodes(node, depth, out, unit) {
    (node.children || []).forEach(function (ch) {
      // A loop entered again (an inner loop) shows its current pass, as tqdm shows an inner bar.
      var ps = ch.current_pass;
      out.push({
        id: ch.id, name: ps ? ch.name + " (pass " + ps.number + ")" : ch.name, kind: ch.kind, depth: depth, state: ch.state,
        fraction: ps ? (ps.total ? Math.min(1, ps.processed / ps.total) : (ps.total === 0 ? 1 : null)) : ch.fraction,
        processed: ps ? ps.processed : ch.processed != null ? ch.processed : (ch.done || 0) + (ch.failed || 0) + (ch.skipped || 0),
        total: ps ? ps.total : ch.total, failed: ch.failed, rate: ch.rate, unit: ch.unit || unit,
        divisor: ch.unit_divisor || null, eta: etaText(ch)
      });
      flattenNodes(ch, depth + 1, out, ch.unit || unit);
    });
    return out;
  }

  function renderSnapshot(snap, initial, final) {
    st.lastSnap = snap;
    var root = snap.root || {};
    st.unit = root.unit || "it";
    // Which metrics are money is the server's rule: every node of the snapshot carries its `cost`.
    var cost = root.cost != null ? root.cost : null;
    st.hasCost = cost != null;
    var notes = [];
    if (root.stalled_for != null && root.stalled_for > 0 && root.state === "running") notes.push("Stalled for " + fmtDur(root.stalled_for));
    if (snap.worker_events_dropped) notes.push(fmtInt(snap.worker_events_dropped) + " worker events dropped");
    if (snap.events_dropped) notes.push(fmtInt(snap.events_dropped) + " events dropped");
    var state = stateOf(root);
    if (state === "crashed") notes.push("The run's process vanished without ending it: these are its last published counts.");
    var eta = etaText(root);
    renderHeader({
      name: snap.name || root.name, state: state,
      elapsed: root.elapsed != null ? root.elapsed : snap.now,
      processed: root.processed != null ? root.processed : (root.done || 0) + (root.failed || 0) + (root.skipped || 0),
      total: root.total, done: root.done, failed: root.failed,
      success: root.success_rate, rate: root.rate, unit: st.unit,
      cost: cost, fraction: root.fraction, notes: notes, costPerItem: root.cost_per_item,
      projected: state === "running" && root.total != null && root.processed < root.total ? root.projected_cost : null,
      etaText: state === "running" || state === "pending" ? eta.text.replace(/^ETA /, "") + (eta.sub ? " · " + eta.sub : "") : "—"
    });
    var running = !final && (state === "running" || state === "pending");
    showCancel(running);
    showRetry(running && (root.failed || 0) > 0);
    if (running && st.cancelRequested) { cancelBtn.disabled = true; setText(cancelBtn, "Cancelling…"); }
    if (!running && st.es == null) setConn("", "finished");

    var usage = snap.resources || null;
    st.sampled = usage != null;
    showUsage(usage ? Object.assign({ live: true }, usage) : null);
    renderPhases(flattenNodes(root, 0, [], st.unit));
    renderLanes(lanesWithStreams(snap), "No worker lanes");
    renderFailures((snap.failures || []).map(function (f) {
      var meta = [];
      if (f.lane != null) meta.push(String(f.lane));
      if (f.duration != null) meta.push(fmtDur(f.duration));
      return { name: f.name, phase: f.node, error: f.error, meta: meta.join(" · ") };
    }), root.failed);

    // chart series (one point per 0.5 s of run time at most)
    var t = snap.now != null ? snap.now : root.elapsed;
    if (t != null) {
      var rs = st.rateSeries, last = rs[rs.length - 1];
      if (!last || t - last.x >= 0.5 || t < last.x) {
        if (last && t < last.x) { st.rateSeries = rs = []; st.costSeries = []; st.cpuSeries = []; st.rssSeries = []; }
        rs.push({ x: t, y: root.rate != null ? root.rate : 0 });
        if (cost != null) st.costSeries.push({ x: t, y: cost });
        if (usage && usage.cpu_percent != null) st.cpuSeries.push({ x: t, y: usage.cpu_percent });
        if (usage && usage.rss_bytes != null) st.rssSeries.push({ x: t, y: usage.rss_bytes });
        [rs, st.costSeries, st.cpuSeries, st.rssSeries].forEach(function (series) {
          if (series.length > 1200) series.splice(0, series.length - 1200);
        });
      }
    }
    var nowMs = Date.now();
    if (final) return;
    if (initial || nowMs - st.lastChartDraw > 400) {
      st.lastChartDraw = nowMs;
      drawLiveCharts();
    }
  }

  function drawLiveCharts() {
    setText($("chart-rate-title"), "Throughput (" + st.unit + "/s)");
    setText($("chart-cost-title"), "Cumulative cost");
    drawChart($("chart-rate"), {
      type: "line", points: st.rateSeries, timeAxis: true, xFmt: fmtDur, yFmt: fmtTick, lastFmt: fmtNum,
      xLabel: "run time", yLabel: st.unit + "/s", color: "#2f6fed", empty: "Waiting for data…"
    });
    drawChart($("chart-cost"), {
      type: "line", points: st.costSeries, timeAxis: true, xFmt: fmtDur, yFmt: fmtMoney,
      xLabel: "run time", yLabel: "cost", color: "#159447",
      empty: st.hasCost ? "Waiting for data…" : "No cost metric in this run"
    });
    drawUsageCharts();
  }

  /* CPU and memory of the run's process tree over run time, on the throughput chart's axis. */
  function drawUsageCharts() {
    setText($("chart-cpu-title"), "CPU (% of one core)");
    setText($("chart-rss-title"), "Memory (resident)");
    var empty = st.sampled ? "Waiting for data…" : "This run samples no resources";
    drawChart($("chart-cpu"), {
      type: "line", points: st.cpuSeries, timeAxis: true, xFmt: fmtDur, yFmt: fmtCpu, yLabel: "CPU",
      color: "#c2410c", empty: empty
    });
    drawChart($("chart-rss"), {
      type: "line", points: st.rssSeries, timeAxis: true, xFmt: fmtDur, yFmt: fmtBytes, yLabel: "RSS",
      color: "#7c3aed", empty: empty
    });
  }

  // ------------------------------------------------------------------ past run
  function renderPast(data) {
    var run = data.run || {};
    var processed = (run.done || 0) + (run.failed || 0) + (run.skipped || 0);
    var terminal = run.status === "completed" || run.status === "failed" || run.status === "cancelled";
    renderHeader({
      name: run.name, state: run.status, elapsed: run.elapsed,
      processed: processed, total: run.total, done: run.done, failed: run.failed,
      success: run.success_rate,
      rate: run.elapsed ? processed / run.elapsed : null, unit: "it",
      cost: run.cost, fraction: run.total ? processed / run.total : (terminal ? 1 : null),
      costPerItem: run.cost != null && processed ? run.cost / processed : null,
      notes: run.status === "running" ? ["This run is not live any more but never recorded an end (it may have been killed)."] : [],
      etaText: "—"
    });
    showUsage(run.cpu_seconds != null ? { live: false, cpu_seconds: run.cpu_seconds, peak_rss_bytes: run.peak_rss_bytes } : null);
    showCancel(false);

    // phases: "a/b/c" paths; depth from the nearest earlier path that is a prefix
    var phases = data.phases || [];
    var seen = [];
    var list = phases.map(function (p, i) {
      var path = Array.isArray(p.path) ? p.path.join("/") : String(p.path == null ? "" : p.path);
      var parent = null;
      seen.forEach(function (q) { if (path.indexOf(q.path + "/") === 0 && (!parent || q.path.length > parent.path.length)) parent = q; });
      var depth = parent ? parent.depth + 1 : 0;
      var name = parent ? path.slice(parent.path.length + 1) : path;
      seen.push({ path: path, depth: depth });
      var pr = (p.done || 0) + (p.failed || 0) + (p.skipped || 0);
      var pterm = p.status === "completed" || p.status === "failed" || p.status === "cancelled";
      return {
        id: path || i, name: name, title: path, kind: p.kind || (depth > 0 ? "step" : "phase"), depth: depth, state: p.status,
        fraction: p.total ? pr / p.total : null, processed: pr, total: p.total, failed: p.failed,
        rate: p.rate != null ? p.rate : (p.elapsed ? pr / p.elapsed : null), unit: p.unit || "it",
        divisor: p.unit_divisor || null,
        eta: pterm ? { text: p.elapsed != null ? "took " + fmtDur(p.elapsed) : String(p.status), cls: "" }
                   : { text: p.elapsed != null ? "ran " + fmtDur(p.elapsed) : "ETA ?", cls: "" }
      };
    });
    renderPhases(list);
    renderLanes([], "Not running");
    renderFailures((data.failures || []).map(function (f) {
      return { name: f.name, phase: f.phase, error: f.error, meta: "" };
    }), run.failed);
    setText($("chart-rate-title"), "Throughput per run (history)");
    setText($("chart-cost-title"), "Cost per run (history)");
    drawPastTrendCharts();
  }

  // ------------------------------------------------------------------ logs
  var LEVELS = { debug: 10, info: 20, warning: 30, error: 40, critical: 50 };
  function levelRank(l) { var r = LEVELS[String(l || "").toLowerCase()]; return r == null ? 20 : r; }
  function logKey(l) {
    if (l.id != null) return "id:" + l.id;
    return "k:" + (l.ts != null ? Math.round(l.ts * 1000) : "") + "|" + l.level + "|" + l.source + "|" + l.message;
  }

  function addSource(src) {
    if (src == null || src === "" || st.logSources.has(src)) return;
    st.logSources.add(src);
    var sel = $("log-source");
    var opts = Array.prototype.slice.call(sel.options, 1);
    var o = document.createElement("option");
    o.value = String(src);
    o.textContent = String(src);
    var before = null;
    for (var i = 0; i < opts.length; i++) { if (opts[i].value.localeCompare(String(src)) > 0) { before = opts[i]; break; } }
    sel.insertBefore(o, before);
  }

  function logRow(l) {
    var lvl = safeClass(l.level || "info");
    var row = h("div", "log lvl-" + lvl);
    row.appendChild(h("span", "log-time", fmtClock(l.ts)));
    row.appendChild(h("span", "log-level", l.level || "info"));
    var src = h("span", "log-source", l.source == null ? "" : l.source);
    if (l.source != null) src.setAttribute("title", String(l.source));
    row.appendChild(src);
    var msg = h("span", "log-msg");
    var path = Array.isArray(l.path) ? l.path.join(" › ") : (l.path ? String(l.path).split("/").join(" › ") : "");
    if (path) msg.appendChild(h("span", "log-path", path));
    msg.appendChild(document.createTextNode(l.message == null ? "" : String(l.message)));
    row.appendChild(msg);
    if (l.ts != null) row.setAttribute("title", new Date(l.ts * 1000).toLocaleString());
    return row;
  }

  var MAX_LOGS = 2000;
  function appendLogs(logs) {
    var list = $("log-list");
    var atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 24;
    var empty = list.querySelector(".empty");
    var frag = document.createDocumentFragment(), added = 0;
    logs.forEach(function (l) {
      var k = logKey(l);
      if (st.logKeys.has(k)) return;
      st.logKeys.add(k);
      frag.appendChild(logRow(l));
      added++;
    });
    if (!added) return;
    if (empty) list.removeChild(empty);
    list.appendChild(frag);
    while (list.children.length > MAX_LOGS) list.removeChild(list.firstChild);
    st.logCount = list.children.length;
    setText($("log-count"), fmtInt(st.logCount) + (st.logCount >= MAX_LOGS ? " (latest)" : ""));
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function logQuery() {
    var q = [];
    var lvl = $("log-level").value, src = $("log-source").value;
    if (lvl !== "all") q.push("level=" + encodeURIComponent(lvl));
    if (src !== "all") q.push("source=" + encodeURIComponent(src));
    if (st.logAfter) q.push("after=" + encodeURIComponent(st.logAfter));
    return q.length ? "?" + q.join("&") : "";
  }

  /* All the rows again: a run chosen, a filter changed. */
  function loadLogs() {
    st.logAfter = 0;
    fetchLogs(true);
  }

  /* The rows after the last one shown (a log line or a failure came on the stream): one
     request at a time, at most four a second, however busy the run. */
  function scheduleLogs() {
    if (st.logBusy) { st.logDirty = true; return; }
    fetchLogs(false);
  }

  function fetchLogs(full) {
    var id = st.selectedId;
    if (id == null) return;
    var req = ++st.logGen, gen = st.gen, list = $("log-list");
    st.logBusy = true;
    st.logDirty = false;
    api("api/runs/" + encodeURIComponent(id) + "/logs" + logQuery()).then(function (data) {
      if (req !== st.logGen || gen !== st.gen) return;
      var logs = ((data && data.logs) || []).slice().sort(function (a, b) { return a.id - b.id; });
      logs.forEach(function (l) { addSource(l.source); if (l.id > st.logAfter) st.logAfter = l.id; });
      if (full) {
        clear(list);
        st.logKeys = new Set();
        if (!logs.length) {
          var filtered = $("log-level").value !== "all" || $("log-source").value !== "all";
          setEmpty(list, "No log lines" + (filtered ? " match the filters" : ""));
          setText($("log-count"), "0");
        }
      }
      appendLogs(logs.slice(-MAX_LOGS));
      if (full) list.scrollTop = list.scrollHeight;
    }).catch(function (e) {
      if (req !== st.logGen || gen !== st.gen || serverGoneAfterEnd(e)) return;
      if (full) setEmpty(list, "Cannot load logs: " + e.message);
    }).then(function () {
      if (req !== st.logGen) return;
      st.logBusy = false;
      if (st.logDirty && gen === st.gen) setTimeout(scheduleLogs, 250);
    });
  }
  $("log-level").addEventListener("change", loadLogs);
  $("log-source").addEventListener("change", loadLogs);

  // ------------------------------------------------------------------ history
  function loadHistory(gen) {
    var name = st.selectedName;
    setText($("history-name"), name ? "· " + name : "");
    if (!name) return;
    api("api/runs?limit=50&offset=0&name=" + encodeURIComponent(name)).then(function (data) {
      if (gen !== st.gen) return;
      var runs = withFinal(((data && data.runs) || []).filter(function (r) { return r.name === name || r.name == null; }));
      st.historyRuns = runs;
      renderHistory(runs);
      if (!st.live) drawPastTrendCharts();
    }).catch(function (e) {
      if (gen !== st.gen) return;
      historyMessage("Cannot load history: " + e.message);
    });
  }

  // Empties the history table; with `text`, one row spanning it says why it is empty.
  function historyMessage(text) {
    var tb = $("history-rows");
    clear(tb);
    if (text) {
      var tr = h("tr"), td = h("td", "empty", text);
      td.setAttribute("colspan", "6");
      tr.appendChild(td);
      tb.appendChild(tr);
    }
    return tb;
  }

  function chronological(runs) {
    return runs.slice().sort(function (a, b) { return (a.started_at || 0) - (b.started_at || 0); });
  }
  function runTitle(r) {
    return fmtStart(r.started_at) + " — " + (r.status || "") + (r.elapsed != null ? " — " + fmtDur(r.elapsed) : "") +
      (r.cost != null ? " — " + fmtMoney(r.cost) : "");
  }
  function xTicksFor(runs, maxTicks) {
    var n = runs.length, ticks = [];
    if (!n) return ticks;
    if (maxTicks === 2) {
      ticks.push({ x: 0, label: fmtShortDate(runs[0].started_at) });
      if (n > 1) ticks.push({ x: n - 1, label: fmtShortDate(runs[n - 1].started_at) });
      return ticks;
    }
    var every = Math.max(1, Math.ceil(n / (maxTicks || 4)));
    for (var i = 0; i < n; i += every) ticks.push({ x: i, label: fmtShortDate(runs[i].started_at) });
    if (n > 1 && ticks[ticks.length - 1].x !== n - 1 && (n - 1) - ticks[ticks.length - 1].x >= every) ticks.push({ x: n - 1, label: fmtShortDate(runs[n - 1].started_at) });
    return ticks;
  }

  function renderHistory(runs) {
    var tb = historyMessage(runs.length ? null : "No runs with this name");
    runs.forEach(function (r) {
      var tr = h("tr", "hist-row" + (String(r.id) === String(st.selectedId) ? " current" : ""));
      tr.setAttribute("data-id", String(r.id));
      tr.appendChild(h("td", null, fmtStart(r.started_at).replace(",", "")));
      var tdS = h("td");
      var b = h("span", "badge state-" + safeClass(r.status), r.status || "");
      tdS.appendChild(b);
      tr.appendChild(tdS);
      tr.appendChild(h("td", "n", r.live ? "live" : fmtDur(r.elapsed)));
      tr.appendChild(h("td", "n", fmtInt(r.done)));
      tr.appendChild(h("td", "n", fmtInt(r.failed)));
      tr.appendChild(h("td", "n", r.cost != null ? fmtMoney(r.cost) : "—"));
      tr.addEventListener("click", function () { if (String(r.id) !== String(st.selectedId)) selectRun(r.id); });
      tb.appendChild(tr);
    });

    var past = chronological(runs.filter(function (r) { return !r.live; }));
    var ticks = xTicksFor(past, 2);
    drawChart($("trend-duration"), {
      type: "bar", n: past.length, xTicks: ticks, yFmt: fmtDur, yLabel: "duration", empty: "No finished runs yet",
      points: past.map(function (r, i) {
        return { x: i, y: r.elapsed, cls: r.status, hl: String(r.id) === String(st.selectedId), title: runTitle(r) };
      })
    });
    var costPts = [];
    past.forEach(function (r, i) { if (r.cost != null) costPts.push({ x: i, y: r.cost, hl: String(r.id) === String(st.selectedId), title: runTitle(r) }); });
    drawChart($("trend-cost"), {
      type: costPts.length === 1 ? "bar" : "line", dots: true, area: false, yFmt: fmtMoney, yLabel: "cost",
      xTicks: costPts.length === 1 ? [{ x: 0, label: fmtShortDate(past[costPts[0].x].started_at) }] : ticks,
      color: "#159447", empty: "No cost recorded",
      points: costPts.length === 1 ? [{ x: 0, y: costPts[0].y, cls: "completed", hl: costPts[0].hl, title: costPts[0].title }] : costPts
    });
  }

  function drawPastTrendCharts() {
    var past = chronological(st.historyRuns.filter(function (r) { return !r.live; }));
    var ticks = xTicksFor(past);
    var ratePts = [], costPts = [], cpuPts = [], rssPts = [];
    past.forEach(function (r, i) {
      var n = (r.done || 0) + (r.failed || 0) + (r.skipped || 0);
      var hl = String(r.id) === String(st.selectedId);
      if (r.elapsed) ratePts.push({ x: i, y: n / r.elapsed, hl: hl, title: runTitle(r) + " — " + fmtRate(n / r.elapsed, "it") });
      if (r.cost != null) costPts.push({ x: i, y: r.cost, hl: hl, title: runTitle(r) });
      if (r.cpu_seconds != null) cpuPts.push({ x: i, y: r.cpu_seconds, hl: hl, title: runTitle(r) + " — " + fmtDur(r.cpu_seconds) + " CPU" });
      if (r.peak_rss_bytes != null) rssPts.push({ x: i, y: r.peak_rss_bytes, hl: hl, title: runTitle(r) + " — peak " + fmtBytes(r.peak_rss_bytes) });
    });
    var barIfOne = function (pts, cls) {
      return pts.length === 1 ? { type: "bar", points: [{ x: 0, y: pts[0].y, cls: cls, hl: true, title: pts[0].title }], xTicks: [{ x: 0, label: ticks.length ? ticks[ticks.length - 1].label : "" }] }
                              : { type: "line", points: pts, xTicks: ticks };
    };
    var rc = barIfOne(ratePts, "running");
    drawChart($("chart-rate"), {
      type: rc.type, points: rc.points, xTicks: rc.xTicks, dots: true, yFmt: fmtTick, yLabel: "it/s", xLabel: "run",
      color: "#2f6fed", empty: st.historyRuns.length ? "Not enough history" : "Loading history…"
    });
    var cc = barIfOne(costPts, "completed");
    drawChart($("chart-cost"), {
      type: cc.type, points: cc.points, xTicks: cc.xTicks, dots: true, yFmt: fmtMoney, yLabel: "cost", xLabel: "run",
      color: "#159447", empty: "No cost recorded for these runs"
    });
    setText($("chart-cpu-title"), "CPU time per run (history)");
    setText($("chart-rss-title"), "Peak memory per run (history)");
    var uc = barIfOne(cpuPts, "completed"), mc = barIfOne(rssPts, "completed");
    drawChart($("chart-cpu"), {
      type: uc.type, points: uc.points, xTicks: uc.xTicks, dots: true, yFmt: fmtDur, yLabel: "CPU",
      color: "#c2410c", empty: "No resources recorded for these runs"
    });
    drawChart($("chart-rss"), {
      type: mc.type, points: mc.points, xTicks: mc.xTicks, dots: true, yFmt: fmtBytes, yLabel: "peak",
      color: "#7c3aed", empty: "No resources recorded for these runs"
    });
  }

  // ------------------------------------------------------------------ cancel
  cancelBtn.addEventListener("click", function () {
    var id = st.selectedId, gen = st.gen;
    var name = (st.lastSnap && st.lastSnap.name) || st.selectedName || String(id);
    if (!window.confirm("Cancel run " + name + "?")) return;
    cancelBtn.disabled = true;
    setText(cancelBtn, "Cancelling…");
    var msg = $("cancel-msg");
    msg.className = "";
    setText(msg, "");
    api("api/runs/" + encodeURIComponent(id) + "/cancel", { method: "POST" }).then(function (data) {
      if (gen !== st.gen) return;
      st.cancelRequested = true;
      // The run's own answer when it is another process's ("cancel requested: items in flight finish...").
      setText(msg, data && data.cancelled === false ? "Cancel not accepted" : (data && data.message) || "Cancellation requested");
      if (data && data.cancelled === false) { msg.className = "err"; cancelBtn.disabled = false; setText(cancelBtn, "Cancel run"); }
    }).catch(function (e) {
      if (gen !== st.gen) return;
      msg.className = "err";
      setText(msg, "Cancel failed: " + e.message);
      cancelBtn.disabled = false;
      setText(cancelBtn, "Cancel run");
    });
  });

  retryBtn.addEventListener("click", function () {
    var id = st.selectedId, gen = st.gen;
    var name = (st.lastSnap && st.lastSnap.name) || st.selectedName || String(id);
    if (!window.confirm("Run the failed items of " + name + " again?")) return;
    retryBtn.disabled = true;
    setText(retryBtn, "Asking…");
    var msg = $("cancel-msg");
    msg.className = "";
    setText(msg, "");
    api("api/runs/" + encodeURIComponent(id) + "/retry", { method: "POST" }).then(function (data) {
      if (gen !== st.gen) return;
      setText(msg, (data && data.message) || "Retry requested");
    }).catch(function (e) {
      if (gen !== st.gen) return;
      msg.className = "err";
      setText(msg, "Retry failed: " + e.message);
    }).then(function () {
      if (gen !== st.gen) return;
      retryBtn.disabled = false;
      setText(retryBtn, "Retry failed items");
    });
  });

  // ------------------------------------------------------------------ boot
  window.addEventListener("hashchange", function () {
    var id = hashRunId();
    if (id != null && String(id) !== String(st.selectedId)) selectRun(id);
  });
  window.addEventListener("beforeunload", closeStream);
  loadRuns();
  setInterval(loadRuns, 5000);
})();
