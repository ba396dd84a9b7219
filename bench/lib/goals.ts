/**
 * Courier's performance goals, judged against the same run's baselines. A report, not a test: a FAIL
 * is printed, never thrown.
 */
import { cpuPerThousand, type Measurement } from "./measurement.ts";
import type { TargetKind } from "./target.ts";

export interface Verdict {
  goal: string;
  /** `n/a` when a number it needs is missing. */
  outcome: "PASS" | "FAIL" | "n/a";
  detail: string;
}

type Lookup = (scenario: string, target: TargetKind) => Measurement | undefined;
/** Every run of a (scenario, target) in round order, for goals that must hold in each run, not only the median. */
type RunsLookup = (scenario: string, target: TargetKind) => Measurement[];

function judge(goal: string, numbers: (number | undefined)[], pass: (...values: number[]) => boolean, detail: (...values: number[]) => string): Verdict {
  if (numbers.some((value) => value === undefined || !Number.isFinite(value))) return { goal, outcome: "n/a", detail: "not measured" };
  const values = numbers as number[];
  return { goal, outcome: pass(...values) ? "PASS" : "FAIL", detail: detail(...values) };
}

const x = (value: number) => `${value.toFixed(2)}×`;

export function verdicts(find: Lookup, runs: RunsLookup = (scenario, target) => [find(scenario, target)].filter((m) => m !== undefined)): Verdict[] {
  const rate = (scenario: string, target: TargetKind) => find(scenario, target)?.result?.rate;
  const p99 = (scenario: string, target: TargetKind) => find(scenario, target)?.result?.latency?.p99;
  const resume = find("resume", "courier")?.result;
  const streamsExtra = (key: string) => {
    const value = find("streams", "courier")?.result?.extra?.[key];
    return typeof value === "number" ? value : undefined;
  };
  const cpu = (scenario: string) => {
    const m = find(scenario, "courier");
    return m ? cpuPerThousand(m) : undefined;
  };
  return [
    judge("fan-out, one publish per turn ≥ 0.9× bare Bun", [rate("fanout-turn", "courier"), rate("fanout-turn", "bare")], (c, b) => c / b >= 0.9, (c, b) => `${x(c / b)} bare Bun`),
    judge("bursts of 10 ≥ 0.9× bare Bun", [rate("fanout-burst", "courier"), rate("fanout-burst", "bare")], (c, b) => c / b >= 0.9, (c, b) => `${x(c / b)} bare Bun`),
    judge("bursts of 10 ≥ 10× Socket.IO", [rate("fanout-burst", "courier"), rate("fanout-burst", "socketio")], (c, s) => c / s >= 10, (c, s) => `${x(c / s)} Socket.IO`),
    judge(
      "metrics cost < 3 % (bursts fan-out, server CPU per delivery, telemetry on vs off)",
      [cpu("fanout-burst"), cpu("fanout-burst-notelemetry"), rate("fanout-burst", "courier"), rate("fanout-burst-notelemetry", "courier")],
      (on, off) => on / off <= 1.03,
      (on, off, rOn, rOff) =>
        `CPU per 1k deliveries ${on.toFixed(3)} ms on vs ${off.toFixed(3)} ms off (${(((on - off) / off) * 100).toFixed(1)} %); throughput on ÷ off ${x(rOn / rOff)}`,
    ),
    pacedEveryRun(runs),
    judge(
      "idle connection ≤ 1.25× bare Bun's memory per connection (anonymous RSS)",
      [find("idle", "courier")?.anonPerConnKb, find("idle", "bare")?.anonPerConnKb, find("idle", "courier")?.rssPerConnKb, find("idle", "bare")?.rssPerConnKb],
      (c, b) => c / b <= 1.25,
      (c, b, cr, br) =>
        `${c.toFixed(2)} KB vs ${b.toFixed(2)} KB anonymous (${x(c / b)}); VmRSS ${cr.toFixed(2)} vs ${br.toFixed(2)} KB (${x(cr / br)}), over ${find("idle", "courier")?.result?.connections} connections`,
    ),
    judge("connect storm ≥ 0.7× bare Bun (distinct users and tokens)", [rate("storm", "courier"), rate("storm", "bare")], (c, b) => c / b >= 0.7, (c, b) => `${x(c / b)} (${(c / 1000).toFixed(1)}k vs ${(b / 1000).toFixed(1)}k welcomed/s)`),
    judge(
      "publish API, critical (stored before the 200), 8 in flight ≥ 0.6× bare Bun's unstored publish",
      [rate("publish-critical", "courier"), rate("publish", "bare")],
      (c, b) => c / b >= 0.6,
      (c, b) => `${x(c / b)} (${(c / 1000).toFixed(1)}k vs ${(b / 1000).toFixed(1)}k/s)`,
    ),
    judge("5-user round trip p99 ≤ 0.5 ms", [p99("roundtrip", "courier")], (ms) => ms <= 0.5, (ms) => {
      const bare = p99("roundtrip", "bare");
      return `${ms.toFixed(3)} ms${bare === undefined ? "" : ` (bare Bun on this machine: ${bare.toFixed(3)} ms)`}`;
    }),
    judge(
      "agent streams: appends ≥ 0.8× the same tokens via /v1/publish/batch; a join of 10k appends is one frame, p99 < 5 ms",
      [streamsExtra("appends ÷ batch events"), streamsExtra("join: frames for the stream (max)"), streamsExtra("join: subscribe → snapshot p99 ms"), streamsExtra("snapshot code p99 ms")],
      (ratio, frames, ms) => ratio >= 0.8 && frames === 1 && ms < 5,
      (ratio, frames, ms, code) =>
        `${x(ratio)}; ${frames} frame(s) per join, p99 ${ms.toFixed(2)} ms subscribe → snapshot (client-observed, round trip included; snapshot code alone p99 ${code.toFixed(3)} ms)`,
    ),
    judge(
      "resume after kill -9 ≤ 1 s, 0 lost",
      [resume?.durationMs, resume?.lost],
      (ms, lost) => ms <= 1000 && lost === 0,
      (ms, lost) => `${ms.toFixed(0)} ms, ${lost} lost, ${resume?.dup ?? 0} duplicated`,
    ),
  ];
}

/**
 * Paced p99 must hold in every round, not only the median one: each Courier run is paired with the
 * bare Bun run of the same round (targets alternate within a round, so both saw the same machine).
 */
function pacedEveryRun(runs: RunsLookup): Verdict {
  const goal = "paced 50k/s p99 ≤ 1.15× bare Bun, in every run";
  const courier = runs("paced", "courier");
  const bare = runs("paced", "bare");
  const pairs = courier.map((c, i) => [c.result?.latency?.p99, bare[i]?.result?.latency?.p99] as const);
  if (pairs.length === 0 || pairs.some(([c, b]) => c === undefined || b === undefined)) return { goal, outcome: "n/a", detail: "not measured" };
  const ratios = pairs.map(([c, b]) => c! / b!);
  const rounds = pairs.map(([c, b], i) => `${c!.toFixed(2)} vs ${b!.toFixed(2)} ms (${x(ratios[i]!)})`).join("; ");
  // The baseline against itself: when bare's own rounds differ by more than 1.15×, one round's
  // ratio says as much about the machine as about Courier (bench/PROFILE.md §7.4).
  const bareP99 = pairs.map(([, b]) => b!);
  const spread = pairs.length > 1 ? `; bare Bun's own rounds span ${x(Math.max(...bareP99) / Math.min(...bareP99))}` : "";
  return { goal, outcome: ratios.every((r) => r <= 1.15) ? "PASS" : "FAIL", detail: rounds + spread };
}
