import { afterEach, describe, expect, jest, test } from "bun:test";
import { advance, setup } from "./client-fakes.ts";

afterEach(() => {
  jest.useRealTimers();
});

const ev = (channel: string, offset: number) => ({ type: "event", channel, offset, event: "e", data: null, ts: 0 });

function live(options: Parameters<typeof setup>[0] = {}) {
  const ctx = setup(options);
  ctx.client.subscribe("user:u1", () => {});
  ctx.client.subscribe("job:7", () => {});
  ctx.client.connect();
  ctx.ws.last().welcome();
  for (const sub of ctx.ws.last().ofType("subscribe")) {
    ctx.ws.last().receive({ type: "subscribed", id: sub.id, channel: sub.channel, epoch: "e1", offset: 0 });
  }
  return ctx;
}

describe("ack batching", () => {
  test("sends one cumulative ack per channel per interval, with the highest offset", () => {
    const { client, ws } = live();
    const s = ws.last();
    for (const offset of [1, 2, 3]) s.receive(ev("user:u1", offset));
    s.receive(ev("job:7", 1));
    advance(99);
    expect(s.ofType("ack")).toEqual([]);
    advance(1);
    expect(s.ofType("ack")).toEqual([
      { type: "ack", channel: "user:u1", offset: 3 },
      { type: "ack", channel: "job:7", offset: 1 },
    ]);
    s.receive(ev("user:u1", 4));
    s.receive(ev("user:u1", 5));
    advance(100);
    expect(s.ofType("ack").slice(2)).toEqual([{ type: "ack", channel: "user:u1", offset: 5 }]);
    advance(1000);
    expect(s.ofType("ack")).toHaveLength(3);
    client.close();
  });

  test("honours ackIntervalMs", () => {
    const { client, ws } = live({ ackIntervalMs: 250 });
    ws.last().receive(ev("user:u1", 1));
    advance(249);
    expect(ws.last().ofType("ack")).toEqual([]);
    advance(1);
    expect(ws.last().ofType("ack")).toEqual([{ type: "ack", channel: "user:u1", offset: 1 }]);
    client.close();
  });

  test("flushes pending acks on close()", () => {
    const { client, ws } = live();
    const s = ws.last();
    s.receive(ev("job:7", 9));
    client.close();
    expect(s.ofType("ack")).toEqual([{ type: "ack", channel: "job:7", offset: 9 }]);
    expect(s.closedWith).toBe(1000);
  });

  test("keeps acks that could not be sent for the next connection", () => {
    const { client, ws } = live();
    ws.last().receive(ev("user:u1", 2));
    ws.last().serverClose(1006);
    advance(100);
    ws.last().welcome({ resumed: true });
    // Not before the server has joined the channel again: an early ack is a protocol error there.
    expect(ws.last().ofType("ack")).toEqual([]);
    ws.last().receive({ type: "subscribed", channel: "user:u1", epoch: "e1", offset: 2 });
    expect(ws.last().ofType("ack")).toEqual([{ type: "ack", channel: "user:u1", offset: 2 }]);
    client.close();
  });

  test("never acks a channel before its subscribed on the current connection", () => {
    const { client, ws } = live();
    ws.last().receive(ev("job:7", 3));
    ws.last().serverClose(1006);
    advance(100);
    const s = ws.last();
    s.welcome({ resumed: false });
    advance(1000);
    expect(s.ofType("ack")).toEqual([]);
    const sub = s.ofType("subscribe").find((f) => f.channel === "job:7")!;
    expect(sub.since).toEqual({ epoch: "e1", offset: 3 });
    s.receive({ type: "subscribed", id: sub.id, channel: "job:7", epoch: "e1", offset: 3, recovered: true });
    expect(s.ofType("ack")).toEqual([{ type: "ack", channel: "job:7", offset: 3 }]);
    client.close();
  });

  test("acks a channel's last offset before unsubscribing it", () => {
    const ctx = setup();
    const off = ctx.client.subscribe("user:u1", () => {});
    ctx.client.connect();
    const s = ctx.ws.last();
    s.welcome();
    s.receive({ type: "subscribed", id: s.ofType("subscribe")[0]!.id, channel: "user:u1", epoch: "e1", offset: 0 });
    s.receive(ev("user:u1", 1));
    off();
    expect(s.sent.slice(1).map((f) => f.type)).toEqual(["ack", "unsubscribe"]);
    advance(200);
    expect(s.ofType("ack")).toHaveLength(1);
    ctx.client.close();
  });
});

describe("ack frame rate", () => {
  const CHANNELS = ["user:u1", "job:7", "public:a", "public:b", "public:c", "public:d", "public:e", "public:f"];

  /** A live client joined to the 8 channels, each receiving an event every 10 ms for `seconds`. */
  function busy(options: Parameters<typeof setup>[0], seconds: number) {
    const ctx = setup(options);
    for (const channel of CHANNELS) ctx.client.subscribe(channel, () => {});
    ctx.client.connect();
    const s = ctx.ws.last();
    s.welcome();
    for (const sub of s.ofType("subscribe")) s.receive({ type: "subscribed", id: sub.id, channel: sub.channel, epoch: "e1", offset: 0 });
    /** Ack frames sent in each whole second. */
    const perSecond: number[] = [];
    let offset = 0;
    for (let second = 0; second < seconds; second++) {
      const before = s.ofType("ack").length;
      for (let tick = 0; tick < 100; tick++) {
        offset++;
        for (const channel of CHANNELS) s.receive(ev(channel, offset));
        advance(10);
      }
      perSecond.push(s.ofType("ack").length - before);
    }
    return { ...ctx, s, perSecond, lastOffset: offset };
  }

  test("8 busy channels at 100 events/s each: at most 20 ack frames per second, every channel acked", () => {
    const { client, s, perSecond, lastOffset } = busy({}, 5);
    expect(perSecond.every((n) => n > 0 && n <= 20)).toBe(true);
    // Each channel is acked within the window, so confirmations never wait long.
    const acked = new Map<string, number>();
    for (const ack of s.ofType("ack").slice(-20)) acked.set(String(ack.channel), Number(ack.offset));
    expect([...acked.keys()].sort()).toEqual([...CHANNELS].sort());
    // Once the events stop, the remaining acks catch up to the last offset of every channel.
    advance(1000);
    const last = new Map<string, number>();
    for (const ack of s.ofType("ack")) last.set(String(ack.channel), Number(ack.offset));
    expect(CHANNELS.map((channel) => last.get(channel))).toEqual(CHANNELS.map(() => lastOffset));
    client.close();
  });

  test("honours ackFramesPerSecond: 8 channels with a cap of 10 send at most 10 a second", () => {
    const { client, perSecond } = busy({ ackFramesPerSecond: 10 }, 3);
    expect(perSecond.every((n) => n > 0 && n <= 10)).toBe(true);
    client.close();
  });

  test("the channels over the cap go at the next flush, longest-waiting first", () => {
    const { client, ws } = live({ ackFramesPerSecond: 10 });
    const s = ws.last();
    s.receive(ev("user:u1", 1));
    s.receive(ev("job:7", 1));
    advance(100);
    expect(s.ofType("ack")).toEqual([{ type: "ack", channel: "user:u1", offset: 1 }]);
    s.receive(ev("user:u1", 2));
    advance(100);
    expect(s.ofType("ack").slice(1)).toEqual([{ type: "ack", channel: "job:7", offset: 1 }]);
    advance(100);
    expect(s.ofType("ack").slice(2)).toEqual([{ type: "ack", channel: "user:u1", offset: 2 }]);
    client.close();
  });
});
