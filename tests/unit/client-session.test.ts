import { afterEach, describe, expect, jest, test } from "bun:test";
import { memoryOffsetStore, type CourierEvent, type Recovery } from "../../packages/client/src/index.ts";
import { advance, setup, type FakeSocket } from "./client-fakes.ts";

afterEach(() => {
  jest.useRealTimers();
});

const ev = (channel: string, offset: number, extra: Record<string, unknown> = {}) => ({
  type: "event",
  channel,
  offset,
  event: "e",
  data: { n: offset },
  ts: 1_700_000_000_000 + offset,
  ...extra,
});

/** Answers the last subscribe on `socket` with `subscribed`. */
function confirm(socket: FakeSocket, head: Record<string, unknown>) {
  const sub = socket.ofType("subscribe").at(-1)!;
  socket.receive({ type: "subscribed", id: sub.id, channel: sub.channel, ...head });
}

describe("sessions", () => {
  test("remembers welcome.session and reconnects with ?session=", () => {
    const { client, ws } = setup({ session: "persisted" });
    client.connect();
    expect(ws.last().url.searchParams.get("session")).toBe("persisted");
    ws.last().welcome({ session: "s-new" });
    expect(client.session).toBe("s-new");
    ws.last().serverClose(1006);
    advance(100);
    expect(ws.last().url.searchParams.get("session")).toBe("s-new");
    client.close();
  });

  test("resumed:true sends no subscribe again, and still dedupes the replay", () => {
    const { client, ws } = setup();
    const got: number[] = [];
    client.subscribe("user:u1", (e) => got.push(e.offset));
    client.connect();
    ws.last().welcome();
    confirm(ws.last(), { epoch: "e1", offset: 0 });
    ws.last().receive(ev("user:u1", 1));
    ws.last().receive(ev("user:u1", 2));
    ws.last().serverClose(1006);
    advance(100);
    const second = ws.last();
    second.welcome({ resumed: true });
    expect(second.ofType("subscribe")).toEqual([]);
    second.receive({ type: "subscribed", channel: "user:u1", epoch: "e1", offset: 3 });
    second.receive(ev("user:u1", 2)); // acked-late replay
    second.receive(ev("user:u1", 3));
    expect(got).toEqual([1, 2, 3]);
    client.close();
  });

  test("resumed:true subscribes channels added while down and unsubscribes those dropped", () => {
    const { client, ws } = setup();
    client.connect();
    ws.last().welcome();
    const offA = client.subscribe("public:a", () => {});
    confirm(ws.last(), { epoch: "e1", offset: 0 });
    ws.last().serverClose(1006);
    offA();
    client.subscribe("public:b", () => {});
    advance(100);
    ws.last().welcome({ resumed: true });
    expect(ws.last().sent.map(({ type, channel }) => ({ type, channel }))).toEqual([
      { type: "unsubscribe", channel: "public:a" },
      { type: "subscribe", channel: "public:b" },
    ]);
    client.close();
  });

  test("resumed:false subscribes every channel again with since from the store", () => {
    const store = memoryOffsetStore();
    const { client, ws } = setup({ store });
    client.subscribe("user:u1", () => {});
    client.subscribe("job:7", () => {});
    client.connect();
    ws.last().welcome();
    expect(ws.last().ofType("subscribe").map((f) => f.since)).toEqual([undefined, undefined]);
    for (const sub of ws.last().ofType("subscribe")) ws.last().receive({ type: "subscribed", id: sub.id, channel: sub.channel, epoch: "e1", offset: 10 });
    ws.last().receive(ev("user:u1", 11));
    ws.last().receive(ev("user:u1", 12));
    expect(store.get("user:u1")).toEqual({ epoch: "e1", offset: 12 });
    ws.last().serverClose(1006);
    advance(100);
    ws.last().welcome({ resumed: false, session: "s2" });
    expect(ws.last().ofType("subscribe").map(({ channel, since }) => ({ channel, since }))).toEqual([
      { channel: "user:u1", since: { epoch: "e1", offset: 12 } },
      { channel: "job:7", since: { epoch: "e1", offset: 10 } },
    ]);
    client.close();
  });

  test("a reloaded page resuming a persisted session gets the server's replay, without noise", async () => {
    const { client, ws } = setup({ session: "s-old" }); // fresh memory store: no positions
    const got: number[] = [];
    const errors: Error[] = [];
    client.on("error", (e) => errors.push(e));
    client.subscribe("user:u1", (e) => got.push(e.offset));
    client.connect();
    const s = ws.last();
    s.welcome({ session: "s-old", resumed: true });
    // Unknown to this page, so subscribed again; the server already holds it.
    const sub = s.ofType("subscribe")[0]!;
    expect(sub).toEqual({ type: "subscribe", channel: "user:u1", id: sub.id });
    s.receive({ type: "subscribed", channel: "user:u1", epoch: "e1", offset: 9, recovered: true });
    s.receive(ev("user:u1", 8));
    s.receive(ev("user:u1", 9));
    s.receive({ type: "error", id: sub.id, code: "bad_request", message: "already subscribed to user:u1" });
    await Promise.resolve();
    expect(got).toEqual([8, 9]);
    expect(errors).toEqual([]);
    advance(100);
    expect(s.ofType("ack")).toEqual([{ type: "ack", channel: "user:u1", offset: 9 }]);
    client.close();
  });

  test("a restored channel the page no longer wants is unsubscribed", () => {
    const { client, ws } = setup({ session: "s-old" });
    client.connect();
    const s = ws.last();
    s.welcome({ session: "s-old", resumed: true });
    s.receive({ type: "subscribed", channel: "public:stale", epoch: "e1", offset: 3, recovered: true });
    expect(s.sent).toMatchObject([{ type: "unsubscribe", channel: "public:stale" }]);
    client.close();
  });

  test("a subscribe without since starts at the head: only later events follow", () => {
    const store = memoryOffsetStore();
    const { client, ws } = setup({ store });
    const got: number[] = [];
    client.subscribe("user:u1", (e) => got.push(e.offset));
    client.connect();
    ws.last().welcome();
    confirm(ws.last(), { epoch: "e1", offset: 41 });
    expect(store.get("user:u1")).toEqual({ epoch: "e1", offset: 41 });
    ws.last().receive(ev("user:u1", 42));
    expect(got).toEqual([42]);
    client.close();
  });

  test("a new client starts from the store's position; an explicit since wins", () => {
    const store = memoryOffsetStore();
    store.set("user:u1", { epoch: "e1", offset: 40 });
    store.set("job:7", { epoch: "e1", offset: 5 });
    const { client, ws } = setup({ store });
    client.subscribe("user:u1", () => {});
    client.subscribe("job:7", () => {}, { since: { epoch: "e0", offset: 1 } });
    client.connect();
    ws.last().welcome();
    expect(ws.last().ofType("subscribe").map((f) => f.since)).toEqual([
      { epoch: "e1", offset: 40 },
      { epoch: "e0", offset: 1 },
    ]);
    client.close();
  });
});

describe("delivery", () => {
  test("drops events at or below the last offset seen", () => {
    const { client, ws } = setup();
    const got: CourierEvent[] = [];
    client.subscribe("user:u1", (e) => got.push(e));
    client.connect();
    ws.last().welcome();
    confirm(ws.last(), { epoch: "e1", offset: 0 });
    for (const offset of [1, 2, 2, 1, 3]) ws.last().receive(ev("user:u1", offset));
    expect(got.map((e) => e.offset)).toEqual([1, 2, 3]);
    expect(got[0]).toEqual({ channel: "user:u1", epoch: "e1", offset: 1, event: "e", data: { n: 1 }, critical: false, ts: 1_700_000_000_001 });
    client.close();
  });

  test("a subscribed with a new epoch resets tracking and surfaces recovered:false", () => {
    const store = memoryOffsetStore();
    const { client, ws } = setup({ store });
    const got: Array<[string | undefined, number]> = [];
    const recoveries: Recovery[] = [];
    client.on("recovery", (r) => recoveries.push(r));
    client.subscribe("user:u1", (e) => got.push([e.epoch, e.offset]));
    client.connect();
    ws.last().welcome();
    confirm(ws.last(), { epoch: "e1", offset: 0 });
    for (const offset of [1, 2, 3, 4, 5]) ws.last().receive(ev("user:u1", offset));
    ws.last().serverClose(1006);
    advance(100);
    ws.last().welcome();
    expect(ws.last().ofType("subscribe")[0]!.since).toEqual({ epoch: "e1", offset: 5 });
    confirm(ws.last(), { epoch: "e2", offset: 2, recovered: false, reason: "epoch_changed" });
    ws.last().receive(ev("user:u1", 3));
    expect(got.at(-1)).toEqual(["e2", 3]);
    expect(recoveries).toEqual([{ channel: "user:u1", recovered: false, reason: "epoch_changed" }]);
    expect(store.get("user:u1")).toEqual({ epoch: "e2", offset: 3 });
    client.close();
  });

  test("history_trimmed keeps the position so the retained replay is delivered", () => {
    const store = memoryOffsetStore();
    store.set("user:u1", { epoch: "e1", offset: 10 });
    const { client, ws } = setup({ store });
    const got: number[] = [];
    const recoveries: Recovery[] = [];
    client.subscribe("user:u1", (e) => got.push(e.offset));
    client.on("recovery", (r) => recoveries.push(r));
    client.connect();
    ws.last().welcome();
    confirm(ws.last(), { epoch: "e1", offset: 60, recovered: false, reason: "history_trimmed" });
    for (const offset of [50, 51]) ws.last().receive(ev("user:u1", offset));
    expect(got).toEqual([50, 51]);
    expect(recoveries).toEqual([{ channel: "user:u1", recovered: false, reason: "history_trimmed" }]);
    client.close();
  });

  test("offset_ahead restarts tracking at the server's head", () => {
    const store = memoryOffsetStore();
    store.set("user:u1", { epoch: "e1", offset: 99 });
    const { client, ws } = setup({ store });
    const got: number[] = [];
    client.subscribe("user:u1", (e) => got.push(e.offset));
    client.connect();
    ws.last().welcome();
    confirm(ws.last(), { epoch: "e1", offset: 4, recovered: false, reason: "offset_ahead" });
    ws.last().receive(ev("user:u1", 5));
    expect(got).toEqual([5]);
    client.close();
  });

  test("recovered:true is surfaced too, with no reason", () => {
    const recoveries: Recovery[] = [];
    const { client, ws } = setup({ onRecovery: (r) => recoveries.push(r) });
    client.subscribe("user:u1", () => {}, { since: { epoch: "e1", offset: 3 } });
    client.connect();
    ws.last().welcome();
    confirm(ws.last(), { epoch: "e1", offset: 3, recovered: true });
    expect(recoveries).toEqual([{ channel: "user:u1", recovered: true }]);
    client.close();
  });

  test("events of channels without handlers are ignored; on('event') sees delivered events", () => {
    const { client, ws } = setup();
    const seen: string[] = [];
    const off = client.on("event", (e) => seen.push(`${e.channel}#${e.offset}`));
    client.subscribe("user:u1", () => {});
    client.connect();
    ws.last().welcome();
    confirm(ws.last(), { epoch: "e1", offset: 0 });
    ws.last().receive(ev("public:other", 1));
    ws.last().receive(ev("user:u1", 1));
    off();
    ws.last().receive(ev("user:u1", 2));
    expect(seen).toEqual(["user:u1#1"]);
    client.close();
  });
});
