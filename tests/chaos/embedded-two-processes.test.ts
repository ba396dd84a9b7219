/**
 * Two processes on one data dir (issue 14 §2, PROTOCOL §1 v1.1): the second exits 1 with one line
 * naming the dir and the holder's pid, the first keeps serving untouched, and a `kill -9`ed holder
 * does not block the restart. Every acked publish is then in the subscriber's stream and in history.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCourierToExit, spawnCourier, type CourierProcess } from "../helpers/process.ts";
import { auditAfterRestart, Ledger, printAudit, settle, subscribe } from "./embedded-ledger.ts";

const dataDir = mkdtempSync(join(tmpdir(), "courier-chaos-two-"));
const children: CourierProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

test("a second process on the data dir exits 1 naming the holder; the first is untouched; kill -9 frees the dir", async () => {
  const first = await spawnCourier({ COURIER_DATA_DIR: dataDir });
  children.push(first);
  const ledger = new Ledger(first.http);
  const sub = await subscribe(first.ws, "two-procs");
  for (let i = 0; i < 100; i++) expect((await ledger.publish(sub.channel, { i })).status).toBe(200);

  const second = await runCourierToExit({ COURIER_DATA_DIR: dataDir }); // must never get as far as serving
  const lines = second.stderr.trim().split("\n");
  console.log(`[chaos] second process: exit ${second.code}, stderr ${JSON.stringify(lines)}`);
  expect(second.code).toBe(1);
  expect(lines).toEqual([`data dir ${dataDir} is in use by pid ${first.proc.pid}`]);
  expect(second.stdout).not.toContain("listening");

  // The first one is untouched: it publishes on, and stays ready.
  for (let i = 100; i < 200; i++) expect((await ledger.publish(sub.channel, { i })).status).toBe(200);
  expect((await fetch(`${first.http}/ready`)).status).toBe(200);
  await settle(sub);
  const live = ledger.audit(sub.channel, sub.offsets);
  printAudit("two-processes", "subscriber", live);
  expect(live).toEqual({ acked: 200, lost: 0, duplicated: 0, outOfOrder: 0 });

  first.kill("SIGKILL");
  console.log(`[chaos] first process: exit ${await first.exited} (kill -9)`);
  const after = await auditAfterRestart({ scenario: "two-processes", reader: "history after kill -9 and restart", dataDir, ledger, sub });
  expect(after).toEqual({ audit: { acked: 200, lost: 0, duplicated: 0, outOfOrder: 0 }, epoch: sub.epoch, exitCode: 0 });
}, 30_000);
