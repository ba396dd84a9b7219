/**
 * The control API (PROTOCOL §2 v1.1) on one node, with real WebSocket clients: `/v1/disconnect`
 * closes 4403, `/v1/unsubscribe` sends `unsubscribed` with `reason:"server"` (and a resume does
 * not restore the channel), `/v1/presence` counts as subscriptions change. Two nodes on Redis:
 * tests/control-cluster.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CloseCode } from "../src/protocol/codes.ts";
import { connectWelcomed, type TestClient } from "./helpers/client.ts";
import { API_KEY, startServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.stop());

const auth = { authorization: `Bearer ${API_KEY}` };
const post = (path: string, body: unknown, headers: Record<string, string> = auth) =>
  fetch(`${server.http}${path}`, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
const presence = async (channel: string) => (await fetch(`${server.http}/v1/presence?channel=${encodeURIComponent(channel)}`, { headers: auth })).json();
const open = async (user: string, session = "") => connectWelcomed(`${server.ws}?token=${await server.token(user)}${session && `&session=${session}`}`);
const subscribe = (c: TestClient, channel: string) => c.request({ type: "subscribe", channel });

/**
 * Re-reads presence until it matches: a client's own close completes before the server's close
 * handler has necessarily run, and nothing else tells the test when it has. Bounded.
 */
async function presenceBecomes(channel: string, expected: unknown, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const body = await presence(channel);
    if (Bun.deepEquals(body, expected)) return;
    if (Date.now() > deadline) expect(body).toEqual(expected);
    await Bun.sleep(10);
  }
}

describe("POST /v1/disconnect", () => {
  test("closes every connection of the user with 4403 and the reason, counts them, and leaves others open", async () => {
    const [a1, a2, other] = [await open("d-alice"), await open("d-alice"), await open("d-bob")];
    const res = await post("/v1/disconnect", { user: "d-alice", reason: "account suspended" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ closed: 2 });
    expect(await a1.closed).toEqual({ code: CloseCode.Disconnected, reason: "account suspended" });
    expect(await a2.closed).toEqual({ code: CloseCode.Disconnected, reason: "account suspended" });
    expect(await other.request({ type: "ping" })).toMatchObject({ type: "pong" });
    other.close();
  });

  test("a user with no connection closes nothing; the default reason is `disconnected`", async () => {
    expect(await (await post("/v1/disconnect", { user: "d-nobody" })).json()).toEqual({ closed: 0 });
    const c = await open("d-carol");
    expect(await (await post("/v1/disconnect", { user: "d-carol" })).json()).toEqual({ closed: 1 });
    expect(await c.closed).toEqual({ code: CloseCode.Disconnected, reason: "disconnected" });
  });
});

describe("POST /v1/unsubscribe", () => {
  test("every connection of the user leaves the channel and gets unsubscribed reason server; others stay", async () => {
    const channel = "public:u-news";
    const [u1, u2, other] = [await open("u-alice"), await open("u-alice"), await open("u-bob")];
    for (const c of [u1, u2, other]) await subscribe(c, channel);
    await subscribe(u2, "user:u-alice");
    const res = await post("/v1/unsubscribe", { user: "u-alice", channel });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ unsubscribed: 2 });
    for (const c of [u1, u2]) expect(await c.next((f) => f.type === "unsubscribed")).toEqual({ type: "unsubscribed", channel, reason: "server" });

    await server.publish({ channel, event: "after" });
    await server.publish({ channel: "user:u-alice", event: "mine" });
    await other.next((f) => f.type === "event" && f.event === "after");
    await u2.next((f) => f.type === "event" && f.event === "mine");
    // Ordered per connection: had u2 still been on the channel, `after` would have come before `mine`.
    expect(u2.frames.filter((f) => f.type === "event").map((f) => f.event)).toEqual(["mine"]);
    expect(await u1.request({ type: "ping" })).toMatchObject({ type: "pong" });
    expect(u1.frames.filter((f) => f.type === "event")).toEqual([]);
    // Not subscribed any more: a client unsubscribe is answered not_found.
    expect(await u1.request({ type: "unsubscribe", channel })).toMatchObject({ type: "error", code: "not_found" });
    for (const c of [u1, u2, other]) c.close();
  });

  test("a resumed session does not restore a channel the server took away", async () => {
    const first = await open("u-dave");
    await subscribe(first, "public:u-gone");
    await subscribe(first, "user:u-dave");
    expect(await (await post("/v1/unsubscribe", { user: "u-dave", channel: "public:u-gone" })).json()).toEqual({ unsubscribed: 1 });
    await first.next((f) => f.type === "unsubscribed");
    first.close();
    await first.closed;
    const again = await open("u-dave", first.welcome.session);
    expect(again.welcome.resumed).toBe(true);
    await again.next((f) => f.type === "subscribed" && f.channel === "user:u-dave");
    expect(await again.request({ type: "ping" })).toMatchObject({ type: "pong" });
    expect(again.frames.filter((f) => f.type === "subscribed").map((f) => f.channel)).toEqual(["user:u-dave"]);
    again.close();
  });

  test("a user not on the channel: 0", async () => {
    expect(await (await post("/v1/unsubscribe", { user: "u-nobody", channel: "public:u-news" })).json()).toEqual({ unsubscribed: 0 });
  });
});

describe("GET /v1/presence", () => {
  test("counts subscribers and lists users with their connections, as subscriptions change", async () => {
    const channel = "public:p-room";
    expect(await presence(channel)).toEqual({ channel, subscribers: 0, users: [] });
    const [a1, a2, b] = [await open("p-alice"), await open("p-alice"), await open("p-bob")];
    for (const c of [a1, a2, b]) await subscribe(c, channel);
    await subscribe(b, "user:p-bob");
    expect(await presence(channel)).toEqual({
      channel,
      subscribers: 3,
      users: [
        { user: "p-alice", connections: 2 },
        { user: "p-bob", connections: 1 },
      ],
    });
    expect(await presence("user:p-bob")).toEqual({ channel: "user:p-bob", subscribers: 1, users: [{ user: "p-bob", connections: 1 }] });
    await a1.request({ type: "unsubscribe", channel });
    expect(await presence(channel)).toEqual({ channel, subscribers: 2, users: [{ user: "p-alice", connections: 1 }, { user: "p-bob", connections: 1 }] });
    await post("/v1/unsubscribe", { user: "p-bob", channel });
    expect(await presence(channel)).toEqual({ channel, subscribers: 1, users: [{ user: "p-alice", connections: 1 }] });
    a2.close();
    await presenceBecomes(channel, { channel, subscribers: 0, users: [] });
    b.close();
    await presenceBecomes("user:p-bob", { channel: "user:p-bob", subscribers: 0, users: [] });
    a1.close();
  });
});

describe("validation and auth", () => {
  test.each([
    ["/v1/disconnect", { reason: "x" }, "user"],
    ["/v1/disconnect", { user: "a b" }, "user"],
    ["/v1/disconnect", { user: "ok", reason: "r".repeat(124) }, "reason"],
    ["/v1/unsubscribe", { user: "ok" }, "channel"],
    ["/v1/unsubscribe", { user: "ok", channel: "nochannel" }, "channel"],
  ])("%s with %j is 400 naming %s", async (path, body, field) => {
    const res = await post(path, body);
    expect(res.status).toBe(400);
    const answer = await res.json();
    expect(answer.error).toBe("bad_request");
    expect(answer.issues.map((i: { path: string }) => i.path)).toContain(field);
  });

  test("not JSON is 400; no key is 401; a wrong method is 405; presence without a channel is 400", async () => {
    expect((await post("/v1/disconnect", "{not json")).status).toBe(400);
    expect((await post("/v1/disconnect", { user: "x" }, {})).status).toBe(401);
    expect((await post("/v1/unsubscribe", { user: "x", channel: "public:x" }, { authorization: "Bearer wrong-key-0123456789" })).status).toBe(401);
    expect((await fetch(`${server.http}/v1/presence?channel=public:x`)).status).toBe(401);
    const wrong = await fetch(`${server.http}/v1/disconnect`, { headers: auth });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toContain("POST");
    const missing = await fetch(`${server.http}/v1/presence`, { headers: auth });
    expect(missing.status).toBe(400);
    expect((await missing.json()).issues[0].path).toBe("channel");
    expect((await fetch(`${server.http}/v1/presence?channel=bad`, { headers: auth })).status).toBe(400);
  });
});
