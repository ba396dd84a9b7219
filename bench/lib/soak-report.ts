/**
 * The soak report: server RSS and CPU at every sample, and the RSS slope by least squares over the
 * samples after the first (the first includes start-up and the base clients' arrival).
 */
import type { Measurement } from "./measurement.ts";
import { cpuShare } from "./proc.ts";

/** Least-squares slope of `ys` over `xs`. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Samples before this are warm-up. */
const WARM_UP_MS = 3 * 60_000;

export function renderSoakReport(machine: string[], m: Measurement): string {
  const out = [`# Courier soak`, "", ...machine, "", `${m.scenario.measures}. Params: \`${JSON.stringify(m.scenario.params)}\``, ""];
  if (m.status !== "ok") {
    out.push(`n/a: ${m.note ?? m.status}`);
    return `${out.join("\n")}\n`;
  }
  const samples = (m.marks ?? []).filter((mark) => mark.name.startsWith("sample-") && mark.server);
  const t0 = samples[0]?.server?.at ?? 0;
  out.push("| sample | minute | server RSS | server CPU since previous |", "|---|---|---|---|");
  samples.forEach((sample, i) => {
    const cpu = i === 0 ? undefined : cpuShare(samples[i - 1]!.server, sample.server);
    out.push(`| ${i} | ${((sample.server!.at - t0) / 60_000).toFixed(1)} | ${(sample.server!.rssKb / 1024).toFixed(1)} MB | ${cpu === undefined ? "—" : `${(cpu * 100).toFixed(0)}%`} |`);
  });
  // Warm-up includes the session resume window (120 s): until it is full, every churned client
  // adds a saved session by design. The slope that says "leak or not" starts after it.
  const later = samples.filter((s) => s.server!.at - t0 >= WARM_UP_MS);
  const mbPerMin = later.length >= 2 ? slope(later.map((s) => (s.server!.at - t0) / 60_000), later.map((s) => s.server!.rssKb / 1024)) : Number.NaN;
  const all = samples.slice(1);
  const mbPerMinAll = all.length >= 2 ? slope(all.map((s) => (s.server!.at - t0) / 60_000), all.map((s) => s.server!.rssKb / 1024)) : Number.NaN;
  const r = m.result!;
  out.push(
    "",
    `- RSS slope after warm-up (from minute ${WARM_UP_MS / 60_000}, once the 120 s session window is full): ${Number.isNaN(mbPerMin) ? "n/a (too few samples)" : `${mbPerMin.toFixed(2)} MB/min`}`,
    `- RSS slope from the first minute (includes the session window filling): ${Number.isNaN(mbPerMinAll) ? "n/a" : `${mbPerMinAll.toFixed(2)} MB/min`}`,
    `- deliveries to the steady clients: ${r.count}/${r.expected} (lost ${r.lost})`,
    ...Object.entries(r.extra ?? {}).map(([key, value]) => `- ${key}: ${value}`),
  );
  return `${out.join("\n")}\n`;
}
