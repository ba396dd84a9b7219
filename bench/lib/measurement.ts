/**
 * One (scenario, target) outcome and the rows of the results table derived from it. Rows are defined
 * once here so the markdown, the goals and the chart read the same numbers.
 */
import type { LoadResult } from "../load/common.ts";
import type { ProcSample } from "./proc.ts";
import type { Scenario } from "./scenarios.ts";
import type { TargetKind } from "./target.ts";

export interface Measurement {
  scenario: Scenario;
  target: TargetKind;
  /** `n/a` when the target does not apply or could not start; `error` when the run failed. */
  status: "ok" | "n/a" | "error";
  note?: string;
  result?: LoadResult;
  /** Server CPU between the start and end marks, as a share of one core. */
  serverCpu?: number;
  /** Load generator CPU over the same window: near 1 means the client bounded the run. */
  loadCpu?: number;
  serverRssMb?: number;
  rssPerConnKb?: number;
  /** The same from RssAnon: what the connections hold, without file pages touched meanwhile. */
  anonPerConnKb?: number;
  /** Every mark in order, with the server's sample at it. */
  marks?: { name: string; server?: ProcSample }[];
  /** Wall time of the whole measurement, server start to stop. */
  elapsedMs?: number;
}

export interface Row {
  scenario: string;
  label: string;
  /** Higher is better (throughput) or lower (latency, memory, loss). */
  better: "higher" | "lower";
  value: (m: Measurement) => number | undefined;
  format: (value: number) => string;
}

export const fmtRate = (v: number) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M/s` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}k/s` : `${v.toFixed(0)}/s`);
export const fmtMs = (v: number) => (v < 1 ? `${v.toFixed(3)} ms` : v < 100 ? `${v.toFixed(2)} ms` : `${v.toFixed(0)} ms`);
const fmtInt = (v: number) => v.toFixed(0);
const fmtKb = (v: number) => `${v.toFixed(2)} KB`;
const fmtMb = (v: number) => `${v.toFixed(0)} MB`;
const fmtCpu = (v: number) => `${(v * 100).toFixed(0)}%`;

const r = (m: Measurement) => m.result;

/** A number a scenario reported in `extra` (where scenario-specific numbers live). */
const extra = (m: Measurement, key: string): number | undefined => {
  const value = m.result?.extra?.[key];
  return typeof value === "number" ? value : undefined;
};

/**
 * Server CPU time per 1,000 deliveries: what a delivery costs the server, whoever bounds the run
 * (throughput alone cannot show a server-side cost while the load generator is the limit).
 */
export function cpuPerThousand(m: Measurement): number | undefined {
  const result = m.result;
  if (m.serverCpu === undefined || !result?.count || result.durationMs === undefined) return undefined;
  return ((m.serverCpu * result.durationMs) / result.count) * 1000;
}

function deliveryRows(scenario: string, what = "deliveries/s"): Row[] {
  return [
    { scenario, label: what, better: "higher", value: (m) => r(m)?.rate, format: fmtRate },
    { scenario, label: "latency p50", better: "lower", value: (m) => r(m)?.latency?.p50, format: fmtMs },
    { scenario, label: "latency p99", better: "lower", value: (m) => r(m)?.latency?.p99, format: fmtMs },
    { scenario, label: "latency max", better: "lower", value: (m) => r(m)?.latency?.max, format: fmtMs },
    { scenario, label: "lost", better: "lower", value: (m) => r(m)?.lost, format: fmtInt },
    { scenario, label: "duplicated", better: "lower", value: (m) => r(m)?.dup, format: fmtInt },
    { scenario, label: "server CPU", better: "lower", value: (m) => m.serverCpu, format: fmtCpu },
    { scenario, label: "server CPU ms per 1k deliveries", better: "lower", value: cpuPerThousand, format: fmtMs },
    { scenario, label: "load-generator CPU", better: "lower", value: (m) => m.loadCpu, format: fmtCpu },
    { scenario, label: "server RSS", better: "lower", value: (m) => m.serverRssMb, format: fmtMb },
  ];
}

export const ROWS: Row[] = [
  ...deliveryRows("fanout-turn"),
  ...deliveryRows("fanout-burst"),
  ...deliveryRows("fanout-burst-notelemetry"),
  ...deliveryRows("paced"),
  { scenario: "idle", label: "anonymous memory per connection (RssAnon)", better: "lower", value: (m) => m.anonPerConnKb, format: fmtKb },
  { scenario: "idle", label: "RSS per connection (VmRSS, incl. file pages)", better: "lower", value: (m) => m.rssPerConnKb, format: fmtKb },
  { scenario: "idle", label: "connections accepted", better: "higher", value: (m) => r(m)?.connections, format: fmtInt },
  { scenario: "idle", label: "refused", better: "lower", value: (m) => r(m)?.refused, format: fmtInt },
  { scenario: "idle", label: "server RSS", better: "lower", value: (m) => m.serverRssMb, format: fmtMb },
  { scenario: "roundtrip", label: "round trip p50", better: "lower", value: (m) => r(m)?.latency?.p50, format: fmtMs },
  { scenario: "roundtrip", label: "round trip p99", better: "lower", value: (m) => r(m)?.latency?.p99, format: fmtMs },
  { scenario: "roundtrip", label: "round trip max", better: "lower", value: (m) => r(m)?.latency?.max, format: fmtMs },
  { scenario: "roundtrip", label: "rpc agent.run p50", better: "lower", value: (m) => extra(m, "rpc p50 ms"), format: fmtMs },
  { scenario: "roundtrip", label: "rpc agent.run p99", better: "lower", value: (m) => extra(m, "rpc p99 ms"), format: fmtMs },
  { scenario: "storm", label: "time to all welcomed", better: "lower", value: (m) => r(m)?.durationMs, format: fmtMs },
  { scenario: "storm", label: "welcomed/s", better: "higher", value: (m) => r(m)?.rate, format: fmtRate },
  { scenario: "storm", label: "connect p99", better: "lower", value: (m) => r(m)?.latency?.p99, format: fmtMs },
  { scenario: "storm", label: "welcomed", better: "higher", value: (m) => r(m)?.connections, format: fmtInt },
  { scenario: "storm", label: "refused", better: "lower", value: (m) => r(m)?.refused, format: fmtInt },
  { scenario: "storm", label: "server CPU", better: "lower", value: (m) => m.serverCpu, format: fmtCpu },
  { scenario: "publish", label: "publishes/s", better: "higher", value: (m) => r(m)?.rate, format: fmtRate },
  { scenario: "publish", label: "publish p50", better: "lower", value: (m) => r(m)?.latency?.p50, format: fmtMs },
  { scenario: "publish", label: "publish p99", better: "lower", value: (m) => r(m)?.latency?.p99, format: fmtMs },
  { scenario: "publish", label: "server CPU", better: "lower", value: (m) => m.serverCpu, format: fmtCpu },
  { scenario: "publish-critical", label: "publishes/s", better: "higher", value: (m) => r(m)?.rate, format: fmtRate },
  { scenario: "publish-critical", label: "publish p50", better: "lower", value: (m) => r(m)?.latency?.p50, format: fmtMs },
  { scenario: "publish-critical", label: "publish p99", better: "lower", value: (m) => r(m)?.latency?.p99, format: fmtMs },
  { scenario: "publish-critical", label: "server CPU", better: "lower", value: (m) => m.serverCpu, format: fmtCpu },
  { scenario: "streams", label: "append deliveries/s (texts of 10)", better: "higher", value: (m) => r(m)?.rate, format: fmtRate },
  { scenario: "streams", label: "same tokens via /v1/publish/batch", better: "higher", value: (m) => extra(m, "events via /v1/publish/batch deliveries/s"), format: fmtRate },
  { scenario: "streams", label: "appends ÷ batch events", better: "higher", value: (m) => extra(m, "appends ÷ batch events"), format: (v) => `${v.toFixed(2)}×` },
  { scenario: "streams", label: "bytes per append (batches of 10)", better: "lower", value: (m) => extra(m, "bytes per append (batches of 10)"), format: (v) => `${v.toFixed(1)} B` },
  { scenario: "streams", label: "lone append frame", better: "lower", value: (m) => extra(m, "lone append frame bytes"), format: (v) => `${v.toFixed(0)} B` },
  { scenario: "streams", label: "join 10k appends: frames", better: "lower", value: (m) => extra(m, "join: frames for the stream (max)"), format: fmtInt },
  { scenario: "streams", label: "join 10k appends: p99 to snapshot", better: "lower", value: (m) => extra(m, "join: subscribe → snapshot p99 ms"), format: fmtMs },
  { scenario: "streams", label: "snapshot code (10k appends) p99", better: "lower", value: (m) => extra(m, "snapshot code p99 ms"), format: fmtMs },
  { scenario: "resume", label: "kill -9 → port answers", better: "lower", value: (m) => extra(m, "kill → port answers ms"), format: fmtMs },
  { scenario: "resume", label: "reopen → all caught up", better: "lower", value: (m) => r(m)?.durationMs, format: fmtMs },
  { scenario: "resume", label: "clients caught up", better: "higher", value: (m) => r(m)?.count, format: fmtInt },
  { scenario: "resume", label: "lost", better: "lower", value: (m) => r(m)?.lost, format: fmtInt },
  { scenario: "resume", label: "duplicated", better: "lower", value: (m) => r(m)?.dup, format: fmtInt },
];

/** Scenarios where "what limited the rate" is worth a row. */
export const BOUND_SCENARIOS = new Set(["fanout-turn", "fanout-burst", "paced", "storm", "publish", "publish-critical"]);

/**
 * What limited a run, read from the CPU shares: a process near one full core was the bottleneck;
 * neither near it means the run waited on round trips (or on the machine's other work).
 */
export function boundBy(m: Measurement): string {
  if (m.status !== "ok" || m.serverCpu === undefined || m.loadCpu === undefined) return "—";
  if (m.scenario.id === "paced") return "offered load (paced)";
  if (m.serverCpu >= 0.85 && m.serverCpu >= m.loadCpu) return "server CPU";
  if (m.loadCpu >= 0.85) return "load generator CPU";
  return "round trips / machine";
}
