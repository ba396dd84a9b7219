/**
 * `rm -rf <data dir>` under a running node (issue 14 §3). SQLite would keep committing into the
 * unlinked files, so every later 200 would be lost at the next restart. Required: no publish that
 * starts after the deletion gets a 200 (503 instead), `/ready` answers 503, one error line names
 * the path; everything acked before it reached the subscriber exactly once, in order; and after a
 * restart a resuming client is told its history is gone (`epoch_changed`).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signToken } from "../../src/auth/tokens.ts";
import { connectWelcomed } from "../helpers/client.ts";
import { spawnCourier, type CourierProcess } from "../helpers/process.ts";
import { JWT_SECRET } from "../helpers/server.ts";
import { Ledger, printAudit, settle, subscribe } from "./embedded-ledger.ts";

const root = mkdtempSync(join(tmpdir(), "courier-chaos-rm-"));
const dataDir = join(root, "data");
const children: CourierProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

test("after rm -rf of the data dir no publish gets a 200, /ready is 503, and the log names the path", async () => {
  const node = await spawnCourier({ COURIER_DATA_DIR: dataDir });
  children.push(node);
  const ledger = new Ledger(node.http);
  const sub = await subscribe(node.ws, "rm-rf");

  // Eight publishers in flight; the dir goes once 300 are acked.
  let removedAt = -1;
  let started = 0;
  const afterRemoval = { ok: 0, unavailable: 0, other: 0 };
  const worker = async () => {
    while (started < 1500) {
      const n = started++;
      const startedAfterRemoval = removedAt >= 0;
      const answer = await ledger.publish(sub.channel, { n });
      if (answer.status === 200 && ledger.acked.length === 300) {
        rmSync(dataDir, { recursive: true, force: true });
        removedAt = n;
      }
      if (!startedAfterRemoval) continue;
      if (answer.status === 200) afterRemoval.ok++;
      else if (answer.status === 503) afterRemoval.unavailable++;
      else afterRemoval.other++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const ready = await fetch(`${node.http}/ready`);
  const readyBody = await ready.json();
  console.log(`[chaos] data-dir-deleted: publishes started after rm -rf: ${JSON.stringify(afterRemoval)}; /ready ${ready.status} ${JSON.stringify(readyBody)}`);
  expect(removedAt).toBeGreaterThanOrEqual(0);
  expect(afterRemoval.ok).toBe(0);
  expect(afterRemoval.other).toBe(0);
  expect(afterRemoval.unavailable).toBeGreaterThan(1000);
  expect(ready.status).toBe(503);

  await settle(sub);
  const live = ledger.audit(sub.channel, sub.offsets);
  printAudit("data-dir-deleted", "subscriber (acked before rm)", live);
  expect(live.lost + live.duplicated + live.outOfOrder).toBe(0);

  const errors = node.output().split("\n").filter((l) => l.includes("store files are gone"));
  console.log(`[chaos] data-dir-deleted: error lines ${JSON.stringify(errors)}`);
  expect(errors).toHaveLength(1);
  expect(JSON.parse(errors[0]!)).toMatchObject({ level: "error", path: dataDir });

  // Restarted on the (now empty) path: a client resuming its old position is told history is gone.
  node.kill("SIGKILL");
  await node.exited;
  const restarted = await spawnCourier({ COURIER_DATA_DIR: dataDir });
  children.push(restarted);
  const token = await signToken(JWT_SECRET, { sub: "rm-rf" }, 600);
  const client = await connectWelcomed(`${restarted.ws}?token=${token}`);
  const answer = await client.request({ type: "subscribe", channel: sub.channel, since: { offset: sub.offsets.at(-1)!, epoch: sub.epoch } });
  console.log(`[chaos] data-dir-deleted: resume after restart ${JSON.stringify(answer)}`);
  expect(answer).toMatchObject({ type: "subscribed", recovered: false, reason: "epoch_changed" });
  client.close();
  restarted.kill("SIGTERM");
  expect(await restarted.exited).toBe(0);
}, 30_000);
