/**
 * `bun run bench [--full] [--only <scenario>[,<scenario>…]] [--repeat <n>] [--soak [--soak-minutes <n>]]`: runs every scenario against Courier, bare
 * Bun and Socket.IO in the same run (servers on CPU 0, the load generator on CPU 1), prints the
 * markdown report and writes bench/results/<profile>-latest.{md,svg}.
 *
 * Each (scenario, target) gets a fresh server and a fresh load-generator process, both killed by pid
 * at the end, on failure and on SIGINT. Targets alternate inside each scenario so machine noise hits
 * them alike.
 */
import type { FileSink } from "bun";
import { mkdirSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import type { LoadResult } from "./load/common.ts";
import type { WorkerJob } from "./load/worker.ts";
import { renderChart } from "./lib/chart.ts";
import type { Measurement } from "./lib/measurement.ts";
import { cpuShare, nowMs, readLines, sampleProc, spawnPinned, stop, stopAll, within, type ProcSample } from "./lib/proc.ts";
import { machineInfo, renderReport } from "./lib/report.ts";
import { renderSoakReport } from "./lib/soak-report.ts";
import { scenarios, soakScenario, type Profile, type Scenario } from "./lib/scenarios.ts";
import { LOAD_CPU, ROOT, courierMissing, startServer, type RunningServer } from "./lib/servers.ts";
import { TARGET_LABELS, type TargetKind } from "./lib/target.ts";

const args = process.argv.slice(2);
const profile: Profile = args.includes("--full") ? "full" : "quick";
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;
/** Runs per (scenario, target); the median one is reported. Bounded: each run starts fresh servers. */
const repeat = args.includes("--repeat") ? Math.min(5, Math.max(1, Number(args[args.indexOf("--repeat") + 1]) || 1)) : 1;

const soakMinutes = args.includes("--soak-minutes") ? Math.min(30, Math.max(1, Number(args[args.indexOf("--soak-minutes") + 1]) || 10)) : 10;

let interrupted = false;
process.on("SIGINT", () => {
  interrupted = true;
  console.error("\ninterrupted: stopping servers and load generators");
  void stopAll().then(() => process.exit(130));
});

/** Set once Courier fails to start, so later scenarios report n/a instead of retrying for 20 s each. */
let courierUnavailable = courierMissing();

interface Marks {
  server?: ProcSample;
  load?: ProcSample;
}

async function measure(scenario: Scenario, kind: TargetKind): Promise<Measurement> {
  const base = { scenario, target: kind };
  if (!scenario.targets.includes(kind)) return { ...base, status: "n/a", note: "Courier only" };
  if (kind === "courier" && courierUnavailable) return { ...base, status: "n/a", note: "server not available" };
  let server: RunningServer;
  try {
    server = await startServer(kind, { env: scenario.courierEnv?.env });
  } catch (error) {
    if (kind === "courier") courierUnavailable = (error as Error).message;
    return { ...base, status: kind === "courier" ? "n/a" : "error", note: (error as Error).message };
  }
  const dataDir = server.dataDir;
  const job: WorkerJob = { scenario: scenario.job, target: server.info, params: scenario.params, timeoutMs: scenario.timeoutMs };
  const load = spawnPinned({ cmd: ["bun", join(ROOT, "bench/load/worker.ts"), JSON.stringify(job)], cpu: LOAD_CPU, stdin: "pipe", cwd: ROOT });
  const sink = load.stdin as FileSink;
  const marks = new Map<string, Marks>();
  const ordered: { name: string; server?: ProcSample }[] = [];
  let result: LoadResult | undefined;
  let restartError: string | undefined;
  /** Set when the server had exited before the harness stopped it. */
  let died: string | undefined;

  const restart = async () => {
    // The resume scenario: SIGKILL, then the same port and data dir, as a supervisor would.
    const killedAt = nowMs();
    server.proc.kill("SIGKILL");
    await within(server.proc.exited, 5_000);
    try {
      server = await startServer(kind, { port: server.port, dataDir, env: scenario.courierEnv?.env });
      sink.write(`RESTARTED ${server.healthyAt} ${server.healthyAt - killedAt}\n`);
    } catch (error) {
      restartError = (error as Error).message;
      sink.write("RESTART_FAILED\n");
    }
    void sink.flush();
  };

  const reading = readLines(load.stdout, (line) => {
    if (line.startsWith("MARK ")) {
      const sample = { server: sampleProc(server.proc.pid), load: sampleProc(load.pid) };
      marks.set(line.slice(5), sample);
      ordered.push({ name: line.slice(5), server: sample.server });
    } else if (line === "KILL") {
      void restart();
    } else if (line.startsWith("RESULT ")) {
      result = JSON.parse(line.slice(7)) as LoadResult;
    } else if (line.trim()) {
      console.error(`  [load] ${line}`);
    }
  });
  try {
    const finished = await within(load.exited, scenario.timeoutMs + 10_000);
    if (finished === undefined) result ??= { error: "load generator did not exit in time" };
    await within(reading, 1_000);
  } finally {
    await stop(load);
    died = server.proc.signalCode !== null ? String(server.proc.signalCode) : server.proc.exitCode === null ? undefined : `exit ${server.proc.exitCode}`;
    await stop(server.proc);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }

  // A server that died under load is the finding, not the load generator's connection error.
  const deathNote = died ? `server died (${died}); last output: ${server.tail.slice(-3).join(" | ") || "none"}` : undefined;
  if (deathNote && result && !result.error) result.extra = { ...result.extra, "server died": deathNote };
  const measurement: Measurement = { ...base, status: result && !result.error ? "ok" : "error", result, note: (result?.error ? deathNote : undefined) ?? result?.error ?? restartError, marks: ordered };
  if (result?.skipped) Object.assign(measurement, { status: "n/a", note: result.skipped });
  if (kind === "courier" && scenario.courierEnv && result) result.extra = { ...result.extra, config: scenario.courierEnv.why };
  const start = marks.get("start") ?? marks.get("before");
  const end = marks.get("end") ?? marks.get("after");
  measurement.serverCpu = cpuShare(start?.server, end?.server);
  measurement.loadCpu = cpuShare(start?.load, end?.load);
  if (end?.server) measurement.serverRssMb = end.server.rssKb / 1024;
  const before = marks.get("before")?.server;
  const after = marks.get("after")?.server;
  if (before && after && result?.connections) {
    measurement.rssPerConnKb = (after.rssKb - before.rssKb) / result.connections;
    measurement.anonPerConnKb = (after.anonKb - before.anonKb) / result.connections;
  }
  return measurement;
}

/** The primary number a run is ranked by when `--repeat` picks the median. */
function key(m: Measurement): number {
  switch (m.scenario.job) {
    case "roundtrip":
    case "paced":
      // The paced rate is the offered load; what varies, and what the goal is about, is the tail.
      return m.result?.latency?.p99 ?? 0;
    case "idle":
      return m.anonPerConnKb ?? 0;
    case "resume":
      return m.result?.durationMs ?? 0;
    default:
      return m.result?.rate ?? 0;
  }
}

function median(runs: Measurement[]): Measurement {
  const ok = runs.filter((m) => m.status === "ok").sort((a, b) => key(a) - key(b));
  const chosen = ok[Math.floor((ok.length - 1) / 2)] ?? runs[0]!;
  if (runs.length > 1 && chosen.result) {
    chosen.result.extra = { ...chosen.result.extra, [`median of ${runs.length} runs`]: runs.map((m) => (m.status === "ok" ? key(m).toFixed(1) : m.status)).join(" / ") };
  }
  return chosen;
}

function summaryLine(m: Measurement): string {
  const r = m.result;
  if (m.status !== "ok") return `${m.status}${m.note ? ` (${m.note})` : ""}`;
  const bits = [];
  if (r?.rate !== undefined) bits.push(`${r.rate.toFixed(0)}/s`);
  else if (r?.durationMs !== undefined) bits.push(`${r.durationMs.toFixed(0)} ms`);
  if (r?.latency) bits.push(`p50 ${r.latency.p50.toFixed(3)} ms p99 ${r.latency.p99.toFixed(3)} ms`);
  if (r?.lost) bits.push(`lost ${r.lost}`);
  if (m.anonPerConnKb !== undefined) bits.push(`${m.anonPerConnKb.toFixed(2)} KB/conn anon (${m.rssPerConnKb?.toFixed(2)} KB RSS)`);
  if (r?.refused) bits.push(`refused ${r.refused}`);
  if (m.serverCpu !== undefined) bits.push(`server CPU ${(m.serverCpu * 100).toFixed(0)}%`);
  if (m.loadCpu !== undefined) bits.push(`load CPU ${(m.loadCpu * 100).toFixed(0)}%`);
  if (m.elapsedMs !== undefined) bits.push(`[${(m.elapsedMs / 1000).toFixed(1)} s]`);
  return bits.join(", ");
}

async function soakMain(): Promise<void> {
  const machine = await machineInfo();
  const scenario = soakScenario(soakMinutes);
  console.error(`bench: soak, ${soakMinutes} min against Courier${courierUnavailable ? ` (${courierUnavailable})` : ""}`);
  const m = await measure(scenario, "courier");
  const report = renderSoakReport(machine, m);
  console.log(report);
  await Bun.write(join(ROOT, "bench", "results", "soak-latest.md"), report);
  console.error("wrote bench/results/soak-latest.md");
}

async function main(): Promise<void> {
  if (args.includes("--soak")) return soakMain();
  if (args.includes("--cluster")) {
    await import("./cluster.ts");
    return;
  }
  const all = scenarios(profile);
  const wanted = only?.split(",");
  const list = wanted ? all.filter((s) => wanted.includes(s.id)) : all;
  if (list.length === 0) {
    console.error(`unknown scenario "${only}"; one of: ${all.map((s) => s.id).join(", ")}`);
    process.exit(2);
  }
  const machine = await machineInfo();
  if (repeat > 1) machine.push(`- each number is the median of ${repeat} runs (by its scenario's primary metric)`);
  console.error(`bench: ${profile} profile, ${list.length} scenario(s), ${repeat} run(s) each${courierUnavailable ? `; Courier: ${courierUnavailable}` : ""}`);
  const started = performance.now();
  const measurements: Measurement[] = [];
  const everyRun: Measurement[] = [];
  for (const scenario of list) {
    const runs = new Map<TargetKind, Measurement[]>();
    for (let round = 0; round < repeat; round++) {
      // Targets alternate within a round, so a burst of outside load hits one round of each, not one target.
      for (const kind of ["courier", "bare", "socketio"] as TargetKind[]) {
        if (interrupted) return;
        if (runs.get(kind)?.[0]?.status === "n/a") continue;
        const began = performance.now();
        const m = await measure(scenario, kind);
        m.elapsedMs = performance.now() - began;
        runs.set(kind, [...(runs.get(kind) ?? []), m]);
        console.error(`  ${scenario.id.padEnd(16)} ${TARGET_LABELS[kind].padEnd(9)} ${summaryLine(m)}`);
      }
    }
    for (const kind of ["courier", "bare", "socketio"] as TargetKind[]) {
      everyRun.push(...(runs.get(kind) ?? []));
      measurements.push(median(runs.get(kind) ?? []));
    }
  }
  machine.push(`- load average at end ${loadavg().map((v) => v.toFixed(2)).join(" ")} (other work on this machine shows up as noise in both columns)`);
  const report = renderReport(profile, machine, list, measurements, performance.now() - started, everyRun);
  console.log(report);
  // A single-scenario run must not overwrite the full picture.
  const name = only ? `${profile}-${only.replaceAll(",", "+")}` : `${profile}-latest`;
  const dir = join(ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  await Bun.write(join(dir, `${name}.md`), report);
  await Bun.write(join(dir, `${name}.svg`), renderChart(`Courier bench — ${profile} (${new Date().toISOString().slice(0, 16)}Z)`, measurements));
  console.error(`wrote bench/results/${name}.md and .svg`);
}

try {
  await main();
} finally {
  await stopAll();
}
// Pending reads of children's pipes must not hold the process open once the report is out.
process.exit(0);
