/**
 * A full disk under a running node (issue 14 §4), on a real 8 MiB tmpfs: publishes answer 503
 * with `Retry-After` (never a 200 that is not stored), `/ready` answers 503 while the disk is
 * full, and once space is freed publishes succeed again within the `Retry-After` advertised.
 * Every acked publish reaches the subscriber and is in history after a restart.
 */
import { afterAll, expect, test } from "bun:test";
import { closeSync, openSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { spawnCourier, type CourierProcess } from "../helpers/process.ts";
import { auditAfterRestart, Ledger, printAudit, settle, subscribe, type PublishAnswer } from "./embedded-ledger.ts";
import { mountTmpfs, mountUnavailable, type Mounted } from "./embedded-mount.ts";

if (mountUnavailable !== null) console.log(`[chaos] disk-full: ${mountUnavailable}`);

const children: CourierProcess[] = [];
const mounts: Mounted[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const m of mounts) m.unmount();
});

/** Writes `path` until the filesystem refuses (ENOSPC); returns the bytes written. */
function fill(path: string): number {
  const fd = openSync(path, "w");
  let written = 0;
  try {
    for (const chunk of [Buffer.alloc(256 * 1024, 1), Buffer.alloc(4096, 1), Buffer.alloc(512, 1)]) {
      for (;;) {
        try {
          written += writeSync(fd, chunk);
        } catch (error) {
          if ((error as { code?: string }).code !== "ENOSPC") throw error;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

test.skipIf(mountUnavailable !== null)("a full disk answers 503 and /ready 503; freed space brings publishes back within Retry-After", async () => {
  const disk = mountTmpfs(8 * 1024 * 1024);
  mounts.push(disk);
  const node = await spawnCourier({ COURIER_DATA_DIR: join(disk.dir, "data") });
  children.push(node);
  const ledger = new Ledger(node.http);
  const sub = await subscribe(node.ws, "disk-full");
  for (let i = 0; i < 50; i++) expect((await ledger.publish(sub.channel, { i })).status).toBe(200);

  const filler = join(disk.dir, "filler");
  const filled = fill(filler);
  // Small pages may still fit in WAL space SQLite holds already: publish until the disk refuses.
  const payload = { text: "x".repeat(16 * 1024) };
  let refused: PublishAnswer | null = null;
  let acceptedWhileFull = 0;
  for (let i = 0; i < 2000 && refused === null; i++) {
    const answer = await ledger.publish(sub.channel, payload);
    if (answer.status === 200) acceptedWhileFull++;
    else refused = answer;
  }
  // Clients keep retrying while the disk is full: enough refusals to open the store's breaker,
  // whose cooldown is what used to keep publishes at 503 for ~9 s after the space came back.
  const refusedWhileFull: number[] = [];
  for (let i = 0; i < 20; i++) refusedWhileFull.push((await ledger.publish(sub.channel, payload)).status);
  expect(refusedWhileFull.filter((status) => status !== 503)).toEqual([]);
  // Subscribing only reads: it answers on a store that takes no write (it used to be `internal`).
  // On the open connection: new upgrades may be refused 503 while /ready fails, by design.
  const late = await sub.client.request({ type: "subscribe", channel: "public:disk-full-late" });
  console.log(`[chaos] disk-full: subscribe while full answered ${JSON.stringify(late)}`);
  expect(late).toMatchObject({ type: "subscribed", offset: 0 });
  const readyFull = await fetch(`${node.http}/ready`);
  const readyFullBody = await readyFull.json();
  console.log(
    `[chaos] disk-full: filled ${filled} bytes; ${acceptedWhileFull} publishes still stored, then ${JSON.stringify(refused)}; /ready ${readyFull.status} ${JSON.stringify(readyFullBody)}`,
  );
  // Read apart: toMatchObject with an asymmetric matcher rewrites the received object in Bun 1.4.4.
  expect(refused?.status).toBe(503);
  expect(refused?.retryAfter).toMatch(/^\d+$/);
  expect(readyFull.status).toBe(503);

  unlinkSync(filler);
  const freedAt = performance.now();
  const retryAfterMs = Number(refused!.retryAfter) * 1000;
  /** Retries `attempt` at a client's pace until it succeeds; ms from freeing, or -1 past the deadline. */
  const until = async (attempt: () => Promise<boolean>) => {
    while (performance.now() - freedAt < 4 * retryAfterMs) {
      if (await attempt()) return performance.now() - freedAt;
      await Bun.sleep(20); // a retrying client's pace; the deadline above bounds the loop
    }
    return -1;
  };
  let attempts = 0;
  const [recoveredMs, readyMs] = await Promise.all([
    until(async () => {
      attempts++;
      const answer = await ledger.publish(sub.channel, { after: attempts });
      if (answer.status !== 200 && answer.status !== 503) throw new Error(`publish answered ${answer.status}`);
      return answer.status === 200;
    }),
    until(async () => (await fetch(`${node.http}/ready`)).status === 200),
  ]);
  console.log(
    `[chaos] disk-full: after freeing, first 200 at ${recoveredMs.toFixed(0)} ms (${attempts} attempts), /ready 200 at ${readyMs.toFixed(0)} ms; Retry-After ${retryAfterMs} ms`,
  );
  // Within Retry-After of the space coming back, plus one retry step and request (the client's pace).
  const slackMs = 250;
  expect(recoveredMs).toBeGreaterThanOrEqual(0);
  expect(recoveredMs).toBeLessThanOrEqual(retryAfterMs + slackMs);
  expect(readyMs).toBeGreaterThanOrEqual(0);
  expect(readyMs).toBeLessThanOrEqual(retryAfterMs + slackMs);
  for (let i = 0; i < 50; i++) expect((await ledger.publish(sub.channel, { tail: i })).status).toBe(200);

  await settle(sub);
  const live = ledger.audit(sub.channel, sub.offsets);
  printAudit("disk-full", "subscriber", live);
  expect(live).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0 });

  node.kill("SIGKILL");
  await node.exited;
  const after = await auditAfterRestart({ scenario: "disk-full", reader: "history after kill -9 and restart", dataDir: join(disk.dir, "data"), ledger, sub });
  expect(after).toEqual({ audit: { acked: ledger.acked.length, lost: 0, duplicated: 0, outOfOrder: 0 }, epoch: sub.epoch, exitCode: 0 });
}, 30_000);
