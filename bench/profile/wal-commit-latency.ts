/**
 * Commit latency of the embedded store with its checkpoint worker (issue #19, L1): 1-event commits
 * paced at `--rate` per second for `--seconds` on the real store and checkpointer, then per-commit
 * duration p50/p99/p99.9/max, commits over 1 and 5 ms, and how long the WAL got: the `-wal` file's
 * size, and the most frames it held at once (`mxFrame`, read from the `-shm` wal-index header every
 * 2 ms: a measurement aid only, the product never reads it). `--src` runs another checkout's code,
 * so before and after can be compared in the same minute:
 *
 *   bun bench/profile/wal-commit-latency.ts --rate 1000 --seconds 15 [--src /path/to/other/src] [--wal 16777216]
 */
import { mkdtempSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const src = resolve(arg("src", join(import.meta.dir, "../../src")));
const rate = Number(arg("rate", "1000"));
const seconds = Number(arg("seconds", "15"));
const walLimitBytes = Number(arg("wal", String(16 * 1024 * 1024)));
const { openSqliteStore } = await import(`${src}/engine/sqlite-store.ts`);
const { startCheckpointer } = await import(`${src}/engine/sqlite-checkpointer.ts`);
const { eventFrame } = await import(`${src}/protocol/serializer.ts`);

const dir = mkdtempSync(join(tmpdir(), "wal-commit-latency-"));
const store = openSqliteStore({ dataDir: dir, fileName: "courier.db", now: Date.now, log: () => {}, walLimitBytes });
// As the engine starts it (older checkouts ignore walLimitBytes).
const checkpointer = startCheckpointer({ path: store.path, walLimitBytes, log: (level: string, msg: string, fields: object) => console.log(level, msg, fields) });
const data = JSON.stringify({ seq: 0, payload: "x".repeat(150) });
const durations: number[] = [];
let offset = 0;

function commitOnce(): void {
  offset++;
  const ts = Date.now();
  const channel = `public:c${offset % 50}`;
  const frame = eventFrame({ channel, offset, event: "tick", dataJson: data, critical: true, ts });
  const started = performance.now();
  store.commit([{ ev: { channel, offset, event: "tick", critical: true, coalesce: null, ts, frame }, idem: null, dataJson: data }], new Map([[channel, { epoch: "bench", top: offset, normalTs: null, criticalTs: ts }]]));
  durations.push(performance.now() - started);
}

let walBytesMax = 0;
let framesMax = 0;
const header = Buffer.alloc(48);
let shm = -1;
const sampler = setInterval(() => {
  try {
    walBytesMax = Math.max(walBytesMax, statSync(`${store.path}-wal`).size);
    if (shm < 0) shm = openSync(`${store.path}-shm`, "r");
    readSync(shm, header, 0, 48, 0);
    framesMax = Math.max(framesMax, header.readUInt32LE(16));
  } catch {
    // Not created yet.
  }
}, 2);

const t0 = performance.now();
await new Promise<void>((done) => {
  const tick = () => {
    const now = performance.now();
    if (now - t0 >= seconds * 1000) return done();
    const due = Math.floor(((now - t0) / 1000) * rate);
    while (offset < due) commitOnce();
    setTimeout(tick, 1);
  };
  tick();
});
clearInterval(sampler);
durations.sort((a, b) => a - b);
const at = (q: number) => durations[Math.min(durations.length - 1, Math.floor(q * durations.length))]!.toFixed(3);
console.log(
  JSON.stringify({
    src,
    rate,
    commits: durations.length,
    p50: at(0.5),
    p99: at(0.99),
    p999: at(0.999),
    max: durations.at(-1)!.toFixed(2),
    over1ms: durations.filter((d) => d > 1).length,
    over5ms: durations.filter((d) => d > 5).length,
    walFileMaxKB: Math.round(walBytesMax / 1024),
    walFramesMax: framesMax,
    checkpoints: checkpointer.stats().runs,
  }),
);
checkpointer.close();
store.close();
rmSync(dir, { recursive: true, force: true });
