/**
 * The markdown report: machine info, the comparison table with Courier/baseline ratios, the goals,
 * then per-run details (clock offset, server-ts latency, scenario extras) for whoever has to explain
 * a number.
 */
import { cpus, loadavg, release } from "node:os";
import { verdicts } from "./goals.ts";
import { BOUND_SCENARIOS, ROWS, boundBy, fmtMs, type Measurement } from "./measurement.ts";
import { pinning } from "./proc.ts";
import type { Profile, Scenario } from "./scenarios.ts";
import { TARGET_LABELS, type TargetKind } from "./target.ts";

const TARGETS: TargetKind[] = ["courier", "bare", "socketio"];

export async function machineInfo(): Promise<string[]> {
  const node = Bun.spawnSync(["node", "--version"]).stdout.toString().trim() || "not found";
  const commit = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"]).stdout.toString().trim();
  return [
    `- date: ${new Date().toISOString()}${commit ? `, commit ${commit}` : ""}`,
    `- CPU: ${cpus()[0]?.model ?? "unknown"}, nproc ${navigator.hardwareConcurrency}, load average at start ${loadavg().map((v) => v.toFixed(2)).join(" ")}`,
    `- Linux ${release()}; Bun ${Bun.version}; node ${node}`,
    `- pinning: ${pinning ? "server on CPU 0, load generator on CPU 1 (taskset)" : "none (taskset not found)"}; all traffic on 127.0.0.1`,
  ];
}

function cell(m: Measurement | undefined, value: number | undefined, format: (v: number) => string): string {
  if (!m) return "—";
  if (m.status !== "ok") return m.status === "n/a" ? `n/a${m.note ? ` (${m.note})` : ""}` : "error";
  return value === undefined || Number.isNaN(value) ? "—" : format(value);
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "—";
  return `${(a / b).toFixed(2)}×`;
}

/**
 * @param runs every run of each (scenario, target) in round order (the table shows the medians);
 *   goals that must hold in every run read it.
 */
export function renderReport(profile: Profile, machine: string[], list: Scenario[], measurements: Measurement[], wallMs: number, runs: Measurement[] = measurements): string {
  const find = (scenario: string, target: TargetKind) => measurements.find((m) => m.scenario.id === scenario && m.target === target);
  const out: string[] = [`# Courier bench — ${profile} profile`, "", ...machine, `- wall time: ${(wallMs / 1000).toFixed(0)} s`, ""];
  out.push("Latency is publish call → receive on the load generator's clock (publisher and subscribers share a process).");
  out.push("Ratios are Courier ÷ baseline from the same run; for latency, memory and loss lower is better.", "");
  out.push("| scenario | metric | Courier | bare Bun | Socket.IO | Courier/bare Bun | Courier/Socket.IO |", "|---|---|---|---|---|---|---|");
  for (const scenario of list) {
    for (const row of ROWS.filter((r) => r.scenario === scenario.id)) {
      const values = TARGETS.map((t) => { const m = find(scenario.id, t); return m?.status === "ok" ? row.value(m) : undefined; });
      const cells = TARGETS.map((t, i) => cell(find(scenario.id, t), values[i], row.format));
      out.push(`| ${scenario.title} | ${row.label} | ${cells.join(" | ")} | ${ratio(values[0], values[1])} | ${ratio(values[0], values[2])} |`);
    }
    if (BOUND_SCENARIOS.has(scenario.id)) {
      const cells = TARGETS.map((t) => { const m = find(scenario.id, t); return m ? (m.status === "ok" ? boundBy(m) : "—") : "—"; });
      out.push(`| ${scenario.title} | bound by | ${cells.join(" | ")} | | |`);
    }
  }
  out.push("", "## Goals (Courier, judged against this run)", "", "| goal | result | measured |", "|---|---|---|");
  const ok = (m: Measurement | undefined) => (m?.status === "ok" ? m : undefined);
  const runsOf = (scenario: string, target: TargetKind) => runs.filter((m) => m.scenario.id === scenario && m.target === target && m.status === "ok");
  for (const verdict of verdicts((scenario, target) => ok(find(scenario, target)), runsOf)) {
    out.push(`| ${verdict.goal} | ${verdict.outcome} | ${verdict.detail} |`);
  }
  out.push("", "## Scenarios", "");
  for (const scenario of list) out.push(`- **${scenario.title}** (\`--only ${scenario.id}\`): ${scenario.measures}. Params: \`${JSON.stringify(scenario.params)}\``);
  out.push("", "## Details", "");
  for (const m of measurements) {
    const r = m.result;
    const bits: string[] = [];
    if (m.status !== "ok") bits.push(`${m.status}${m.note ? `: ${m.note}` : ""}`);
    if (r?.connections !== undefined) bits.push(`connections ${r.connections}, refused ${r.refused ?? 0}`);
    if (r?.count !== undefined && r.expected !== undefined) bits.push(`count ${r.count}/${r.expected}`);
    if (r?.durationMs !== undefined) bits.push(`window ${fmtMs(r.durationMs)}`);
    if (r?.clockOffsetMs !== undefined) bits.push(`clock offset ${r.clockOffsetMs.toFixed(2)} ms`);
    if (r?.tsLatency) bits.push(`server ts → receive p50 ${fmtMs(r.tsLatency.p50)}, p99 ${fmtMs(r.tsLatency.p99)} (ts has 1 ms resolution)`);
    for (const [key, value] of Object.entries(r?.extra ?? {})) bits.push(`${key}: ${typeof value === "number" ? Number(value.toFixed(3)) : value}`);
    if (r?.skipped) bits.push(`skipped: ${r.skipped}`);
    if (r?.error) bits.push(`error: ${r.error}`);
    out.push(`- ${m.scenario.id} / ${TARGET_LABELS[m.target]}: ${bits.join("; ") || "—"}`);
  }
  return `${out.join("\n")}\n`;
}
