"use strict";
// loopml UI: the charts. Canvas drawing, hover tooltips, zoom, log scale and smoothing; no library, no
// inline script (the page's CSP allows scripts from this server only). User text is set with textContent.
(function () {
  const COLORS = ["#0b57d0", "#c5221f", "#188038", "#b06000", "#8430ce", "#007b83", "#5f6368", "#d01884",
    "#1e4e8c", "#6b8e23"];
  const PAD = { left: 64, right: 14, top: 10, bottom: 30 };

  function fmt(v) {
    if (!Number.isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
    return String(Number(v.toPrecision(6)));
  }

  function setup(canvas) {
    const box = canvas.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(box.width * ratio));
    canvas.height = Math.max(1, Math.round(box.height * ratio));
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return { ctx: ctx, w: box.width, h: box.height };
  }

  function ticks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(function (m) { return m * mag; }).find(function (s) { return s >= raw; });
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(t);
    return out;
  }

  function nearest(steps, step) {
    let lo = 0, hi = steps.length - 1;
    if (hi < 0) return -1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (steps[mid] < step) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && Math.abs(steps[lo - 1] - step) <= Math.abs(steps[lo] - step)) return lo - 1;
    return lo;
  }

  function axes(ctx, g, xTicks, yTicks, log, xLabel) {
    ctx.strokeStyle = "#d0d7de"; ctx.fillStyle = "#4a5361"; ctx.lineWidth = 1;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    yTicks.forEach(function (t) {
      const y = g.sy(t);
      ctx.beginPath(); ctx.moveTo(PAD.left, y); ctx.lineTo(g.w - PAD.right, y); ctx.stroke();
      ctx.fillText(fmt(log ? Math.pow(10, t) : t), PAD.left - 6, y);
    });
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    xTicks.forEach(function (t) {
      const x = typeof t === "object" ? g.sx(t.at) : g.sx(t);
      ctx.fillText(typeof t === "object" ? t.label : fmt(t), x, g.h - PAD.bottom + 6);
    });
    if (xLabel) { ctx.textAlign = "right"; ctx.fillText(xLabel, g.w - PAD.right, g.h - 12); }
  }

  function geometry(w, h, x0, x1, y0, y1) {
    const pw = Math.max(1, w - PAD.left - PAD.right), ph = Math.max(1, h - PAD.top - PAD.bottom);
    const dx = x1 > x0 ? x1 - x0 : 1, dy = y1 > y0 ? y1 - y0 : 1;
    return {
      w: w, h: h, x0: x0, x1: x1,
      sx: function (v) { return PAD.left + (v - x0) / dx * pw; },
      sy: function (v) { return PAD.top + ph - (v - y0) / dy * ph; },
      ix: function (px) { return x0 + (px - PAD.left) / pw * dx; },
    };
  }

  function showTip(tip, canvas, px, py, lines) {
    tip.replaceChildren();
    lines.forEach(function (line) {
      const row = document.createElement("div");
      if (line.color) {
        const sw = document.createElement("span");
        sw.className = "swatch"; sw.style.background = line.color;
        sw.style.display = "inline-block"; sw.style.width = "8px"; sw.style.height = "8px"; sw.style.marginRight = "4px";
        row.appendChild(sw);
      }
      row.appendChild(document.createTextNode(line.text));
      tip.appendChild(row);
    });
    tip.hidden = false;
    const left = canvas.offsetLeft + px + 14, top = canvas.offsetTop + Math.max(0, py - 10);
    const maxLeft = canvas.offsetLeft + canvas.clientWidth - tip.offsetWidth;
    tip.style.left = Math.min(left, Math.max(canvas.offsetLeft, maxLeft)) + "px";
    tip.style.top = top + "px";
  }

  // ---- line chart of metric histories --------------------------------------------------------------
  function LineChart(fig) {
    this.fig = fig;
    this.canvas = fig.querySelector("canvas");
    this.tip = fig.querySelector(".tooltip");
    this.legend = fig.querySelector(".legend");
    this.key = fig.dataset.key;
    this.runs = fig.dataset.runs.split(",").filter(Boolean);
    this.log = false; this.smooth = 0; this.range = null; this.data = null; this.cursor = null; this.drag = null;
    const self = this;
    fig.querySelector("[data-log]").addEventListener("change", function (e) { self.log = e.target.checked; self.draw(); });
    fig.querySelector("[data-smooth]").addEventListener("input", function (e) { self.smooth = Number(e.target.value); self.draw(); });
    fig.querySelector("[data-reset]").addEventListener("click", function () { self.zoom(null); });
    const c = this.canvas;
    c.addEventListener("mousemove", function (e) { self.move(e.offsetX, e.offsetY); });
    c.addEventListener("mouseleave", function () { if (!self.drag) { self.cursor = null; self.tip.hidden = true; self.draw(); } });
    c.addEventListener("mousedown", function (e) { self.drag = { from: e.offsetX, to: e.offsetX }; });
    window.addEventListener("mouseup", function () { self.release(); });
    c.addEventListener("dblclick", function () { self.zoom(null); });
    c.addEventListener("keydown", function (e) { self.key_(e); });
    c.addEventListener("blur", function () { self.tip.hidden = true; });
  }

  LineChart.prototype.load = async function () {
    const width = Math.round(this.canvas.getBoundingClientRect().width) || 600;
    const q = new URLSearchParams();
    q.set("key", this.key);
    this.runs.forEach(function (r) { q.append("run", r); });
    q.set("points", String(Math.max(10, Math.min(4000, width))));
    if (this.range) { q.set("lo", String(Math.floor(this.range[0]))); q.set("hi", String(Math.ceil(this.range[1]))); }
    this.fig.setAttribute("aria-busy", "true");
    const answer = await fetch("/ui/data/metric-history?" + q.toString(), { credentials: "same-origin" });
    this.fig.removeAttribute("aria-busy");
    if (!answer.ok) {
      const p = document.createElement("p"); p.className = "error";
      p.textContent = "Could not load the history (" + answer.status + ")";
      this.fig.appendChild(p);
      return;
    }
    this.data = await answer.json();
    this.drawLegend();
    this.draw();
    this.fig.dataset.drawn = String(Math.round(performance.now()));
  };

  LineChart.prototype.drawLegend = function () {
    if (!this.legend) return;
    this.legend.replaceChildren();
    if (this.data.runs.length < 2) return;
    this.data.runs.forEach(function (r, i) {
      const item = document.createElement("span");
      const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = COLORS[i % COLORS.length];
      item.appendChild(sw); item.appendChild(document.createTextNode(r.name));
      this.legend.appendChild(item);
    }, this);
  };

  LineChart.prototype.series = function () {
    const smooth = this.smooth, log = this.log;
    return this.data.runs.map(function (r, i) {
      let values = r.values;
      if (smooth > 0) {  // exponential moving average, debiased at the start (as TensorBoard does)
        let last = 0, weight = 0;
        values = values.map(function (v) { last = last * smooth + (1 - smooth) * v; weight = weight * smooth + (1 - smooth); return last / weight; });
      }
      const steps = [], shown = [], raw = [];
      for (let k = 0; k < values.length; k++) {
        if (log && !(values[k] > 0)) continue;
        steps.push(r.steps[k]); shown.push(log ? Math.log10(values[k]) : values[k]); raw.push(values[k]);
      }
      return { name: r.name, color: COLORS[i % COLORS.length], steps: steps, y: shown, values: raw };
    });
  };

  LineChart.prototype.draw = function () {
    if (!this.data) return;
    const s = setup(this.canvas), ctx = s.ctx, all = this.series();
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    all.forEach(function (r) {
      if (r.steps.length) { x0 = Math.min(x0, r.steps[0]); x1 = Math.max(x1, r.steps[r.steps.length - 1]); }
      r.y.forEach(function (v) { if (v < y0) y0 = v; if (v > y1) y1 = v; });
    });
    if (this.range) { x0 = this.range[0]; x1 = this.range[1]; }
    if (!Number.isFinite(x0)) { ctx.fillStyle = "#4a5361"; ctx.fillText("no points to draw", PAD.left, 20); return; }
    if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
    const margin = (y1 - y0) * 0.05;
    const g = geometry(s.w, s.h, x0, x1, y0 - margin, y1 + margin);
    this.g = g;
    axes(ctx, g, ticks(x0, x1, 6), ticks(y0, y1, 5), this.log, "step");
    ctx.save();
    ctx.beginPath(); ctx.rect(PAD.left, PAD.top, s.w - PAD.left - PAD.right, s.h - PAD.top - PAD.bottom); ctx.clip();
    all.forEach(function (r) {
      ctx.strokeStyle = r.color; ctx.lineWidth = 1.5; ctx.beginPath();
      for (let k = 0; k < r.steps.length; k++) {
        const x = g.sx(r.steps[k]), y = g.sy(r.y[k]);
        if (k === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      }
      if (r.steps.length === 1) ctx.arc(g.sx(r.steps[0]), g.sy(r.y[0]), 2, 0, 2 * Math.PI);
      ctx.stroke();
    });
    ctx.restore();
    if (this.drag && Math.abs(this.drag.to - this.drag.from) > 2) {
      ctx.fillStyle = "rgba(11, 87, 208, 0.15)";
      ctx.fillRect(Math.min(this.drag.from, this.drag.to), PAD.top, Math.abs(this.drag.to - this.drag.from), s.h - PAD.top - PAD.bottom);
    }
    if (this.cursor !== null) {
      const step = this.cursor, lines = [{ text: this.key + " at step " + fmt(Math.round(step)) }];
      ctx.strokeStyle = "#4a5361"; ctx.beginPath(); ctx.moveTo(g.sx(step), PAD.top); ctx.lineTo(g.sx(step), s.h - PAD.bottom); ctx.stroke();
      all.forEach(function (r) {
        const k = nearest(r.steps, step);
        if (k < 0) return;
        ctx.fillStyle = r.color; ctx.beginPath(); ctx.arc(g.sx(r.steps[k]), g.sy(r.y[k]), 3.5, 0, 2 * Math.PI); ctx.fill();
        lines.push({ color: r.color, text: r.name + ": " + fmt(r.values[k]) + " (step " + r.steps[k] + ")" });
      });
      showTip(this.tip, this.canvas, g.sx(step), PAD.top + 10, lines);
    }
  };

  LineChart.prototype.move = function (px) {
    if (!this.g) return;
    if (this.drag) this.drag.to = px;
    this.cursor = Math.min(this.g.x1, Math.max(this.g.x0, this.g.ix(px)));
    this.draw();
  };

  LineChart.prototype.release = function () {
    if (!this.drag) return;
    const d = this.drag; this.drag = null;
    if (Math.abs(d.to - d.from) > 5 && this.g) {
      this.zoom([this.g.ix(Math.min(d.from, d.to)), this.g.ix(Math.max(d.from, d.to))]);
    } else { this.draw(); }
  };

  LineChart.prototype.zoom = function (range) {
    if (range && range[1] - range[0] < 1) range = [range[0] - 0.5, range[0] + 0.5];
    this.range = range; this.load();
  };

  LineChart.prototype.key_ = function (e) {
    if (!this.g) return;
    const span = this.g.x1 - this.g.x0;
    if (this.cursor === null) this.cursor = this.g.x0;
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      const delta = span / (e.shiftKey ? 10 : 100) * (e.key === "ArrowRight" ? 1 : -1);
      this.cursor = Math.min(this.g.x1, Math.max(this.g.x0, this.cursor + delta)); this.draw();
    } else if (e.key === "+" || e.key === "=") {
      this.zoom([this.cursor - span / 4, this.cursor + span / 4]);
    } else if (e.key === "-") {
      this.zoom([this.g.x0 - span / 2, this.g.x1 + span / 2]);
    } else if (e.key === "Escape") {
      this.zoom(null);
    } else { return; }
    e.preventDefault();
  };

  // ---- scatter of a parameter against a metric ------------------------------------------------------
  function Scatter(fig, data) {
    this.fig = fig; this.data = data;
    this.canvas = fig.querySelector("canvas"); this.tip = fig.querySelector(".tooltip");
    this.xSel = fig.querySelector("[data-x]"); this.ySel = fig.querySelector("[data-y]");
    this.logBox = fig.querySelector("[data-log]"); this.active = -1; this.points = [];
    const self = this;
    [this.xSel, this.ySel, this.logBox].forEach(function (el) { el.addEventListener("change", function () { self.draw(); }); });
    this.canvas.addEventListener("mousemove", function (e) { self.hover(e.offsetX, e.offsetY); });
    this.canvas.addEventListener("mouseleave", function () { self.active = -1; self.tip.hidden = true; self.draw(); });
    this.canvas.addEventListener("keydown", function (e) {
      if (!self.points.length) return;
      if (e.key === "ArrowRight") self.active = (self.active + 1) % self.points.length;
      else if (e.key === "ArrowLeft") self.active = (self.active - 1 + self.points.length) % self.points.length;
      else return;
      e.preventDefault(); self.draw();
    });
    this.draw();
  }

  Scatter.prototype.draw = function () {
    const s = setup(this.canvas), ctx = s.ctx, xKey = this.xSel.value, yKey = this.ySel.value, log = this.logBox.checked;
    const rows = this.data.runs.filter(function (r) { return xKey in r.params && yKey in r.metrics && (!log || r.metrics[yKey] > 0); });
    const numeric = rows.every(function (r) { return r.params[xKey].trim() !== "" && Number.isFinite(Number(r.params[xKey])); });
    const cats = numeric ? [] : Array.from(new Set(rows.map(function (r) { return r.params[xKey]; }))).sort();
    const xs = rows.map(function (r) { return numeric ? Number(r.params[xKey]) : cats.indexOf(r.params[xKey]); });
    const ys = rows.map(function (r) { return log ? Math.log10(r.metrics[yKey]) : r.metrics[yKey]; });
    if (!rows.length) { ctx.fillStyle = "#4a5361"; ctx.fillText("no run has both", PAD.left, 20); this.points = []; return; }
    let x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (x0 === x1) { x0 -= 0.5; x1 += 0.5; } if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
    const mx = (x1 - x0) * 0.06, my = (y1 - y0) * 0.06;
    const g = geometry(s.w, s.h, x0 - mx, x1 + mx, y0 - my, y1 + my);
    const xTicks = numeric ? ticks(x0, x1, 6) : cats.map(function (c, i) { return { at: i, label: c.length > 14 ? c.slice(0, 13) + "…" : c }; });
    axes(ctx, g, xTicks, ticks(y0, y1, 5), log, xKey);
    this.points = rows.map(function (r, i) { return { x: g.sx(xs[i]), y: g.sy(ys[i]), run: r }; });
    this.points.forEach(function (p, i) {
      ctx.fillStyle = i === this.active ? "#c5221f" : "#0b57d0";
      ctx.beginPath(); ctx.arc(p.x, p.y, i === this.active ? 6 : 4, 0, 2 * Math.PI); ctx.fill();
    }, this);
    if (this.active >= 0 && this.active < this.points.length) {
      const p = this.points[this.active];
      showTip(this.tip, this.canvas, p.x, p.y, [
        { text: p.run.name }, { text: xKey + " = " + p.run.params[xKey] }, { text: yKey + " = " + fmt(p.run.metrics[yKey]) },
      ]);
    }
  };

  Scatter.prototype.hover = function (px, py) {
    let best = -1, dist = 144;
    this.points.forEach(function (p, i) { const d = (p.x - px) * (p.x - px) + (p.y - py) * (p.y - py); if (d < dist) { dist = d; best = i; } });
    if (best !== this.active) { this.active = best; if (best < 0) this.tip.hidden = true; this.draw(); }
  };

  // ---- wiring ---------------------------------------------------------------------------------------
  function start() {
    const charts = Array.from(document.querySelectorAll("[data-chart]")).map(function (fig) { return new LineChart(fig); });
    const seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) return;
        seen.unobserve(entry.target);
        charts.find(function (c) { return c.fig === entry.target; }).load();
      });
    }, { rootMargin: "200px" });
    charts.forEach(function (c) { seen.observe(c.fig); });
    const fig = document.querySelector("[data-scatter]"), json = document.getElementById("scatter-data");
    const scatters = fig && json ? [new Scatter(fig, JSON.parse(json.textContent))] : [];
    let pending = 0;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () { charts.forEach(function (c) { c.draw(); }); scatters.forEach(function (s) { s.draw(); }); }, 150);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
