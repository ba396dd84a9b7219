/**
 * `@courier/server` against a real Courier: the routes that exist, idempotent retries as the
 * server sees them, and the packed tarball installed into a scratch project and run by Bun and Node.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CourierApiError, CourierServer } from "../packages/server/src/index.ts";
import { API_KEY, startServer, type TestServer } from "./helpers/server.ts";
import { connectWelcomed } from "./helpers/client.ts";
import { CloseCode } from "../src/protocol/codes.ts";
import { DisconnectAnswerSchema, PresenceAnswerSchema, UnsubscribeAnswerSchema } from "../src/protocol/http-bodies.ts";
import { TSC, packAndInstall, run, writeScratchTsconfig } from "./helpers/pack-install.ts";

let server: TestServer;
let courier: CourierServer;

beforeAll(async () => {
  server = await startServer();
  courier = new CourierServer({ url: server.http, apiKey: API_KEY, deadlineMs: 5_000 });
});
afterAll(() => server.stop());

describe("@courier/server against Courier", () => {
  test("publish, then history as the user reads it back", async () => {
    const published = await courier.publish({ channel: "user:alice", event: "invoice_paid", data: { id: 7 }, critical: true });
    expect(published).toMatchObject({ channel: "user:alice", offset: 1 });
    const page = await courier.history({ channel: "user:alice", token: await server.token("alice") });
    expect(page).toMatchObject({ channel: "user:alice", epoch: published.epoch, offset: 1, recovered: true });
    expect(page.events.map((e) => [e.offset, e.event, e.data])).toEqual([[1, "invoice_paid", { id: 7 }]]);
  });

  test("a retried call with the same idempotency key is stored once", async () => {
    const first = await courier.publish({ channel: "user:bob", event: "charged" }, { idempotencyKey: "charge-1" });
    const again = await courier.publish({ channel: "user:bob", event: "charged" }, { idempotencyKey: "charge-1" });
    expect(again).toEqual(first);
    const page = await courier.history({ channel: "user:bob", token: await server.token("bob") });
    expect(page.events).toHaveLength(1);
  });

  test("an answer lost after the store (a proxy's 502) is retried with the same key: stored once", async () => {
    const keys: (string | null)[] = [];
    // Forwards every request; the first answer is swallowed and replaced by a bare 502.
    using proxy = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async (req) => {
        keys.push(req.headers.get("idempotency-key"));
        const url = new URL(req.url);
        const answer = await fetch(server.http + url.pathname, { method: req.method, headers: req.headers, body: await req.text() });
        return keys.length === 1 ? new Response("bad gateway", { status: 502, headers: { "retry-after": "0" } }) : answer;
      },
    });
    const viaProxy = new CourierServer({ url: `http://127.0.0.1:${proxy.port}`, apiKey: API_KEY });
    const published = await viaProxy.publish({ channel: "user:dave", event: "shipped", critical: true });
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]!);
    const page = await courier.history({ channel: "user:dave", token: await server.token("dave") });
    expect(page.events.map((e) => e.offset)).toEqual([published.offset]);
  });

  test("publishBatch answers in order, and its per-item keys make a replayed batch a no-op", async () => {
    const items = [{ channel: "user:carol", event: "a", idempotencyKey: "b-1" }, { channel: "user:carol", event: "b", idempotencyKey: "b-2" }];
    const results = await courier.publishBatch(items);
    expect(results.map((r) => r.offset)).toEqual([1, 2]);
    expect(await courier.publishBatch(items)).toEqual(results);
  });

  test("createJob and signal", async () => {
    const job = await courier.createJob({ owner: "alice" });
    expect(job.channel).toBe(`job:${job.job}`);
    const signal = await courier.signal({ tier: "pro", event: "price_alert", data: { symbol: "ACME" } });
    expect(signal).toMatchObject({ channel: "signals:pro", offset: 1 });
  });

  test("presence, unsubscribe and disconnect against the real routes, answers exactly as /openapi.json describes", async () => {
    const channel = "public:sdk-room";
    const token = await server.token("sdk-erin");
    const [c1, c2] = [await connectWelcomed(`${server.ws}?token=${token}`), await connectWelcomed(`${server.ws}?token=${token}`)];
    for (const c of [c1, c2]) await c.request({ type: "subscribe", channel });
    const presence = await courier.presence(channel);
    expect(PresenceAnswerSchema.strict().parse(presence)).toEqual({ channel, subscribers: 2, users: [{ user: "sdk-erin", connections: 2 }] });

    const unsubscribed = await courier.unsubscribe({ user: "sdk-erin", channel });
    expect(UnsubscribeAnswerSchema.strict().parse(unsubscribed)).toEqual({ unsubscribed: 2 });
    for (const c of [c1, c2]) expect(await c.next((f) => f.type === "unsubscribed")).toEqual({ type: "unsubscribed", channel, reason: "server" });
    expect(await courier.presence(channel)).toEqual({ channel, subscribers: 0, users: [] });

    const closed = await courier.disconnect({ user: "sdk-erin", reason: "bye" });
    expect(DisconnectAnswerSchema.strict().parse(closed)).toEqual({ closed: 2 });
    for (const c of [c1, c2]) expect((await c.closed).code).toBe(CloseCode.Disconnected);
  });

  test("a retried disconnect with the same idempotency key answers the first answer and acts once", async () => {
    const token = await server.token("sdk-frank");
    const first = await connectWelcomed(`${server.ws}?token=${token}`);
    expect(await courier.disconnect({ user: "sdk-frank" }, { idempotencyKey: "kick-1" })).toEqual({ closed: 1 });
    await first.closed;
    const second = await connectWelcomed(`${server.ws}?token=${token}`);
    expect(await courier.disconnect({ user: "sdk-frank" }, { idempotencyKey: "kick-1" })).toEqual({ closed: 1 });
    expect(await second.request({ type: "ping" })).toMatchObject({ type: "pong" });
    expect(await courier.disconnect({ user: "sdk-frank" }, { idempotencyKey: "kick-2" })).toEqual({ closed: 1 });
    expect((await second.closed).code).toBe(CloseCode.Disconnected);
  });

  test("a refusal is a typed CourierApiError carrying Courier's code", async () => {
    const error = await courier.publish({ channel: "nope", event: "x" }).catch((e) => e);
    expect(error).toBeInstanceOf(CourierApiError);
    expect({ status: error.status, code: error.code, outcomeUnknown: error.outcomeUnknown }).toEqual({ status: 400, code: "bad_request", outcomeUnknown: false });
    const unauthorized = await new CourierServer({ url: server.http, apiKey: "wrong" }).publish({ channel: "user:a", event: "x" }).catch((e) => e);
    expect({ status: unauthorized.status, code: unauthorized.code }).toEqual({ status: 401, code: "unauthorized" });
  });
});

const SCRATCH = `import { CourierApiError, CourierServer, type Published } from "@courier/server";

declare const process: { env: Record<string, string | undefined> };

const courier = new CourierServer({ url: process.env.COURIER_URL!, apiKey: process.env.COURIER_API_KEY! });
const published: Published = await courier.publish({ channel: "public:scratch", event: "hello", data: { runtime: process.env.RUNTIME } });
const refused: unknown = await courier.publish({ channel: "bad", event: "x" }).catch((error: unknown) => error);
if (!(refused instanceof CourierApiError) || refused.status !== 400) throw new Error("expected a 400 CourierApiError");
console.log(JSON.stringify(published));
`;

describe("@courier/server as a package", () => {
  test("the tarball installs into a scratch project, type-checks, and publishes from Bun and Node", async () => {
    using scratch = await packAndInstall("packages/server");
    writeFileSync(join(scratch.dir, "main.ts"), SCRATCH);
    writeScratchTsconfig(scratch.dir, ["main.ts"]);
    const typecheck = await run([TSC, "--noEmit", "-p", "tsconfig.json"], { cwd: scratch.dir });
    expect(typecheck.stdout + typecheck.stderr).toBe("");
    expect(typecheck.exitCode).toBe(0);

    // Node 20 runs plain JS: strip the types (no bundling, so the import resolves from node_modules).
    writeFileSync(join(scratch.dir, "main.js"), new Bun.Transpiler({ loader: "ts" }).transformSync(SCRATCH));
    const env = { COURIER_URL: server.http, COURIER_API_KEY: API_KEY };
    const bun = await run(["bun", "main.ts"], { cwd: scratch.dir, env: { ...env, RUNTIME: "bun" } });
    expect(bun.stderr).toBe("");
    const node = await run(["node", "main.js"], { cwd: scratch.dir, env: { ...env, RUNTIME: "node" } });
    expect(node.stderr).toBe("");
    expect([bun.exitCode, node.exitCode]).toEqual([0, 0]);

    const page = await courier.history({ channel: "public:scratch", token: await server.token("reader") });
    expect(page.events.map((e) => e.data)).toEqual([{ runtime: "bun" }, { runtime: "node" }]);
    expect(JSON.parse(node.stdout)).toEqual({ channel: "public:scratch", offset: 2, epoch: page.epoch });
  }, 60_000);
});
