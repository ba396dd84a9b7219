/**
 * The promise under a crash: 50 clients on their user channels, 1,000 critical events published,
 * the server `kill -9`ed mid-stream and restarted on the same data dir. Clients resume with
 * `since`: every event that got a 200 arrives exactly once per client, in order.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signToken } from "../src/auth/tokens.ts";
import { connectWelcomed, type TestClient } from "./helpers/client.ts";
import { spawnCourier, type CourierProcess } from "./helpers/process.ts";
import { API_KEY, JWT_SECRET } from "./helpers/server.ts";

const dataDir = mkdtempSync(join(tmpdir(), "courier-crash-"));
const children: CourierProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

const CLIENTS = 50;
const EVENTS = 1000;

test("kill -9 mid-stream: every acknowledged critical event arrives exactly once, in order", async () => {
  const first = await spawnCourier({ COURIER_DATA_DIR: dataDir });
  children.push(first);
  const users = Array.from({ length: CLIENTS }, (_, i) => `crash-${i}`);
  const tokens = await Promise.all(users.map((u) => signToken(JWT_SECRET, { sub: u }, 600)));
  const epochs = new Map<string, string>();
  const received = new Map<string, number[]>(users.map((u) => [u, []]));
  const track = (client: TestClient, user: string) => {
    client.ws.addEventListener("message", (m) => {
      const f = JSON.parse(String(m.data));
      if (f.type === "event") received.get(user)!.push(f.offset);
    });
  };
  const clients = await Promise.all(users.map((u, i) => connectWelcomed(`${first.ws}?token=${tokens[i]}`)));
  await Promise.all(
    clients.map(async (c, i) => {
      track(c, users[i]!);
      const sub = await c.request({ type: "subscribe", channel: `user:${users[i]}` });
      epochs.set(users[i]!, sub.epoch);
    }),
  );

  // Publish with 20 in flight; kill -9 once 400 have been acknowledged.
  const acknowledged = new Map<string, number[]>(users.map((u) => [u, []]));
  let acked = 0;
  let next = 0;
  const killAt = 400;
  const worker = async () => {
    while (next < EVENTS) {
      const i = next++;
      const user = users[i % CLIENTS]!;
      try {
        const res = await fetch(`${first.http}/v1/publish`, {
          method: "POST",
          headers: { authorization: `Bearer ${API_KEY}` },
          body: JSON.stringify({ channel: `user:${user}`, event: "tool_completed", data: { i } }),
        });
        if (res.status === 200) {
          acknowledged.get(user)!.push((await res.json()).offset);
          if (++acked === killAt) first.kill("SIGKILL");
        }
      } catch {
        // The process is gone: this publish got no 200, so nothing is promised for it.
      }
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
  expect(await first.exited).not.toBe(0);
  expect(acked).toBeGreaterThanOrEqual(killAt);
  expect(acked).toBeLessThan(EVENTS); // the kill landed mid-stream
  await Promise.all(clients.map((c) => c.closed));

  const second = await spawnCourier({ COURIER_DATA_DIR: dataDir }, first.port);
  children.push(second);
  const resumed = await Promise.all(users.map((u, i) => connectWelcomed(`${second.ws}?token=${tokens[i]}`)));
  await Promise.all(
    resumed.map(async (c, i) => {
      const user = users[i]!;
      track(c, user);
      const seen = received.get(user)!;
      const answer = await c.request({ type: "subscribe", channel: `user:${user}`, since: { offset: seen.at(-1) ?? 0, epoch: epochs.get(user) } });
      expect(answer).toMatchObject({ recovered: true, epoch: epochs.get(user) });
      await c.request({ type: "ping" }); // the replay precedes the pong on this connection
    }),
  );

  let total = 0;
  for (const user of users) {
    const got = received.get(user)!;
    // Exactly once and in order: strictly increasing, and every acknowledged offset present.
    for (let k = 1; k < got.length; k++) expect(got[k]!).toBeGreaterThan(got[k - 1]!);
    const set = new Set(got);
    for (const offset of acknowledged.get(user)!) expect(set.has(offset)).toBe(true);
    total += acknowledged.get(user)!.length;
  }
  expect(total).toBe(acked);
  for (const c of resumed) c.close();
  second.kill("SIGTERM");
  expect(await second.exited).toBe(0);
}, 60_000);
