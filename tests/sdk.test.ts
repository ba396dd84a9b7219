/**
 * The client SDK against real server processes: a restart under a connected client, and failover
 * to a second process on the same data dir. Missed events arrive once, in order.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CourierClient, type CourierEvent } from "../packages/client/src/index.ts";
import type { Status } from "../packages/client/src/types.ts";
import { signToken } from "../src/auth/tokens.ts";
import { freePort, spawnCourier, type CourierProcess } from "./helpers/process.ts";
import { API_KEY, JWT_SECRET } from "./helpers/server.ts";

const dirs: string[] = [];
const children: CourierProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "courier-sdk-"));
  dirs.push(dir);
  return dir;
}

async function spawn(dataDir: string, port?: number): Promise<CourierProcess> {
  const child = await spawnCourier({ COURIER_DATA_DIR: dataDir }, port);
  children.push(child);
  return child;
}

const publish = (node: CourierProcess, channel: string, n: number) =>
  fetch(`${node.http}/v1/publish`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ channel, event: "step", data: { n } }) }).then((r) => {
    expect(r.status).toBe(200);
  });

/**
 * Where `channel` starts, read before anything is published (the epoch of an unpublished channel is
 * stable and kept by its first publish). A subscribe from it misses nothing: "live" means welcomed,
 * not yet subscribed, and a subscribe without `since` starts at the top it finds, so a publish that
 * beat it to the server would never reach the client (seen under load: events [2,3] of 1-3).
 */
async function origin(node: CourierProcess, channel: string, token: string): Promise<{ epoch: string; offset: number }> {
  const response = await fetch(`${node.http}/v1/history?channel=${channel}`, { headers: { authorization: `Bearer ${token}` } });
  expect(response.status).toBe(200);
  const { epoch } = (await response.json()) as { epoch: string };
  return { epoch, offset: 0 };
}

/** Resolves when `client` reaches `status`. */
function reach(client: CourierClient, status: Status): Promise<void> {
  if (client.status === status) return Promise.resolve();
  const { promise, resolve } = Promise.withResolvers<void>();
  const off = client.on("status", (change) => {
    if (change.status === status) {
      off();
      resolve();
    }
  });
  return promise;
}

/**
 * `promise`, or a failure naming the step it hung in and what the client went through, well inside
 * the test's timeout: a hang then says where it was (the status changes, the events, the servers'
 * output) instead of only "timed out".
 */
async function step<T>(what: string, promise: Promise<T>, context: () => string, ms = 20_000): Promise<T> {
  let timer: Timer | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`stuck ${ms} ms in ${what}: ${context()}`)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a hung step reports: the client's status changes and events, and each server's output. */
function tracer(client: CourierClient, events: CourierEvent[], servers: () => CourierProcess[]): () => string {
  const changes: string[] = [];
  client.on("status", (change) => changes.push(JSON.stringify(change)));
  client.on("error", (error) => changes.push(`error ${(error as Error).message}`));
  return () =>
    `status ${client.status}, polling ${client.polling}; changes ${changes.join(" ")}; events ${JSON.stringify(events.map((e) => e.offset))}; ` +
    servers().map((s, i) => `server ${i + 1} output: ${s.output().slice(-1500)}`).join(" | ");
}

/** Resolves once `events` holds `count` items. */
function until(events: CourierEvent[], client: CourierClient, count: number): Promise<void> {
  if (events.length >= count) return Promise.resolve();
  const { promise, resolve } = Promise.withResolvers<void>();
  const off = client.on("event", () => {
    if (events.length >= count) {
      off();
      resolve();
    }
  });
  return promise;
}

test("server stopped and restarted under a connected client: back to live, missed events once, in order", async () => {
  const dataDir = tempDir();
  const first = await spawn(dataDir);
  const token = await signToken(JWT_SECRET, { sub: "sdk-1" }, 600);
  const client = new CourierClient({ url: first.ws, token });
  const events: CourierEvent[] = [];
  const servers = [first];
  const context = tracer(client, events, () => servers);
  client.subscribe("user:sdk-1", (e) => events.push(e), { since: await origin(first, "user:sdk-1", token) });
  client.connect();
  await step("the first connect", reach(client, "live"), context);
  for (let n = 1; n <= 5; n++) await step(`publish ${n}`, publish(first, "user:sdk-1", n), context);
  await step("events 1-5", until(events, client, 5), context);

  first.kill("SIGTERM");
  expect(await step("the drain of the first server", first.exited, context)).toBe(0);
  await step("the client's reconnect after the drain", reach(client, "connecting"), context);
  const second = await spawn(dataDir, first.port);
  servers.push(second);
  for (let n = 6; n <= 10; n++) await step(`publish ${n}`, publish(second, "user:sdk-1", n), context);
  await step("live on the second server", reach(client, "live"), context);
  await step("events 6-10", until(events, client, 10), context);
  for (let n = 11; n <= 12; n++) await step(`publish ${n}`, publish(second, "user:sdk-1", n), context);
  await step("events 11-12", until(events, client, 12), context);

  expect(events.map((e) => (e.data as { n: number }).n)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  expect(events.map((e) => e.offset)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  client.close();
}, 60_000);

test("failover between two server processes on one data dir", async () => {
  const dataDir = tempDir();
  const portA = freePort();
  const portB = freePort();
  const a = await spawn(dataDir, portA);
  const token = await signToken(JWT_SECRET, { sub: "sdk-2" }, 600);
  const client = new CourierClient({ urls: [a.ws, `ws://127.0.0.1:${portB}/v1/ws`], token });
  const events: CourierEvent[] = [];
  const servers = [a];
  const context = tracer(client, events, () => servers);
  client.subscribe("user:sdk-2", (e) => events.push(e), { since: await origin(a, "user:sdk-2", token) });
  client.connect();
  await step("the first connect", reach(client, "live"), context);
  for (let n = 1; n <= 3; n++) await step(`publish ${n}`, publish(a, "user:sdk-2", n), context);
  await step("events 1-3", until(events, client, 3), context);

  a.kill("SIGKILL"); // a crash: no reconnect hint, the client finds the standby by itself
  await step("the exit of the first server", a.exited, context);
  const b = await spawn(dataDir, portB);
  servers.push(b);
  for (let n = 4; n <= 6; n++) await step(`publish ${n}`, publish(b, "user:sdk-2", n), context);
  await step("live on the standby", reach(client, "live"), context);
  await step("events 4-6", until(events, client, 6), context);
  expect(events.map((e) => e.offset)).toEqual([1, 2, 3, 4, 5, 6]);
  expect(new Set(events.map((e) => e.offset)).size).toBe(6);
  client.close();
}, 60_000);
