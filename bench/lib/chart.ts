/**
 * The results chart as hand-written SVG: three panels (p50 latency, p99 latency, throughput), each a
 * group of bars per scenario with one bar per target. Linear scales per panel; values printed on the
 * bars because noisy runs are read as numbers, not shapes.
 */
import type { Measurement } from "./measurement.ts";
import { TARGET_LABELS, type TargetKind } from "./target.ts";

const COLORS: Record<TargetKind, string> = { courier: "#2563eb", bare: "#16a34a", socketio: "#f59e0b" };
const TARGETS: TargetKind[] = ["courier", "bare", "socketio"];

interface Panel {
  title: string;
  unit: string;
  scenarios: string[];
  value: (m: Measurement) => number | undefined;
  format: (v: number) => string;
}

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function renderChart(title: string, measurements: Measurement[]): string {
  const find = (scenario: string, target: TargetKind) => measurements.find((m) => m.scenario.id === scenario && m.target === target && m.status === "ok");
  const ms = (v: number) => (v < 1 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));
  const rate = (v: number) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : `${(v / 1e3).toFixed(0)}k`);
  const panels: Panel[] = [
    { title: "Latency p50 (ms, lower is better)", unit: "ms", scenarios: ["fanout-turn", "fanout-burst", "paced", "roundtrip"], value: (m) => m.result?.latency?.p50, format: ms },
    { title: "Latency p99 (ms, lower is better)", unit: "ms", scenarios: ["fanout-turn", "fanout-burst", "paced", "roundtrip"], value: (m) => m.result?.latency?.p99, format: ms },
    { title: "Throughput (per second, higher is better)", unit: "/s", scenarios: ["fanout-turn", "fanout-burst", "publish"], value: (m) => m.result?.rate, format: rate },
  ];
  const width = 960;
  const panelHeight = 220;
  const top = 60;
  const parts: string[] = [];
  parts.push(`<text x="20" y="28" font-size="18" font-weight="bold">${escape(title)}</text>`);
  TARGETS.forEach((target, i) => {
    parts.push(`<rect x="${560 + i * 130}" y="16" width="14" height="14" fill="${COLORS[target]}"/>`);
    parts.push(`<text x="${580 + i * 130}" y="28" font-size="13">${TARGET_LABELS[target]}</text>`);
  });
  panels.forEach((panel, p) => {
    const y0 = top + p * (panelHeight + 40);
    const plotTop = y0 + 24;
    const plotHeight = panelHeight - 50;
    const baseline = plotTop + plotHeight;
    parts.push(`<text x="20" y="${y0 + 12}" font-size="14" font-weight="bold">${escape(panel.title)}</text>`);
    parts.push(`<line x1="60" y1="${baseline}" x2="${width - 20}" y2="${baseline}" stroke="#888"/>`);
    const values = panel.scenarios.flatMap((s) => TARGETS.map((t) => { const m = find(s, t); return m ? panel.value(m) : undefined; }));
    const max = Math.max(...values.filter((v): v is number => v !== undefined && Number.isFinite(v)), 1e-9);
    const groupWidth = (width - 80) / panel.scenarios.length;
    const barWidth = Math.min(60, (groupWidth - 40) / TARGETS.length);
    panel.scenarios.forEach((scenario, g) => {
      const gx = 60 + g * groupWidth + 20;
      parts.push(`<text x="${gx + (barWidth * TARGETS.length) / 2}" y="${baseline + 18}" font-size="12" text-anchor="middle">${escape(scenario)}</text>`);
      TARGETS.forEach((target, t) => {
        const m = find(scenario, target);
        const value = m ? panel.value(m) : undefined;
        const x = gx + t * barWidth;
        if (value === undefined || !Number.isFinite(value)) {
          parts.push(`<text x="${x + barWidth / 2}" y="${baseline - 4}" font-size="10" text-anchor="middle" fill="#999">n/a</text>`);
          return;
        }
        const h = Math.max(1, (value / max) * plotHeight);
        parts.push(`<rect x="${x + 2}" y="${baseline - h}" width="${barWidth - 4}" height="${h}" fill="${COLORS[target]}"><title>${escape(`${TARGET_LABELS[target]} ${scenario}: ${panel.format(value)} ${panel.unit}`)}</title></rect>`);
        parts.push(`<text x="${x + barWidth / 2}" y="${baseline - h - 4}" font-size="10" text-anchor="middle">${escape(panel.format(value))}</text>`);
      });
    });
  });
  const height = top + panels.length * (panelHeight + 40);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join("\n")}\n</svg>\n`;
}
