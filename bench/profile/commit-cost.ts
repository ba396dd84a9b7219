/**
 * The embedded store's commit cost by group size, on the real store (src/engine/sqlite-store.ts:
 * WAL, synchronous=NORMAL, the same prepared statements), without HTTP or a server: CPU µs per
 * commit and per event for groups of 1…64 events of ~200 B, as the engine's group commit makes
 * them. CPU time (process.cpuUsage), so a loaded machine inflates it little. The checkpoint worker
 * is not running here: this is the commit alone.
 *
 *   bun bench/profile/commit-cost.ts [--events 20000]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSqliteStore, type BatchRow } from "../../src/engine/sqlite-store.ts";
import { eventFrame } from "../../src/protocol/serializer.ts";

const i = process.argv.indexOf("--events");
const total = i > 0 ? Number(process.argv[i + 1]) : 20_000;
const data = JSON.stringify({ seq: 0, payload: "x".repeat(150) });

for (const group of [1, 2, 4, 8, 16, 64]) {
  const dir = mkdtempSync(join(tmpdir(), "commit-cost-"));
  const store = openSqliteStore({ dataDir: dir, fileName: "courier.db", now: Date.now, log: () => {} });
  let offset = 0;
  const commitOnce = () => {
    const rows: BatchRow[] = [];
    for (let k = 0; k < group; k++) {
      offset++;
      const ts = Date.now();
      const ev = { channel: "public:bench", offset, event: "tick", critical: true, coalesce: null, ts, frame: eventFrame({ channel: "public:bench", offset, event: "tick", dataJson: data, critical: true, ts }) };
      rows.push({ ev, idem: null, dataJson: data });
    }
    store.commit(rows, new Map([["public:bench", { epoch: "bench", top: offset, normalTs: null, criticalTs: rows[0]!.ev.ts }]]));
  };
  for (let k = 0; k < 200; k++) commitOnce();
  const commits = Math.ceil(total / group);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let k = 0; k < commits; k++) commitOnce();
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  const cpuUs = cpu.user + cpu.system;
  console.log(`group ${String(group).padStart(2)}: ${(cpuUs / commits).toFixed(1)} µs CPU/commit, ${(cpuUs / (commits * group)).toFixed(1)} µs CPU/event (sys ${((cpu.system / cpuUs) * 100).toFixed(0)}%), ${((wallMs * 1000) / (commits * group)).toFixed(1)} µs wall/event`);
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
