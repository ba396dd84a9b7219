/**
 * A data dir on a read-only filesystem (issue 14 §4, PROTOCOL §1 v1.1), with a real read-only bind
 * mount (root ignores `chmod`). Linux refuses to remount a filesystem read-only while a process
 * has files open on it for writing (EBUSY), so a running node cannot be made read-only from
 * outside: the case that happens is a node (re)started on a read-only volume. It must exit 1 with
 * one line naming the path, never serve, and leave the store intact for a writable restart.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCourierToExit, spawnCourier, type CourierProcess } from "../helpers/process.ts";
import { auditAfterRestart, Ledger, printAudit, settle, subscribe } from "./embedded-ledger.ts";
import { mountReadOnly, mountUnavailable, type Mounted } from "./embedded-mount.ts";

if (mountUnavailable !== null) console.log(`[chaos] read-only: ${mountUnavailable}`);

const root = mkdtempSync(join(tmpdir(), "courier-chaos-ro-"));
const children: CourierProcess[] = [];
const mounts: Mounted[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const m of mounts) m.unmount();
  rmSync(root, { recursive: true, force: true });
});

test.skipIf(mountUnavailable !== null)("a node started on a read-only data dir exits 1 naming it; the store is intact afterwards", async () => {
  const dataDir = join(root, "data");
  const node = await spawnCourier({ COURIER_DATA_DIR: dataDir });
  children.push(node);
  const ledger = new Ledger(node.http);
  const sub = await subscribe(node.ws, "read-only");
  for (let i = 0; i < 100; i++) expect((await ledger.publish(sub.channel, { i })).status).toBe(200);
  await settle(sub);
  printAudit("read-only", "subscriber", ledger.audit(sub.channel, sub.offsets));
  node.kill("SIGTERM");
  expect(await node.exited).toBe(0);

  const readOnly = mountReadOnly(root);
  mounts.push(readOnly);
  const roDir = join(readOnly.dir, "data");
  const { code, stdout, stderr } = await runCourierToExit({ COURIER_DATA_DIR: roDir });
  const lines = stderr.trim().split("\n");
  console.log(`[chaos] read-only: start on ${roDir}: exit ${code}, stderr ${JSON.stringify(lines)}`);
  expect(code).toBe(1);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toStartWith(`data dir ${roDir} cannot be used: `);
  expect(stdout).not.toContain("listening");

  const after = await auditAfterRestart({ scenario: "read-only", reader: "history after the refused start", dataDir, ledger, sub });
  expect(after).toEqual({ audit: { acked: 100, lost: 0, duplicated: 0, outOfOrder: 0 }, epoch: sub.epoch, exitCode: 0 });
}, 30_000);
