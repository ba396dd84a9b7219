/**
 * Reads a `.cpuprofile` written by `bun --cpu-prof` and attributes its samples to Courier's parts.
 * Counts samples, not their time deltas: Bun weights a sample by the wall time to the next one,
 * which on a loaded machine includes time the thread was not running. A native leaf (`verify`,
 * `parse`, `upgrade`) is charged to the nearest JS frame above it that belongs to a part, so
 * "jose" includes the HMAC it calls. With `--from/--to` (epoch ms; profile.ts writes them to
 * `marks.json`) only the samples of the measured window count.
 *
 *   bun bench/profile/analyze.ts <file.cpuprofile | dir> [--top 40] [--from ms --to ms] [--per 10000]
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Parts of the server, first match wins (by script URL). */
const PARTS: [string, (url: string, fn: string) => boolean][] = [
  ["jose (JWT verify)", (u) => u.includes("node_modules/jose")],
  ["OTel SDK (metrics)", (u) => u.includes("node_modules/@opentelemetry")],
  ["zod", (u) => u.includes("node_modules/zod")],
  ["src/auth (JWT → principal, API key digest)", (u) => u.includes("/src/auth/")],
  ["admission (admission, ip-rate-limit, client-ip, cors)", (u) => /src\/(server\/(admission|client-ip|cors)|connection\/ip-rate-limit)\.ts/.test(u)],
  ["upgrade.ts", (u) => u.endsWith("src/server/upgrade.ts")],
  ["conn-data.ts", (u) => u.endsWith("src/connection/conn-data.ts")],
  ["sessions.ts", (u) => u.endsWith("src/server/sessions.ts")],
  ["engine (src/engine)", (u) => u.includes("/src/engine/")],
  ["websocket.ts (open/welcome/message/close)", (u) => u.endsWith("src/server/websocket.ts")],
  ["manager + close-handshake", (u) => /src\/connection\/(manager|close-handshake|rate-limit|permissions)\.ts/.test(u)],
  ["hub / delivery", (u) => u.includes("/src/delivery/")],
  ["publish route + publisher + http", (u) => /src\/server\/(publish-routes|publisher|http)\.ts/.test(u)],
  ["telemetry (ours) + server-events", (u) => u.includes("/src/telemetry/") || u.endsWith("src/server/server-events.ts")],
  ["extensions", (u) => u.endsWith("src/server/extension.ts")],
  ["housekeeping (sweeps)", (u) => u.endsWith("src/server/housekeeping.ts")],
  ["app.ts / route table", (u) => /src\/server\/(app|route-table|ops-routes|error-response)\.ts/.test(u)],
  ["protocol (src/protocol)", (u) => u.includes("/src/protocol/")],
  ["domain", (u) => u.includes("/src/domain/")],
  ["drain / main", (u) => /src\/(main|server\/drain)\.ts/.test(u)],
  ["other src", (u) => u.includes("/src/")],
  ["bench hook", (u) => u.includes("/bench/")],
  ["bun:sqlite", (u) => u === "bun:sqlite"],
  ["node:crypto", (u) => u === "node:crypto"],
  ["node:fs", (u) => u === "node:fs"],
  ["other node:/bun: builtins", (u) => u.startsWith("node:") || u.startsWith("bun:")],
  ["other node_modules", (u) => u.includes("node_modules")],
];

function partOf(url: string, fn: string): string | undefined {
  if (!url || url === "[native code]") return undefined;
  for (const [name, test] of PARTS) if (test(url, fn)) return name;
  return "other JS";
}

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
let file = args[0]!;
let from = opt("from") ? Number(opt("from")) : undefined;
let to = opt("to") ? Number(opt("to")) : undefined;
if (statSync(file).isDirectory()) {
  const dir = file;
  file = join(dir, readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))!);
  const marksFile = join(dir, "marks.json");
  if (from === undefined && existsSync(marksFile)) {
    const marks = JSON.parse(readFileSync(marksFile, "utf8")) as Record<string, number>;
    from = marks.start ?? marks.before;
    to = marks.end ?? marks.after;
  }
}
const top = Number(opt("top") ?? 40);
const per = opt("per") ? Number(opt("per")) : undefined;
const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const selfPart = new Map<string, number>();
const totalPart = new Map<string, number>();
const selfFn = new Map<string, number>();
let counted = 0;
let t = p.startTime;
for (let i = 0; i < p.samples.length; i++) {
  t += p.timeDeltas[i]!;
  const ms = t / 1000;
  if (from !== undefined && ms < from) continue;
  if (to !== undefined && ms > to) continue;
  const leaf = byId.get(p.samples[i]!)!;
  const name = leaf.callFrame.functionName || "(anonymous)";
  if (name === "(idle)") continue;
  counted++;
  let id: number | undefined = leaf.id;
  let self: string | undefined;
  const seen = new Set<string>();
  let caller = "";
  while (id !== undefined) {
    const n = byId.get(id)!;
    const part = partOf(n.callFrame.url, n.callFrame.functionName);
    if (part !== undefined) {
      self ??= part;
      if (!caller && n !== leaf) caller = `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(/^.*\/(src|node_modules)\//, "$1/")}:${n.callFrame.lineNumber + 1}`;
      seen.add(part);
    }
    id = parent.get(id);
  }
  // A leaf under the root with no JS frame: Bun's own work between callbacks (HTTP parsing and
  // writing, socket I/O, microtask plumbing) or the GC.
  self ??= name === "(anonymous)" || name === "" ? "runtime, no JS frame (HTTP/socket I/O, GC)" : name.startsWith("(") ? name : "native, no JS caller";
  selfPart.set(self, (selfPart.get(self) ?? 0) + 1);
  for (const part of seen) totalPart.set(part, (totalPart.get(part) ?? 0) + 1);
  const where = leaf.callFrame.url && leaf.callFrame.url !== "[native code]" ? `${leaf.callFrame.url.replace(/^.*\/(src|node_modules)\//, "$1/")}:${leaf.callFrame.lineNumber + 1}` : `native ← ${caller || "?"}`;
  const key = `${name} (${where})`;
  selfFn.set(key, (selfFn.get(key) ?? 0) + 1);
}

const pct = (v: number) => `${((v / counted) * 100).toFixed(1)}%`;
console.log(`${file}\nsamples in window: ${counted}${from ? ` (window ${((to! - from) / 1000).toFixed(2)} s)` : ""}\n`);
console.log("| part | self | incl. |\n|---|---:|---:|");
for (const [part, v] of [...selfPart].sort((a, b) => b[1] - a[1])) console.log(`| ${part} | ${pct(v)} | ${pct(totalPart.get(part) ?? v)} |`);
console.log(`\n| self | function (where; a native leaf names its JS caller) |\n|---:|---|`);
for (const [fn, v] of [...selfFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`| ${pct(v)} | \`${fn}\` |`);
if (per) console.log(`\n(${counted} samples over ${per} units)`);
