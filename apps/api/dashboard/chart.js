// Two small SVG charts (no library, nothing loaded from elsewhere). Each chart carries its
// figures in data- attributes so tests and assistive tools can read them.
import { fmt } from "./ui.js";

const NS = "http://www.w3.org/2000/svg";
const W = 600;
const H = 180;
const PAD = { left: 44, right: 8, top: 10, bottom: 22 };

function svgEl(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function frame(label, values) {
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label });
  const total = values.reduce((a, b) => a + b, 0);
  svg.dataset.points = String(values.length);
  svg.dataset.total = String(total);
  const max = Math.max(1, ...values);
  svg.append(
    svgEl("line", { class: "axis", x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom }),
    svgEl("text", { x: 2, y: PAD.top + 8 }, fmt(max, 1)),
    svgEl("text", { x: 2, y: H - PAD.bottom }, "0"),
  );
  return { svg, max };
}

/** Bars: [{ label, value }], labels under every nth bar. */
export function barChart(label, bars) {
  const values = bars.map((b) => Number(b.value) || 0);
  const { svg, max } = frame(label, values);
  const n = Math.max(1, bars.length);
  const slot = (W - PAD.left - PAD.right) / n;
  const every = Math.ceil(n / 8);
  bars.forEach((b, i) => {
    const v = values[i];
    const hgt = ((H - PAD.top - PAD.bottom) * v) / max;
    const x = PAD.left + i * slot + slot * 0.1;
    const rect = svgEl("rect", { class: "bar", x, y: H - PAD.bottom - hgt, width: slot * 0.8, height: hgt });
    rect.append(svgEl("title", {}, `${b.label}: ${fmt(v, 2)}`));
    svg.append(rect);
    if (i % every === 0) svg.append(svgEl("text", { x, y: H - 6 }, b.label));
  });
  return svg;
}

/** A line over the last values (oldest first), e.g. tokens/s sampled each second. */
export function lineChart(label, values) {
  const { svg, max } = frame(label, values);
  if (values.length > 1) {
    const step = (W - PAD.left - PAD.right) / (values.length - 1);
    const pts = values.map((v, i) => {
      const x = PAD.left + i * step;
      const y = H - PAD.bottom - ((H - PAD.top - PAD.bottom) * v) / max;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    svg.append(svgEl("polyline", { class: "line", points: pts.join(" ") }));
  }
  svg.append(svgEl("text", { x: W - 60, y: PAD.top + 8 }, `now ${fmt(values.at(-1) ?? 0, 1)}`));
  return svg;
}
