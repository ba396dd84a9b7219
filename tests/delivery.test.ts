/** Delivery guarantees (PROTOCOL.md §5–§6) through the real server and real clients. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, connectWelcomed, type TestClient } from "./helpers/client.ts";
import { rawConnect } from "./helpers/raw-client.ts";
import { API_KEY, startServer, type TestServer } from "./helpers/server.ts";
import { FakeScheduler } from "./helpers/fake-scheduler.ts";
import { SWEEP_MS } from "../src/server/housekeeping.ts";
import { CloseCode } from "../src/protocol/codes.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ config: { delivery: { historySize: 5, confirmTimeoutMs: 200, probeTimeoutMs: 300 } } });
});
afterAll(() => server.stop());

const url = async (user: string, extra = "") => `${server.ws}?token=${await server.token(user)}${extra}`;
const publishMany = async (channel: string, n: number, body: (i: number) => Record<string, unknown> = () => ({})) => {
  const offsets: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await server.publish({ channel, event: "e", data: { i }, ...body(i) });
    expect(res.status).toBe(200);
    offsets.push((await res.json()).offset);
  }
  return offsets;
};
/** Everything sent before the pong has arrived: frames on one connection are ordered. */
const settle = (c: TestClient) => c.request({ type: "ping" });
const eventsOf = (c: TestClient, channel: string) => c.frames.filter((f) => f.type === "event" && f.channel === channel);

describe("resume by since", () => {
  test("within history: recovered:true and exactly the missed events", async () => {
    const first = await connectWelcomed(await url("r1"));
    const sub = await first.request({ type: "subscribe", channel: "user:r1" });
    await publishMany("user:r1", 3);
    const seen = await first.collect((f) => f.type === "event", 3);
    first.close();
    await publishMany("user:r1", 2);
    const again = await connectWelcomed(await url("r1"));
    const answer = await again.request({ type: "subscribe", channel: "user:r1", since: { offset: seen.at(-1)!.offset, epoch: sub.epoch } });
    expect(answer).toMatchObject({ type: "subscribed", recovered: true, offset: 5, epoch: sub.epoch });
    expect(answer.reason).toBeUndefined();
    await settle(again);
    expect(eventsOf(again, "user:r1").map((e) => e.offset)).toEqual([4, 5]);
    again.close();
  });

  test("beyond history: recovered:false, history_trimmed, every critical event still replayed", async () => {
    const channel = "user:r2";
    const offsets = await publishMany(channel, 20, (i) => ({ critical: i % 4 === 0 }));
    await server.engine.trim(Date.now());
    const c = await connectWelcomed(await url("r2"));
    const { epoch } = await (await fetch(`${server.http}/v1/history?channel=${channel}&token=${await server.token("r2")}&limit=1`)).json();
    const answer = await c.request({ type: "subscribe", channel, since: { offset: 1, epoch } });
    expect(answer).toMatchObject({ recovered: false, reason: "history_trimmed", offset: 20 });
    await settle(c);
    const replayed = eventsOf(c, channel).map((e) => e.offset);
    const critical = offsets.filter((_, i) => i % 4 === 0 && offsets[i]! > 1);
    for (const o of critical) expect(replayed).toContain(o);
    expect(replayed.slice(-5)).toEqual([16, 17, 18, 19, 20]);
    expect(replayed).toEqual([...replayed].sort((a, b) => a - b));
    c.close();
  });

  test("another epoch: recovered:false, epoch_changed, nothing replayed", async () => {
    await publishMany("user:r3", 2);
    const c = await connectWelcomed(await url("r3"));
    expect(await c.request({ type: "subscribe", channel: "user:r3", since: { offset: 1, epoch: "not-this-one" } })).toMatchObject({ recovered: false, reason: "epoch_changed", offset: 2 });
    await settle(c);
    expect(eventsOf(c, "user:r3")).toEqual([]);
    c.close();
  });

  test("an offset beyond the top: recovered:false, offset_ahead, nothing replayed", async () => {
    await publishMany("user:r4", 2);
    const c = await connectWelcomed(await url("r4"));
    const { epoch } = await c.request({ type: "subscribe", channel: "user:r4" });
    await c.request({ type: "unsubscribe", channel: "user:r4" });
    expect(await c.request({ type: "subscribe", channel: "user:r4", since: { offset: 99, epoch } })).toMatchObject({ recovered: false, reason: "offset_ahead" });
    await settle(c);
    expect(eventsOf(c, "user:r4")).toEqual([]);
    c.close();
  });

  test("live events keep flowing after a replay, with no gap and no duplicate", async () => {
    const channel = "public:replay-then-live";
    await publishMany(channel, 3);
    const c = await connectWelcomed(await url("r5"));
    const pending = Promise.all(Array.from({ length: 50 }, (_, i) => server.publish({ channel, event: "live", data: i })));
    const { epoch } = await (await fetch(`${server.http}/v1/history?channel=${channel}&token=${await server.token("r5")}&limit=1`)).json();
    await c.request({ type: "subscribe", channel, since: { offset: 0, epoch } });
    await pending;
    const events = await c.collect((f) => f.type === "event" && f.channel === channel, 53);
    expect(events.map((e) => e.offset)).toEqual(Array.from({ length: 53 }, (_, i) => i + 1));
    c.close();
  });
});

describe("history route", () => {
  test("polling fallback returns stored frames and recovery flags", async () => {
    await publishMany("user:h1", 3);
    const token = await server.token("h1");
    const page = await (await fetch(`${server.http}/v1/history?channel=user:h1&since=1`, { headers: { authorization: `Bearer ${token}` } })).json();
    expect(page).toMatchObject({ channel: "user:h1", offset: 3, recovered: true });
    expect(page.events.map((e: any) => e.offset)).toEqual([2, 3]);
    expect(page.events[0]).toEqual({ type: "event", channel: "user:h1", offset: 2, event: "e", data: { i: 1 }, ts: expect.any(Number) });
    expect((await fetch(`${server.http}/v1/history?channel=user:h1&since=1&epoch=zzz&token=${token}`).then((r) => r.json())).events).toEqual([]);
    expect((await fetch(`${server.http}/v1/history?channel=user:someone-else&token=${token}`)).status).toBe(403);
    expect((await fetch(`${server.http}/v1/history?channel=user:h1`)).status).toBe(401);
    expect((await fetch(`${server.http}/v1/history?channel=bad&token=${token}`)).status).toBe(400);
  });
});

describe("coalescing", () => {
  test("replay sends only the latest per key, and every critical stage", async () => {
    const channel = "public:job-like";
    await server.publish({ channel, event: "stage", data: "parse", critical: true });
    for (let p = 10; p <= 50; p += 10) await server.publish({ channel, event: "progress", data: p, coalesce: "progress" });
    await server.publish({ channel, event: "stage", data: "analyse", critical: true });
    for (let p = 60; p <= 90; p += 10) await server.publish({ channel, event: "progress", data: p, coalesce: "progress" });
    const c = await connectWelcomed(await url("co"));
    const { epoch } = await (await fetch(`${server.http}/v1/history?channel=${channel}&token=${await server.token("co")}&limit=1`)).json();
    expect(await c.request({ type: "subscribe", channel, since: { offset: 0, epoch } })).toMatchObject({ recovered: true });
    await settle(c);
    expect(eventsOf(c, channel).map((e) => [e.event, e.data])).toEqual([["stage", "parse"], ["stage", "analyse"], ["progress", 90]]);
    c.close();
  });
});

describe("priority buffer", () => {
  test("memory overflow drops non-critical first and keeps every critical event in history", async () => {
    const small = await startServer({ config: { delivery: { memoryCapBytes: 8 * 1024, recentPerChannel: 1000 } } });
    try {
      const channel = "public:flood";
      for (let i = 0; i < 200; i++) {
        await small.publish({ channel, event: "e", data: { pad: "x".repeat(100), i }, critical: i % 10 === 0 });
      }
      const stats = await small.stats();
      expect(stats.buffer.overflows).toBeGreaterThan(0);
      expect(stats.buffer.nonCriticalDropped).toBeGreaterThan(0);
      const page = await (await fetch(`${small.http}/v1/history?channel=${channel}&limit=1000&token=${await small.token("x")}`)).json();
      const critical = page.events.filter((e: any) => e.critical).map((e: any) => e.data.i);
      expect(critical).toEqual(Array.from({ length: 20 }, (_, k) => k * 10));
    } finally {
      await small.stop();
    }
  });
});

describe("sessions", () => {
  test("resume hit: subscriptions restored, replay after the last ack", async () => {
    const first = await connectWelcomed(await url("s1"));
    await first.request({ type: "subscribe", channel: "user:s1" });
    await first.request({ type: "subscribe", channel: "public:s1-news" });
    await publishMany("user:s1", 3);
    await publishMany("public:s1-news", 2);
    await first.collect((f) => f.type === "event", 5);
    first.send({ type: "ack", channel: "user:s1", offset: 2 });
    await settle(first);
    first.close();
    await first.closed;
    await publishMany("user:s1", 1);
    const again = await connectResumed(await url("s1", `&session=${first.welcome.session}`));
    expect(again.welcome).toMatchObject({ resumed: true, session: first.welcome.session });
    const subscribed = await again.collect((f) => f.type === "subscribed", 2);
    expect(subscribed.map((f) => f.channel).sort()).toEqual(["public:s1-news", "user:s1"]);
    await settle(again);
    expect(eventsOf(again, "user:s1").map((e) => e.offset)).toEqual([3, 4]);
    // Never acknowledged: every retained event since it subscribed.
    expect(eventsOf(again, "public:s1-news").map((e) => e.offset)).toEqual([1, 2]);
    const stats = await server.stats();
    expect(stats.resumes.hits).toBeGreaterThanOrEqual(1);
    again.close();
  });

  test("resume miss: unknown id or another user's session answers resumed:false and reveals nothing", async () => {
    const owner = await connectWelcomed(await url("s2"));
    await owner.request({ type: "subscribe", channel: "user:s2" });
    const before = (await server.stats()).resumes.misses;
    const stranger = await connectWelcomed(await url("s3", `&session=${owner.welcome.session}`));
    expect(stranger.welcome).toMatchObject({ resumed: false });
    expect(stranger.welcome.session).not.toBe(owner.welcome.session);
    await settle(stranger);
    expect(stranger.frames.filter((f) => f.type === "subscribed")).toEqual([]);
    const unknown = await connectWelcomed(await url("s2", "&session=00000000-0000-0000-0000-000000000000"));
    expect(unknown.welcome.resumed).toBe(false);
    expect((await server.stats()).resumes.misses).toBe(before + 2);
    for (const c of [owner, stranger, unknown]) c.close();
  });

  test("resume re-checks permissions: a channel the new token no longer grants is not restored", async () => {
    const first = await connectWelcomed(`${server.ws}?token=${await server.token("s5", { channels: ["team:red"] })}`);
    await first.request({ type: "subscribe", channel: "team:red" });
    await first.request({ type: "subscribe", channel: "user:s5" });
    first.close();
    await first.closed;
    const again = await connectWelcomed(`${server.ws}?token=${await server.token("s5")}&session=${first.welcome.session}`);
    expect(again.welcome.resumed).toBe(true);
    expect(await again.next((f) => f.type === "error")).toMatchObject({ code: "forbidden", message: "not allowed to join team:red" });
    await again.next((f) => f.type === "subscribed" && f.channel === "user:s5");
    await settle(again);
    expect(again.frames.filter((f) => f.type === "subscribed").map((f) => f.channel)).toEqual(["user:s5"]);
    again.close();
  });

  test("a resumed session takes over its still-open connection (closed 1000)", async () => {
    const first = await connectWelcomed(await url("s4"));
    await first.request({ type: "subscribe", channel: "user:s4" });
    const second = await connectResumed(await url("s4", `&session=${first.welcome.session}`));
    expect(second.welcome.resumed).toBe(true);
    expect((await first.closed).code).toBe(CloseCode.Normal);
    await second.next((f) => f.type === "subscribed" && f.channel === "user:s4");
    second.close();
  });
});

async function connectResumed(u: string) {
  return connectWelcomed(u);
}

describe("idempotency", () => {
  test("a retried publish with the same key answers the first offset and publishes once", async () => {
    const c = await connectWelcomed(await url("i1"));
    await c.request({ type: "subscribe", channel: "user:i1" });
    const first = await (await server.publish({ channel: "user:i1", event: "pay" }, { "idempotency-key": "order-42" })).json();
    const retry = await (await server.publish({ channel: "user:i1", event: "pay" }, { "idempotency-key": "order-42" })).json();
    expect(retry).toEqual(first);
    await server.publish({ channel: "user:i1", event: "marker" });
    await c.next((f) => f.event === "marker");
    expect(eventsOf(c, "user:i1").map((e) => e.event)).toEqual(["pay", "marker"]);
    c.close();
  });

  test("batch items carry their own idempotencyKey", async () => {
    const body = { items: [{ channel: "user:i2", event: "a", idempotencyKey: "k-a" }, { channel: "user:i2", event: "b", idempotencyKey: "k-b" }] };
    const post = () => fetch(`${server.http}/v1/publish/batch`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify(body) }).then((r) => r.json());
    const first = await post();
    expect(await post()).toEqual(first);
    const page = await (await fetch(`${server.http}/v1/history?channel=user:i2&token=${await server.token("i2")}`)).json();
    expect(page.events.map((e: any) => e.event)).toEqual(["a", "b"]);
  });
});

describe("confirmations", () => {
  test("acks confirm critical events and are counted with their time", async () => {
    const c = await connectWelcomed(await url("a1"));
    await c.request({ type: "subscribe", channel: "user:a1" });
    const before = (await server.stats()).confirmations.confirmed;
    await publishMany("user:a1", 3, () => ({ critical: true }));
    const events = await c.collect((f) => f.type === "event", 3);
    c.send({ type: "ack", channel: "user:a1", offset: events.at(-1)!.offset });
    await settle(c);
    const stats = await server.stats();
    expect(stats.confirmations.confirmed).toBe(before + 3);
    expect(stats.confirmations.meanMs).toBeGreaterThanOrEqual(0);
    c.close();
  });

  // The sweep's boundaries are unit-tested with a fake clock (tests/unit/connection-sweep.test.ts);
  // here the real server runs on a fake scheduler and clock that the test moves past each timeout,
  // so nothing waits on real time: the sweeps run when the test advances the scheduler.
  test("unacknowledged critical events + no pong closes 4408; a client that acks is never probed", async () => {
    const scheduler = new FakeScheduler(Date.now());
    await using timed = await startServer({ now: scheduler.clock, scheduler });
    const { confirmTimeoutMs, probeTimeoutMs } = timed.config.delivery;
    const silent = await rawConnect(`${timed.ws}?token=${await timed.token("half-open")}`);
    const acker = await rawConnect(`${timed.ws}?token=${await timed.token("acker")}`);
    for (const [client, channel] of [[silent, "user:half-open"], [acker, "user:acker"]] as const) {
      await client.next((f) => f.type === "welcome");
      client.send({ type: "subscribe", id: 1, channel });
      await client.next((f) => f.type === "subscribed");
      await timed.publish({ channel, event: "agent_started" });
      await client.next((f) => f.type === "event");
    }
    acker.send({ type: "ack", channel: "user:acker", offset: 1 });
    acker.send({ type: "ping", id: 2 });
    await acker.next((f) => f.type === "pong" && f.id === 2);

    // Sweeps run every SWEEP_MS: one full period past each timeout is the first sweep that sees it.
    scheduler.advance(confirmTimeoutMs + SWEEP_MS);
    await silent.pinged(1);
    scheduler.advance(probeTimeoutMs + SWEEP_MS);
    expect(await silent.closed).toBe(CloseCode.Stale);
    expect(silent.pings).toBe(1);
    expect((await timed.stats()).confirmations.timedOut).toBe(1);
    // The sweeps that probed and closed the silent client ran past the acker's timeout too.
    expect(acker.pings).toBe(0);
    expect(acker.socket.destroyed).toBe(false);
    acker.destroy();
  });
});

describe("slow consumers", () => {
  test("a consumer that stops reading is closed 4409 and a fast one gets everything in order", async () => {
    const slowServer = await startServer({ config: { limits: { slowConsumerBytes: 256 * 1024 } } });
    try {
      const channel = "public:firehose";
      const slow = await rawConnect(`${slowServer.ws}?token=${await slowServer.token("slow")}`);
      await slow.next((f) => f.type === "welcome");
      slow.send({ type: "subscribe", id: 1, channel });
      await slow.next((f) => f.type === "subscribed");
      slow.socket.pause();
      const fast = await connectWelcomed(`${slowServer.ws}?token=${await slowServer.token("fast")}`);
      await fast.request({ type: "subscribe", channel });
      const pad = "x".repeat(16 * 1024);
      const n = 800; // ~13 MB: past kernel buffers and the slow-consumer limit
      for (let i = 0; i < n; i += 20) {
        const batch = Array.from({ length: 20 }, (_, k) => ({ channel, event: "blob", data: { i: i + k, pad } }));
        const res = await fetch(`${slowServer.http}/v1/publish/batch`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ items: batch }) });
        expect(res.status).toBe(200);
      }
      const events = await fast.collect((f) => f.type === "event", n, 20_000);
      expect(events.map((e) => e.offset)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      fast.frames.length = 0;
      expect((await slowServer.stats()).slowConsumerCloses).toBe(1);
      slow.socket.resume();
      expect(await slow.closed).toBe(CloseCode.SlowConsumer);
      fast.close();
    } finally {
      await slowServer.stop();
    }
  });
});
