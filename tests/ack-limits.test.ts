/**
 * Acks never trip the frame limit (issue #14 item 9): ack frames have their own bucket
 * (`limits.acksPerSecond` / `ackBurst`), so a plain client that acks every event stays connected
 * however busy its channel, while a flood of other frames, or of acks past their own generous
 * bound, is still closed 4429. Real server, real WebSocket clients.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connectWelcomed, type TestClient } from "./helpers/client.ts";
import { startServer, type TestServer } from "./helpers/server.ts";
import { CloseCode, ErrorCode } from "../src/protocol/codes.ts";

let server: TestServer;
let tight: TestServer;
beforeAll(async () => {
  server = await startServer();
  tight = await startServer({ config: { limits: { acksPerSecond: 5, ackBurst: 10, rateLimitStrikes: 5 } } });
});
afterAll(async () => {
  await Promise.all([server.stop(), tight.stop()]);
});

const wsUrl = async (s: TestServer, user: string) => `${s.ws}?token=${await s.token(user)}`;
const rateLimited = (c: TestClient) => c.frames.filter((f) => f.type === "error" && f.code === ErrorCode.RateLimited).length;

describe("ack frames are counted apart from other frames", () => {
  test("a client acking every event, one ack per event, well past the frame limit, stays connected with no rate_limited error", async () => {
    const { framesPerSecond, frameBurst, rateLimitStrikes, ackBurst } = server.config.limits;
    // Twice what the frame bucket and its strikes allow over two seconds (100 events/s for 2 s is 200):
    // the old shared count closed this client 4429. The round trips run faster than 100/s, so the
    // acks also stay within their own burst (they are never throttled at all).
    const events = 2 * (frameBurst + rateLimitStrikes + 2 * framesPerSecond);
    expect(events).toBeLessThanOrEqual(ackBurst);
    const c = await connectWelcomed(await wsUrl(server, "acker"));
    const channel = "public:acked-every-event";
    const { offset: base } = await c.request({ type: "subscribe", channel });
    let closedEarly: number | null = null;
    void c.closed.then(({ code }) => (closedEarly = code));
    const started = performance.now();
    for (let i = 1; i <= events && closedEarly === null; i++) {
      expect((await server.publish({ channel, event: "tick", data: i })).status).toBe(200);
      const event = await c.next((f) => f.type === "event" && f.offset === base + i);
      c.send({ type: "ack", channel, offset: event.offset });
    }
    const seconds = (performance.now() - started) / 1000;
    // Still open and answering: a round trip after the last ack.
    expect((await c.request({ type: "ping" })).type).toBe("pong");
    expect({ closedEarly, rateLimited: rateLimited(c) }).toEqual({ closedEarly: null, rateLimited: 0 });
    console.log(`[acks] ${events} acks in ${seconds.toFixed(2)} s (${Math.round(events / seconds)}/s) on one connection: no rate_limited, still open`);
    c.close();
  });

  test("a frame that looks like an ack but is not one pays the frame limit too: a flood of them closes 4429", async () => {
    const c = await connectWelcomed(await wsUrl(server, "disguised"));
    const { frameBurst, rateLimitStrikes } = server.config.limits;
    for (let i = 0; i < frameBurst + rateLimitStrikes + 5; i++) c.send({ type: "ping", id: "ack" });
    expect((await c.closed).code).toBe(CloseCode.TooManyFrames);
  });

  test("acks past their own bound are rate_limited, then closed 4429 (abuse)", async () => {
    const c = await connectWelcomed(await wsUrl(tight, "ack-flooder"));
    const channel = "public:ack-flood";
    await c.request({ type: "subscribe", channel });
    const { ackBurst, rateLimitStrikes } = tight.config.limits;
    for (let i = 0; i < ackBurst + rateLimitStrikes + 5; i++) c.send({ type: "ack", channel, offset: 0 });
    expect((await c.closed).code).toBe(CloseCode.TooManyFrames);
    expect(rateLimited(c)).toBeGreaterThan(0);
  });

  test("acks do not use up the frame bucket: after a burst of acks, other frames still pass", async () => {
    const c = await connectWelcomed(await wsUrl(server, "acks-then-pings"));
    const channel = "public:acks-then-pings";
    await c.request({ type: "subscribe", channel });
    const { frameBurst } = server.config.limits;
    // Twice the frame burst in acks (within the ack burst), then a frame burst's worth of pings.
    for (let i = 0; i < 2 * frameBurst; i++) c.send({ type: "ack", channel, offset: 0 });
    const pongs = [];
    for (let i = 0; i < frameBurst - 1; i++) pongs.push(c.request({ type: "ping" }));
    expect((await Promise.all(pongs)).every((f) => f.type === "pong")).toBe(true);
    expect(rateLimited(c)).toBe(0);
    c.close();
  });
});
