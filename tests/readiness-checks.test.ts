/**
 * Readiness checks and error mapping of issue #14 item 4, on the real server with real clients:
 * the JWKS check (optional: a failure is `degraded`, still 200), the agent backend check
 * (optional: its breaker open is `degraded`), every check listed with `ok` and `ms`; and a
 * subscribe on a store that refuses answers an `unavailable` error frame, never `internal`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { createEmbeddedEngine } from "../src/engine/index.ts";
import { StoreUnavailableError, type Engine } from "../src/engine/types.ts";
import { ErrorCode } from "../src/protocol/codes.ts";
import { connectWelcomed } from "./helpers/client.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

interface Ready {
  status: string;
  checks: Record<string, { ok: boolean; ms: number; required: boolean; error?: string }>;
}
async function ready(server: TestServer): Promise<{ http: number; body: Ready }> {
  const res = await fetch(`${server.http}/ready`);
  return { http: res.status, body: (await res.json()) as Ready };
}

describe("JWKS check (optional)", () => {
  const keys = generateKeyPair("RS256");
  let jwksUp = false;
  let jwks: ReturnType<typeof Bun.serve>;
  let server: TestServer;
  beforeAll(async () => {
    const jwk = { ...(await exportJWK((await keys).publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    jwks = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => (jwksUp ? Response.json({ keys: [jwk] }) : new Response("down", { status: 500 })) });
    server = await startServer({ config: { auth: { jwksUrl: `http://127.0.0.1:${jwks.port}/jwks.json` } } });
  });
  afterAll(async () => {
    await server.stop();
    jwks.stop(true);
  });

  test("the key set unreachable: jwks not ok, the node degraded but 200 (it serves); reachable again: ready, RS256 tokens connect", async () => {
    const down = await ready(server);
    expect(down.http).toBe(200);
    expect(down.body.status).toBe("degraded");
    expect(down.body.checks.jwks).toMatchObject({ ok: false, required: false, ms: expect.any(Number) });
    expect(down.body.checks.store).toMatchObject({ ok: true, required: true });

    jwksUp = true;
    const up = await ready(server);
    expect({ http: up.http, status: up.body.status, jwks: up.body.checks.jwks?.ok }).toEqual({ http: 200, status: "ready", jwks: true });
    const token = await new SignJWT({ sub: "rs-user" })
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
      .sign((await keys).privateKey);
    const c = await connectWelcomed(`${server.ws}?token=${token}`);
    expect(c.welcome.user).toBe("rs-user");
    c.close();
  });
});

describe("agent backend check (optional)", () => {
  let backend: ReturnType<typeof Bun.serve>;
  let server: TestServer;
  beforeAll(async () => {
    backend = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("broken", { status: 500 }) });
    server = await startServer({
      config: { agent: { url: `http://127.0.0.1:${backend.port}/rpc`, rpcTimeoutMs: 1_000 }, resilience: { breakerFailures: 2, breakerWindowMs: 60_000, breakerRecoveryMs: 60_000 } },
    });
  });
  afterAll(async () => {
    await server.stop();
    backend.stop(true);
  });

  test("listed and ok while its breaker is closed; once failing calls open it, not ok and degraded, still 200", async () => {
    const before = await ready(server);
    expect({ http: before.http, status: before.body.status, agent: before.body.checks.agent }).toEqual({
      http: 200,
      status: "ready",
      agent: { ok: true, required: false, ms: expect.any(Number) },
    });
    const c = await connectWelcomed(`${server.ws}?token=${await server.token("rpc-user")}`);
    for (let i = 0; i < server.config.resilience.breakerFailures; i++) {
      expect(await c.request({ type: "rpc", method: "agent.run", data: null })).toMatchObject({ type: "error", code: ErrorCode.Unavailable });
    }
    const after = await ready(server);
    expect(after.http).toBe(200);
    expect(after.body.status).toBe("degraded");
    expect(after.body.checks.agent).toMatchObject({ ok: false, required: false, error: expect.stringContaining("agent breaker is open") });
    c.close();
  });
});

describe("a store that refuses reads", () => {
  const REFUSING = "public:ro-";
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({
      // The embedded engine, except that reads of `public:ro-*` fail as a read-only or vanished store does.
      engine: (config, dataDir) => {
        const engine = createEmbeddedEngine({ dataDir, ...config.delivery, now: Date.now });
        const refuse = <A extends unknown[], R>(fn: (channel: string, ...rest: A) => Promise<R>) =>
          (channel: string, ...rest: A): Promise<R> => (channel.startsWith(REFUSING) ? Promise.reject(new StoreUnavailableError("attempt to write a readonly database")) : fn(channel, ...rest));
        return new Proxy(engine, {
          get(target, prop) {
            const value = Reflect.get(target, prop, target);
            if (typeof value !== "function") return value;
            const bound = value.bind(target);
            return prop === "history" || prop === "position" || prop === "watch" ? refuse(bound) : bound;
          },
        }) as Engine;
      },
    });
  });
  afterAll(() => server.stop());

  test("subscribe, with and without since, answers an unavailable error frame with its id; the connection stays and other channels work", async () => {
    const c = await connectWelcomed(`${server.ws}?token=${await server.token("reader")}`);
    const plain = await c.request({ type: "subscribe", channel: `${REFUSING}a` });
    expect(plain).toEqual({ type: "error", id: plain.id, code: ErrorCode.Unavailable, message: "history is unavailable, retry" });
    const since = await c.request({ type: "subscribe", channel: `${REFUSING}b`, since: { offset: 3, epoch: "e" } });
    expect(since).toMatchObject({ type: "error", code: ErrorCode.Unavailable });
    // Not logged as an internal failure: it is an outage, reported as one.
    expect(server.logs.filter((line) => line.includes('"join failed"'))).toEqual([]);
    // The refused subscription left nothing behind: the same channel can be tried again, and others work.
    expect(await c.request({ type: "subscribe", channel: `${REFUSING}a` })).toMatchObject({ code: ErrorCode.Unavailable });
    expect(await c.request({ type: "subscribe", channel: "public:fine" })).toMatchObject({ type: "subscribed", channel: "public:fine" });
    c.close();
  });
});
