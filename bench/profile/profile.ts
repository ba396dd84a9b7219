/**
 * Profiles one server under one fixed workload (bench/profile/README.md): starts Courier (or bare
 * Bun) pinned to CPU 0, optionally under Bun's sampling CPU profiler, runs a load job pinned to
 * CPU 1, and reports the server's CPU time per unit of work (per welcomed connection, per publish)
 * from /proc, which a loaded machine inflates far less than wall time, and RSS per unit split into
 * anonymous memory and pages of Bun's binary (`rssPartsPerUnitKb`). With `--heap`, it reads
 * `bun:jsc` heapStats() before and after (bench/profile/heap-hook.ts) and prints objects per
 * connection by type.
 *
 *   bun bench/profile/profile.ts --job storm --n 2000 [--cpu-prof] [--target bare] [--env K=V]
 *   bun bench/profile/profile.ts --job hold --n 5000 --heap [--no-subscribe] [--warm 5000]
 *   bun bench/profile/profile.ts --job idle --n 10000 [--target bare]      (the bench's idle row)
 *   bun bench/profile/profile.ts --job publish-critical --n 20000 --cpu-prof
 *   bun bench/profile/profile.ts --job paced --seconds 5 --cpu-prof
 *   bun bench/profile/profile.ts --job fanout --n 3000 --burst 10 [--env COURIER_TELEMETRY=off]
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FileSink } from "bun";
import { freePort, readLines, sampleProc, spawnPinned, stop, waitHealthy, within, type ProcSample } from "../lib/proc.ts";
import { COURIER_MAIN, LOAD_CPU, ROOT, SERVER_CPU } from "../lib/servers.ts";
import { COURIER_TEST_API_KEY, COURIER_TEST_JWT_SECRET, type TargetKind } from "../lib/target.ts";

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const kind = opt("target", "courier") as TargetKind;
const jobName = opt("job", "storm");
const n = Number(opt("n", "2000"));
const out = opt("out", mkdtempSync(join(tmpdir(), `profile-${jobName}-`)));
mkdirSync(out, { recursive: true });
const extraEnv = Object.fromEntries(args.flatMap((a, i) => (args[i - 1] === "--env" ? [a.split("=", 2) as [string, string]] : [])));

const port = freePort();
const base = `http://127.0.0.1:${port}`;
const env: Record<string, string> = { PORT: String(port), HOST: "127.0.0.1" };
let dataDir: string | undefined;
if (kind === "courier") {
  dataDir = mkdtempSync(join(tmpdir(), "courier-profile-"));
  // Staging allows 20,000 connections; the test secrets are passed as the bench does.
  Object.assign(env, { COURIER_ENV: "staging", COURIER_JWT_SECRET: COURIER_TEST_JWT_SECRET, COURIER_API_KEY: COURIER_TEST_API_KEY, COURIER_DATA_DIR: dataDir });
  // Staging keeps the production per-address upgrade limit (50/s): every load client is 127.0.0.1.
  env.COURIER_LIMITS__UPGRADES_PER_IP_PER_SEC = "100000";
}
if (kind === "bare") env.PROFILE_EXIT_ON_TERM = "1";
Object.assign(env, extraEnv);
const heapOut = join(out, "heap");
if (flag("heap")) env.PROFILE_HEAP_OUT = heapOut;
if (flag("snapshot")) env.PROFILE_HEAP_SNAPSHOT = "1";

const bunFlags = ["--preload", join(import.meta.dir, "heap-hook.ts")];
if (flag("cpu-prof")) bunFlags.push("--cpu-prof", "--cpu-prof-md", "--cpu-prof-dir", out, "--cpu-prof-interval", opt("interval", "200"));
const script = kind === "courier" ? COURIER_MAIN : join(ROOT, "bench/servers/bare-bun.ts");
const server = spawnPinned({ cmd: ["bun", ...bunFlags, script], cpu: SERVER_CPU, env, cwd: ROOT });
void readLines(server.stdout, () => {});
await waitHealthy(`${base}/health`, server, 20_000);

const target = { kind, base };
const loadCmd = (() => {
  switch (jobName) {
    case "hold":
      return [join(import.meta.dir, "hold.ts"), JSON.stringify({ target, connections: n, subscribe: !flag("no-subscribe"), warm: Number(opt("warm", "0")) })];
    case "idle":
      // The bench's idle row itself (bench/load/idle.ts, the full run's 2 s settle): RSS at its `before`/`after`.
      return [join(ROOT, "bench/load/worker.ts"), JSON.stringify({ scenario: "idle", target, params: { connections: n, settleMs: Number(opt("settle", "2000")) }, timeoutMs: 300_000 })];
    case "storm":
      return [join(ROOT, "bench/load/worker.ts"), JSON.stringify({ scenario: "storm", target, params: { connections: n, concurrency: 500 }, timeoutMs: 300_000 })];
    case "publish":
    case "publish-critical":
      return [join(ROOT, "bench/load/worker.ts"), JSON.stringify({ scenario: "publish", target, params: { count: n, concurrency: Number(opt("concurrency", "8")), critical: jobName === "publish-critical", warmup: Number(opt("warmup", "50")) }, timeoutMs: 300_000 })];
    case "paced":
      return [join(ROOT, "bench/load/worker.ts"), JSON.stringify({ scenario: "paced", target, params: { subscribers: 500, ratePerSec: 100, seconds: Number(opt("seconds", "5")) }, timeoutMs: 300_000 })];
    case "fanout":
      // The bench's fan-out rows: 1,000 subscribers, `--n` events in batches of `--burst` (10: the bursts row).
      return [join(ROOT, "bench/load/worker.ts"), JSON.stringify({ scenario: "fanout", target, params: { subscribers: Number(opt("subscribers", "1000")), events: n, burst: Number(opt("burst", "10")) }, timeoutMs: 300_000 })];
    default:
      throw new Error(`unknown --job ${jobName}`);
  }
})();
const load = spawnPinned({ cmd: ["bun", ...loadCmd], cpu: LOAD_CPU, stdin: "pipe", cwd: ROOT });
const sink = load.stdin as FileSink;
const marks = new Map<string, ProcSample | undefined>();
const rssParts = new Map<string, RssParts | undefined>();
const threadMarks = new Map<string, Map<string, number>>();

/**
 * CPU ms per thread of `pid`, keyed `<comm>#<tid>`: the JS thread, the checkpoint and JSON-guard
 * workers, the GC's helpers and Bun's own threads show up apart (taskset pins them all to CPU 0).
 */
function threads(pid: number): Map<string, number> {
  const byThread = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      byThread.set(`${comm}#${tid}`, (Number(fields[11]) + Number(fields[12])) * 10);
    }
  } catch {
    // The process is gone.
  }
  return byThread;
}

interface RssParts {
  anonKb: number;
  fileKb: number;
}

/**
 * VmRSS split as /proc counts it: anonymous memory (heaps, allocator, JIT code) and file pages
 * (Bun's own binary, touched once per code path). A server that runs a code path for the first
 * time inside the measured window pays its binary's pages there: bare Bun pays ~0.8 KB per
 * connection of them in a 10,000-connection idle run, Courier (whose start-up ran them) ~0.35.
 */
function rssPartsOf(pid: number): RssParts | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return { anonKb: Number(/RssAnon:\s+(\d+)/.exec(status)?.[1] ?? 0), fileKb: Number(/RssFile:\s+(\d+)/.exec(status)?.[1] ?? 0) };
  } catch {
    return undefined;
  }
}

/** Epoch ms of each mark, for analyze.ts to window the CPU profile. */
const epochMarks: Record<string, number> = {};
const heaps = new Map<string, HeapDump>();
let result: Record<string, unknown> | undefined;
let heapIndex = 0;

interface HeapDump {
  heap: { heapSize: number; objectCount: number; objectTypeCounts: Record<string, number>; extraMemorySize: number };
  memory: NodeJS.MemoryUsage;
}

async function readHeap(): Promise<HeapDump> {
  const i = heapIndex++;
  server.kill("SIGUSR2");
  const deadline = performance.now() + 30_000;
  while (!existsSync(`${heapOut}.${i}.done`)) {
    if (performance.now() > deadline) throw new Error("heap hook did not answer");
    await Bun.sleep(20);
  }
  return JSON.parse(readFileSync(`${heapOut}.${i}.json`, "utf8")) as HeapDump;
}

let pending = Promise.resolve();
await readLines(load.stdout, (line) => {
  if (line.startsWith("MARK ")) {
    const name = line.slice(5);
    marks.set(name, sampleProc(server.pid));
    rssParts.set(name, rssPartsOf(server.pid));
    epochMarks[name] = Date.now();
    threadMarks.set(name, threads(server.pid));
    if (flag("heap")) {
      pending = pending.then(async () => {
        heaps.set(name, await readHeap());
        marks.set(`${name}+heap`, sampleProc(server.pid));
        rssParts.set(`${name}+heap`, rssPartsOf(server.pid));
        if (name === "after") {
          sink.write("go\n");
          void sink.flush();
        }
      });
    } else if (name === "after" && jobName === "hold") {
      sink.write("go\n");
      void sink.flush();
    }
  } else if (line.startsWith("RESULT ")) {
    result = JSON.parse(line.slice(7)) as Record<string, unknown>;
  } else if (line.trim()) {
    console.error(`[load] ${line}`);
  }
});
await pending;
await within(load.exited, 10_000);
await stop(load);
// SIGTERM drains and exits: the CPU profile is written at exit.
server.kill("SIGTERM");
if ((await within(server.exited, 30_000)) === undefined) await stop(server);
if (dataDir) rmSync(dataDir, { recursive: true, force: true });

writeFileSync(join(out, "marks.json"), JSON.stringify(epochMarks));
const from = marks.get("start") ?? marks.get("before");
const to = marks.get("end") ?? marks.get("after");
const units = Number(result?.count ?? n);
const report: Record<string, unknown> = { target: kind, job: jobName, n, units, out };
if (from && to) {
  const cpuMs = to.cpuMs - from.cpuMs;
  Object.assign(report, {
    serverCpuMs: cpuMs,
    wallMs: Math.round(to.at - from.at),
    serverCpuUsPerUnit: Math.round((cpuMs * 1000) / units),
    rssDeltaKb: to.rssKb - from.rssKb,
    rssPerUnitKb: +((to.rssKb - from.rssKb) / units).toFixed(2),
  });
}
const partsPerUnit = (from: string, to: string) => {
  const a = rssParts.get(from);
  const b = rssParts.get(to);
  return a && b ? { anon: +((b.anonKb - a.anonKb) / units).toFixed(2), file: +((b.fileKb - a.fileKb) / units).toFixed(2) } : undefined;
};
report.rssPartsPerUnitKb = partsPerUnit(marks.has("start") ? "start" : "before", marks.has("end") ? "end" : "after");
if (rssParts.has("after+heap")) report.rssPartsAfterGcPerUnitKb = partsPerUnit("before+heap", "after+heap");
const t0 = threadMarks.get("start") ?? threadMarks.get("before");
const t1 = threadMarks.get("end") ?? threadMarks.get("after");
if (t0 && t1) {
  const rows = [...t1].map(([k, v]) => [k, v - (t0.get(k) ?? 0)] as const).filter(([, d]) => d > 0);
  report.threadCpuMs = Object.fromEntries(rows.sort((a, b) => b[1] - a[1]));
}
if (result) report.result = { rate: result.rate, count: result.count, refused: result.refused, latency: result.latency, extra: result.extra, error: result.error };
const before = heaps.get("before");
const after = heaps.get("after");
if (before && after) {
  const per = (a: number, b: number) => +((b - a) / units).toFixed(2);
  const types = new Set([...Object.keys(before.heap.objectTypeCounts), ...Object.keys(after.heap.objectTypeCounts)]);
  const delta = [...types]
    .map((t) => [t, per(before.heap.objectTypeCounts[t] ?? 0, after.heap.objectTypeCounts[t] ?? 0)] as const)
    .filter(([, d]) => Math.abs(d) >= 0.01)
    .sort((a, b) => b[1] - a[1]);
  Object.assign(report, {
    heapBytesPerUnit: per(before.heap.heapSize, after.heap.heapSize),
    extraMemoryPerUnit: per(before.heap.extraMemorySize, after.heap.extraMemorySize),
    objectsPerUnit: per(before.heap.objectCount, after.heap.objectCount),
    rssAfterGcPerUnitKb: per(before.memory.rss, after.memory.rss) / 1024,
    objectTypesPerUnit: Object.fromEntries(delta),
  });
}
const profiles = readdirSync(out).filter((f) => f.endsWith(".md") || f.endsWith(".cpuprofile"));
if (profiles.length) report.profiles = profiles.map((f) => join(out, f));
console.log(JSON.stringify(report, null, 1));
