/** Core behaviour (PROTOCOL.md §2–§4) against the real server on port 0 with real WebSocket clients. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SignJWT } from "jose";
import { connect, connectWelcomed, upgradeStatus, type TestClient } from "./helpers/client.ts";
import { API_KEY, JWT_SECRET, startServer, type TestServer } from "./helpers/server.ts";
import { CloseCode } from "../src/protocol/codes.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startServer({
    extensions: () => [{ jobOwner: (id) => (id === "job-1" ? "alice" : null) }],
  });
});
afterAll(() => server.stop());

const wsUrl = async (user: string, claims?: Parameters<TestServer["token"]>[1]) => `${server.ws}?token=${await server.token(user, claims)}`;

describe("upgrade refusals", () => {
  test("missing token answers 401 JSON before the upgrade", async () => {
    const res = await upgradeStatus(server.ws);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: "unauthorized" });
  });

  test("garbage token answers 401", async () => {
    expect((await upgradeStatus(`${server.ws}?token=not.a.jwt`)).status).toBe(401);
    expect((await upgradeStatus(server.ws, { authorization: "Bearer garbage" })).status).toBe(401);
  });

  test("expired token answers 401", async () => {
    const expired = await new SignJWT({ sub: "old" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 600)
      .sign(new TextEncoder().encode(JWT_SECRET));
    const res = await upgradeStatus(`${server.ws}?token=${expired}`);
    expect(res.status).toBe(401);
    expect((await res.json()).message).toContain("expired");
  });

  test("token signed with another secret or alg none answers 401", async () => {
    const other = await new SignJWT({ sub: "eve" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(new TextEncoder().encode("another-secret-0123456789abcdef"));
    expect((await upgradeStatus(`${server.ws}?token=${other}`)).status).toBe(401);
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify({ sub: "eve", exp: 9e9 })).toString("base64url")}.`;
    expect((await upgradeStatus(`${server.ws}?token=${none}`)).status).toBe(401);
  });

  test("the per-user limit answers 429 with Retry-After, and frees a slot on close", async () => {
    const url = await wsUrl("limited");
    const clients = await Promise.all([1, 2, 3].map(() => connectWelcomed(url)));
    const res = await upgradeStatus(url);
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBeTruthy();
    expect(await res.json()).toMatchObject({ error: "rate_limited" });
    clients[0]!.close();
    await clients[0]!.closed;
    // The slot is released in the server's close handler; a fresh connection is welcomed.
    const again = await waitUntilWelcomed(url);
    for (const c of [...clients.slice(1), again]) c.close();
  });

  test("a node that is not ready answers 503 with Retry-After", async () => {
    const failing = await startServer({
      engine: (config, dataDir) => {
        const { createEmbeddedEngine } = require("../src/engine/index.ts");
        const engine = createEmbeddedEngine({ ...config.delivery, dataDir, now: Date.now });
        engine.check = () => Promise.reject(new Error("disk gone"));
        return engine;
      },
    });
    try {
      const res = await upgradeStatus(`${failing.ws}?token=${await failing.token("u")}`);
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBeTruthy();
      const ready = await fetch(`${failing.http}/ready`);
      expect(ready.status).toBe(503);
      expect((await ready.json()).checks.store).toMatchObject({ ok: false, error: "disk gone" });
    } finally {
      await failing.stop();
    }
  });
});

/** The slot is freed by the server's close handler, which may run just after the client saw the close. */
async function waitUntilWelcomed(url: string): Promise<TestClient> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await connectWelcomed(url);
    } catch (error) {
      if (attempt >= 20) throw error;
    }
  }
}

describe("frames", () => {
  test("welcome is the first frame", async () => {
    const c = await connect(await wsUrl("alice", { tier: "pro" }));
    const first = await c.next(() => true);
    expect(first).toEqual({ type: "welcome", session: expect.any(String), resumed: false, user: "alice", heartbeat: 15, node: "test-node" });
    c.close();
  });

  test("subscribe, ping and unsubscribe answer with the request id", async () => {
    const c = await connectWelcomed(await wsUrl("alice"));
    expect(await c.request({ type: "subscribe", id: "s1", channel: "public:lobby" })).toEqual({ type: "subscribed", id: "s1", channel: "public:lobby", epoch: expect.any(String), offset: expect.any(Number) });
    const pong = await c.request({ type: "ping", id: 7 });
    expect(pong).toEqual({ type: "pong", id: 7, ts: expect.any(Number) });
    expect(await c.request({ type: "unsubscribe", id: "u1", channel: "public:lobby" })).toEqual({ type: "unsubscribed", id: "u1", channel: "public:lobby" });
    expect(await c.request({ type: "unsubscribe", id: "u2", channel: "public:lobby" })).toMatchObject({ type: "error", id: "u2", code: "not_found" });
    c.close();
  });

  test("after unsubscribe no more events arrive on that channel", async () => {
    const c = await connectWelcomed(await wsUrl("alice"));
    await c.request({ type: "subscribe", channel: "public:quiet" });
    await c.request({ type: "subscribe", channel: "public:marker" });
    await c.request({ type: "unsubscribe", channel: "public:quiet" });
    await server.publish({ channel: "public:quiet", event: "ignored" });
    await server.publish({ channel: "public:marker", event: "marker" });
    await c.next((f) => f.event === "marker");
    expect(c.frames.filter((f) => f.channel === "public:quiet" && f.type === "event")).toEqual([]);
    c.close();
  });

  test.each([
    ["own user channel", "alice", {}, "user:alice", true],
    ["another user's channel", "alice", {}, "user:bob", false],
    ["public channel", "alice", {}, "public:news", true],
    ["job owned by the user", "alice", {}, "job:job-1", true],
    ["job owned by someone else", "bob", {}, "job:job-1", false],
    ["unknown job", "alice", {}, "job:nope", false],
    ["signals of a lower tier", "carol", { tier: "enterprise" }, "signals:pro", true],
    ["signals of the same tier", "carol", { tier: "pro" }, "signals:pro", true],
    ["signals of a higher tier", "dave", { tier: "starter" }, "signals:pro", false],
    ["signals of an unknown tier", "carol", { tier: "enterprise" }, "signals:platinum", false],
    ["channel listed in the token", "erin", { channels: ["team:red"] }, "team:red", true],
    ["unknown kind not listed", "erin", {}, "team:red", false],
  ] as const)("permission: %s", async (_name, user, claims, channel, allowed) => {
    const c = await connectWelcomed(await wsUrl(user, claims as never));
    const answer = await c.request({ type: "subscribe", channel });
    if (allowed) expect(answer).toMatchObject({ type: "subscribed", channel });
    else expect(answer).toMatchObject({ type: "error", code: "forbidden" });
    c.close();
  });

  test("invalid channel names are bad_request", async () => {
    const c = await connectWelcomed(await wsUrl("alice"));
    for (const channel of ["nokind", "Upper:x", "public:a..b", "public:*", "public:" + "x".repeat(129), "public:a\u0000"]) {
      expect(await c.request({ type: "subscribe", channel })).toMatchObject({ type: "error", code: "bad_request" });
    }
    c.close();
  });

  test("a malformed JSON frame gets an error frame and the connection stays", async () => {
    const c = await connectWelcomed(await wsUrl("alice"));
    c.send("{not json");
    expect(await c.next((f) => f.type === "error")).toMatchObject({ code: "bad_request", message: "frame is not valid JSON" });
    expect(await c.request({ type: "ping" })).toMatchObject({ type: "pong" });
    c.close();
  });

  test("an unknown frame type is bad_request and echoes the id", async () => {
    const c = await connectWelcomed(await wsUrl("alice"));
    expect(await c.request({ type: "teleport", id: "x9" })).toMatchObject({ type: "error", id: "x9", code: "bad_request" });
    expect(await c.request({ type: "ping" })).toMatchObject({ type: "pong" });
    c.close();
  });

  test("a binary frame closes 1003", async () => {
    const c = await connectWelcomed(await wsUrl("alice"));
    c.ws.send(new Uint8Array([1, 2, 3]));
    expect((await c.closed).code).toBe(CloseCode.UnsupportedData);
  });

  test("an oversize frame closes 1009", async () => {
    const c = await connectWelcomed(await wsUrl("alice"));
    c.send(JSON.stringify({ type: "ping", pad: "x".repeat(server.config.limits.maxFrameBytes + 10) }));
    expect((await c.closed).code).toBe(CloseCode.MessageTooBig);
  });

  test("too many frames: rate_limited errors, then close 4429", async () => {
    const c = await connectWelcomed(await wsUrl("flooder"));
    const { frameBurst, rateLimitStrikes } = server.config.limits;
    for (let i = 0; i < frameBurst + rateLimitStrikes + 5; i++) c.send({ type: "ping" });
    expect((await c.closed).code).toBe(CloseCode.TooManyFrames);
    expect(c.frames.some((f) => f.type === "error" && f.code === "rate_limited")).toBe(true);
  });

  test("repeated protocol errors close 4400", async () => {
    const c = await connectWelcomed(await wsUrl("sloppy"));
    for (let i = 0; i <= server.config.limits.protocolErrorStrikes; i++) c.send("nope");
    expect((await c.closed).code).toBe(CloseCode.ProtocolErrors);
  });
});

describe("publish and fan-out", () => {
  test("1,000 events arrive in order with consecutive offsets", async () => {
    const c = await connectWelcomed(await wsUrl("alice"));
    const sub = await c.request({ type: "subscribe", channel: "public:ordered" });
    const base = sub.offset as number;
    for (let i = 0; i < 1000; i++) {
      // Half sequential, half concurrent: order is the store's, whatever the arrival pattern.
      const p = server.publish({ channel: "public:ordered", event: "tick", data: { i } });
      if (i % 2 === 0) await p;
    }
    const events = await c.collect((f) => f.type === "event" && f.channel === "public:ordered", 1000);
    expect(events.map((e) => e.offset)).toEqual(Array.from({ length: 1000 }, (_, i) => base + i + 1));
    c.close();
  });

  test("every subscriber receives the same event frame", async () => {
    const clients = await Promise.all(["a1", "a2", "a3"].map(async (u) => connectWelcomed(await wsUrl(u))));
    for (const c of clients) await c.request({ type: "subscribe", channel: "public:fan" });
    const res = await server.publish({ channel: "public:fan", event: "hello", data: { text: "hi" }, critical: true });
    const { offset } = await res.json();
    for (const c of clients) {
      expect(await c.next((f) => f.type === "event")).toEqual({ type: "event", channel: "public:fan", offset, event: "hello", data: { text: "hi" }, critical: true, ts: expect.any(Number) });
      c.close();
    }
  });

  test("publish answers channel, offset and epoch", async () => {
    const res = await server.publish({ channel: "public:answer", event: "x" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ channel: "public:answer", offset: 1, epoch: expect.any(String) });
  });

  test("batch publish answers in order and delivers in order", async () => {
    const c = await connectWelcomed(await wsUrl("alice"));
    await c.request({ type: "subscribe", channel: "public:batch" });
    const items = Array.from({ length: 20 }, (_, i) => ({ channel: i % 2 ? "public:batch" : "public:batch-other", event: "b", data: i }));
    const res = await fetch(`${server.http}/v1/publish/batch`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ items }) });
    expect(res.status).toBe(200);
    const { results } = await res.json();
    expect(results.map((r: any) => r.channel)).toEqual(items.map((i) => i.channel));
    expect(results.filter((r: any) => r.channel === "public:batch").map((r: any) => r.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const events = await c.collect((f) => f.type === "event", 10);
    expect(events.map((e) => e.data)).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
    c.close();
  });

  test("a batch with one invalid item is refused whole, naming the index", async () => {
    const items = [{ channel: "public:allornothing", event: "ok" }, { channel: "public:allornothing", event: "bad name!" }];
    const res = await fetch(`${server.http}/v1/publish/batch`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ items }) });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body).toMatchObject({ error: "bad_request", index: 1 });
    expect(body.message).toContain("item 1");
    const history = await fetch(`${server.http}/v1/history?channel=public:allornothing&token=${await server.token("alice")}`);
    expect((await history.json()).events).toEqual([]);
  });

  test("a batch over the item limit or empty is 400", async () => {
    for (const items of [[], Array.from({ length: 101 }, () => ({ channel: "public:x", event: "e" }))]) {
      const res = await fetch(`${server.http}/v1/publish/batch`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ items }) });
      expect(res.status).toBe(400);
    }
  });

  test("publish with a bad key is 401; without one is 401", async () => {
    expect((await server.publish({ channel: "public:x", event: "e" }, { authorization: "Bearer wrong-key-0123456789" })).status).toBe(401);
    const res = await fetch(`${server.http}/v1/publish`, { method: "POST", body: JSON.stringify({ channel: "public:x", event: "e" }) });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: "unauthorized", message: expect.any(String) });
  });

  test("a bad body is 400 listing the issues", async () => {
    const res = await server.publish({ channel: "nope", critical: "yes" });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error).toBe("bad_request");
    expect(body.issues.map((i: any) => i.path).sort()).toEqual(["channel", "critical", "event"]);
  });

  test("a body that is not JSON is 400 whatever its content type", async () => {
    for (const type of ["application/json", "text/plain"]) {
      const res = await fetch(`${server.http}/v1/publish`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}`, "content-type": type }, body: "{oops" });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: "bad_request" });
    }
  });

  test("an oversize body is 413", async () => {
    const res = await server.publish({ channel: "public:big", event: "e", data: "x".repeat(server.config.limits.maxPublishBodyBytes) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "limit_exceeded" });
  });

  test("unknown routes are JSON 404s", async () => {
    const res = await fetch(`${server.http}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "not_found" });
  });
});

describe("health and readiness", () => {
  test("/health and /ready", async () => {
    expect(await (await fetch(`${server.http}/health`)).json()).toEqual({ status: "ok" });
    const ready = await fetch(`${server.http}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { store: { ok: true, ms: expect.any(Number), required: true } } });
  });

  test("/ws/stats needs the admin key", async () => {
    expect((await fetch(`${server.http}/ws/stats`)).status).toBe(401);
    const stats = await server.stats();
    expect(stats).toMatchObject({ node: "test-node", connections: expect.any(Number), byTier: { starter: expect.any(Number), pro: expect.any(Number), enterprise: expect.any(Number) } });
  });

  test("/dev/token mints a usable token in test", async () => {
    const { token } = await (await fetch(`${server.http}/dev/token?user=zoe&tier=pro`)).json();
    const c = await connect(`${server.ws}?token=${token}`);
    expect(await c.next((f) => f.type === "welcome")).toMatchObject({ user: "zoe" });
    c.close();
  });
});
