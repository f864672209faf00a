// Step-indexed canvas plots: line series, shaded intervention segments, I = 1 ticks, a threshold and a
// cursor at the current step. Clicking a plot reports the step under the pointer.
"use strict";

const PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f",
  "#9333ea", "#0f766e", "#b45309", "#1d4ed8", "#e11d48", "#65a30d"];
const RISE = "#1f8a4c", DROP = "#c0392b";

class StepPlot {
  // options: {length, title, series: [{values, color, rises}], segments, ticks, threshold, marker}
  constructor(canvas, options, onSeek) {
    this.canvas = canvas;
    this.o = options;
    this.cursor = 0;
    canvas.addEventListener("click", (event) => {
      const box = canvas.getBoundingClientRect();
      onSeek(this.stepAt((event.clientX - box.left) / box.width));
    });
    this.range = this.valueRange();
    this.draw();
  }

  stepAt(fraction) {
    return Math.min(this.o.length - 1, Math.max(0, Math.floor(fraction * this.o.length)));
  }

  valueRange() {
    let lo = Infinity, hi = -Infinity;
    for (const s of this.o.series || []) for (const v of s.values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (this.o.threshold !== null && this.o.threshold !== undefined) {
      lo = Math.min(lo, this.o.threshold); hi = Math.max(hi, this.o.threshold);
    }
    if (!isFinite(lo)) return [0, 1];
    if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
    const pad = 0.06 * (hi - lo);
    return [lo - pad, hi + pad];
  }

  setCursor(step) { if (step !== this.cursor) { this.cursor = step; this.draw(); } }

  draw() {
    const c = this.canvas, ratio = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (c.width !== Math.round(w * ratio)) { c.width = Math.round(w * ratio); c.height = Math.round(h * ratio); }
    const g = c.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);
    const n = this.o.length, x = (step) => (step / n) * w;
    const [lo, hi] = this.range, top = 14, bottom = h - 4;
    const y = (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
    g.fillStyle = "rgba(234, 140, 0, 0.18)";
    for (const [a, b] of this.o.segments || []) g.fillRect(x(a), 0, Math.max(1, x(b) - x(a)), h);
    if (this.o.ticks) {
      g.fillStyle = "rgba(31, 138, 76, 0.55)";
      this.o.ticks.forEach((on, i) => { if (on) g.fillRect(x(i), h - 6, Math.max(1, w / n), 6); });
    }
    if (this.o.threshold !== null && this.o.threshold !== undefined) {
      g.strokeStyle = "#555"; g.setLineDash([5, 4]); g.lineWidth = 1;
      g.beginPath(); g.moveTo(0, y(this.o.threshold)); g.lineTo(w, y(this.o.threshold)); g.stroke();
      g.setLineDash([]);
    }
    for (const s of this.o.series || []) this.line(g, s, x, y);
    if (this.o.marker !== null && this.o.marker !== undefined) {
      g.strokeStyle = DROP; g.lineWidth = 2;
      g.beginPath(); g.moveTo(x(this.o.marker), 0); g.lineTo(x(this.o.marker), h); g.stroke();
    }
    g.strokeStyle = "#2563eb"; g.lineWidth = 1.5;
    const cx = x(this.cursor + 0.5);
    g.beginPath(); g.moveTo(cx, 0); g.lineTo(cx, h); g.stroke();
    g.fillStyle = "#444"; g.font = "11px system-ui, sans-serif";
    g.fillText(this.o.title, 4, 11);
    if (this.o.series && this.o.series.length) {
      const label = `${hi.toPrecision(3)} … ${lo.toPrecision(3)}`;
      g.fillText(label, w - g.measureText(label).width - 4, 11);
    }
  }

  line(g, s, x, y) {
    const v = s.values;
    g.lineWidth = s.rises ? 2 : 1;
    if (!s.rises) {
      g.strokeStyle = s.color; g.beginPath();
      v.forEach((value, i) => { const px = x(i + 0.5), py = y(value); i ? g.lineTo(px, py) : g.moveTo(px, py); });
      g.stroke();
      return;
    }
    for (let i = 1; i < v.length; i++) {  // value rises in green, drops in red
      g.strokeStyle = v[i] >= v[i - 1] ? RISE : DROP;
      g.beginPath(); g.moveTo(x(i - 0.5), y(v[i - 1])); g.lineTo(x(i + 0.5), y(v[i])); g.stroke();
    }
  }
}
