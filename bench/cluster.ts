/**
 * `bun run bench --cluster`: cross-node fan-out on Redis against a single node, in one run.
 * Cases: one node on the embedded store; one node on Redis (the cost of the Redis round trip);
 * two nodes on Redis, subscribers on B and publishes through A (the cross-node path). Also counts
 * Redis commands per publish (INFO commandstats), the figure the capacity model in the README uses.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LoadResult } from "./load/common.ts";
import type { WorkerJob } from "./load/worker.ts";
import { freePort, readLines, sampleProc, cpuShare, spawnPinned, stop, waitHealthy, within, type ProcSample } from "./lib/proc.ts";
import { COURIER_MAIN, LOAD_CPU, ROOT, SERVER_CPU } from "./lib/servers.ts";

const REDIS_URL = process.env.COURIER_REDIS_URL ?? "redis://127.0.0.1:6379";
const full = process.argv.includes("--full");
const PARAMS = { subscribers: 1000, events: full ? 1000 : 300, burst: 10 };

/** Calls per Redis command name, from INFO commandstats (commands run inside scripts included). */
async function redisCalls(): Promise<Map<string, number> | undefined> {
  const proc = Bun.spawn(["redis-cli", "-u", REDIS_URL, "INFO", "commandstats"], { stdout: "pipe", stderr: "ignore" });
  const text = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0 || !text.includes("cmdstat")) return undefined;
  const calls = new Map<string, number>();
  for (const match of text.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

/** The commands a publish causes: round trips (EVALSHA) and what the script runs. Background traffic (heartbeats, stats) is left out. */
const PUBLISH_COMMANDS = ["evalsha", "xadd", "publish", "hmget", "hset", "xlen"];

async function node(env: Record<string, string>) {
  const port = freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "courier-bench-cluster-"));
  const proc = spawnPinned({ cmd: ["bun", COURIER_MAIN], cpu: SERVER_CPU, cwd: ROOT, env: { COURIER_ENV: "test", HOST: "127.0.0.1", PORT: String(port), COURIER_DATA_DIR: dataDir, ...env } });
  void readLines(proc.stdout, () => {});
  const base = `http://127.0.0.1:${port}`;
  await waitHealthy(`${base}/ready`, proc, 20_000);
  return { proc, base, cleanup: async () => { await stop(proc); rmSync(dataDir, { recursive: true, force: true }); } };
}

interface Case {
  name: string;
  result?: LoadResult;
  redisPerPublish?: string;
  serverCpu?: number;
  error?: string;
}

async function run(name: string, nodes: Array<Awaited<ReturnType<typeof node>>>, publishVia: number, subscribeVia: number): Promise<Case> {
  const job: WorkerJob = { scenario: "fanout", target: { kind: "courier", base: nodes[subscribeVia]!.base, publishBase: nodes[publishVia]!.base }, params: PARAMS, timeoutMs: 60_000 };
  // Counted between the load generator's start and end marks: the publish window only, without
  // the connection-slot scripts of 1,000 subscribers arriving and leaving.
  let before: Promise<Map<string, number> | undefined> = Promise.resolve(undefined);
  let afterCalls: Promise<Map<string, number> | undefined> = Promise.resolve(undefined);
  const load = spawnPinned({ cmd: ["bun", join(ROOT, "bench/load/worker.ts"), JSON.stringify(job)], cpu: LOAD_CPU, stdin: "pipe", cwd: ROOT });
  let result: LoadResult | undefined;
  const samples = new Map<string, (ProcSample | undefined)[]>();
  const reading = readLines(load.stdout, (line) => {
    if (line.startsWith("MARK ")) {
      samples.set(line.slice(5), nodes.map((n) => sampleProc(n.proc.pid)));
      if (line === "MARK start") before = redisCalls();
      if (line === "MARK end") afterCalls = redisCalls();
    }
    else if (line.startsWith("RESULT ")) result = JSON.parse(line.slice(7)) as LoadResult;
  });
  await within(load.exited, 70_000);
  await within(reading, 1_000);
  await stop(load);
  const [beforeMap, after] = [await before, await afterCalls];
  const start = samples.get("start");
  const end = samples.get("end");
  const cpu = start && end ? nodes.reduce((sum, _, i) => sum + (cpuShare(start[i], end[i]) ?? 0), 0) : undefined;
  const c: Case = { name, result, serverCpu: cpu };
  if (result?.error) c.error = String(result.error);
  if (beforeMap && after && name.includes("Redis")) {
    c.redisPerPublish = PUBLISH_COMMANDS.map((cmd) => `${cmd} ${(((after.get(cmd) ?? 0) - (beforeMap.get(cmd) ?? 0)) / PARAMS.events).toFixed(2)}`).join(", ");
  }
  return c;
}

const cases: Case[] = [];
const single = await node({});
cases.push(await run("one node, embedded store", [single], 0, 0));
await single.cleanup();
if ((await redisCalls()) === undefined) {
  cases.push({ name: "Redis cases", error: `no Redis at ${REDIS_URL}` });
} else {
  const a = await node({ COURIER_REDIS_URL: REDIS_URL, COURIER_NODE_ID: "bench-a" });
  cases.push(await run("one node on Redis", [a], 0, 0));
  const b = await node({ COURIER_REDIS_URL: REDIS_URL, COURIER_NODE_ID: "bench-b" });
  cases.push(await run("two nodes on Redis (publish A → subscribers on B)", [a, b], 0, 1));
  await a.cleanup();
  await b.cleanup();
}

const base = cases[0]?.result?.rate;
const ms = (v?: number) => (v === undefined ? "—" : `${v.toFixed(2)} ms`);
const lines = [
  `# Courier cluster bench (${full ? "full" : "quick"})`,
  "",
  `- date: ${new Date().toISOString()}; ${PARAMS.subscribers} subscribers × ${PARAMS.events} events, bursts of ${PARAMS.burst}; Redis ${REDIS_URL.replace(/\/\/.*@/, "//")}`,
  "- nodes pinned to CPU 0 (both nodes share it in the two-node case), load generator on CPU 1; Redis unpinned; all on 127.0.0.1",
  "",
  "| case | deliveries/s | ÷ one node embedded | latency p50 | latency p99 | lost | Redis commands per published event (bursts of 10 share one script call) | server CPU (sum of nodes) |",
  "|---|---|---|---|---|---|---|---|",
  ...cases.map((c) => {
    const r = c.result;
    if (!r || c.error) return `| ${c.name} | n/a (${c.error ?? "no result"}) | | | | | | |`;
    return `| ${c.name} | ${((r.rate ?? 0) / 1000).toFixed(1)}k/s | ${base ? ((r.rate ?? 0) / base).toFixed(2) + "×" : "—"} | ${ms(r.latency?.p50)} | ${ms(r.latency?.p99)} | ${r.lost ?? "—"} | ${c.redisPerPublish ?? "—"} | ${c.serverCpu === undefined ? "—" : `${(c.serverCpu * 100).toFixed(0)}%`} |`;
  }),
  "",
];
const report = lines.join("\n");
console.log(report);
await Bun.write(join(ROOT, "bench", "results", `cluster-${full ? "full" : "quick"}-latest.md`), report);
process.exit(0);
