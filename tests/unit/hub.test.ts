/**
 * The hub's join race (history read vs live topic) with a fake transport that records writes and a
 * fake broker whose answers the test releases, under an injected clock. The same guarantees
 * through the real server: tests/delivery.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { Hub, MAX_JOIN_READS } from "../../src/delivery/hub.ts";
import { NotRecoveredReason } from "../../src/protocol/codes.ts";
import type { Since } from "../../src/protocol/frames.ts";
import { FakeBroker, FakeSocket, FakeTransport } from "./hub-fakes.ts";

const CH = "user:a";

function setup(options: { deliversAll?: boolean; recentPerChannel?: number; replayLimit?: number } = {}) {
  const clock = { t: 1_000_000, now: () => clock.t };
  const broker = new FakeBroker({ deliversAll: options.deliversAll ?? true, now: clock.now });
  const transport = new FakeTransport();
  const fanouts: Array<{ events: number; subscribers: number; latencyMs: number }> = [];
  const replays: number[] = [];
  const memberships: Array<[FakeSocket, string, number]> = [];
  let backpressure = 0;
  const hub = new Hub<FakeSocket>({
    engine: broker,
    now: clock.now,
    recentPerChannel: options.recentPerChannel ?? 100,
    memoryCapBytes: 1 << 20,
    replayLimit: options.replayLimit ?? 100,
    onFanout: (_channel, events, subscribers, latencyMs) => fanouts.push({ events, subscribers, latencyMs }),
    onBackpressure: () => backpressure++,
    onReplay: (n) => replays.push(n),
    onMembership: (socket, channel, delta) => memberships.push([socket, channel, delta]),
  });
  broker.start(hub.deliver);
  hub.attach(transport);
  return { clock, broker, transport, hub, fanouts, replays, memberships, backpressure: () => backpressure };
}

/** Joins without `since`, answering the broker at once; resolves with the socket once joined. */
async function joined(s: ReturnType<typeof setup>): Promise<FakeSocket> {
  const socket = new FakeSocket();
  const watches = s.broker.watches.count;
  const joining = s.hub.join(socket, CH, null);
  // Only a channel's first local subscriber makes the hub watch it.
  if (s.broker.watches.count > watches) s.broker.answerWatch(await s.broker.watches.next());
  (await s.broker.positions.next()).resolve({ epoch: s.broker.epoch, offset: s.broker.top });
  await joining;
  return socket;
}

/** Starts a join after `since` and answers its watch; resolves once the first history read is pending. */
async function joiningSince(s: ReturnType<typeof setup>, since: Since, id?: number) {
  const socket = new FakeSocket();
  const joining = s.hub.join(socket, CH, since, id);
  s.broker.answerWatch(await s.broker.watches.next());
  return { socket, joining, read: await s.broker.histories.next() };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("join without since", () => {
  test("live publishes while watch() and position() are pending raise the start offset, and later ones arrive live", async () => {
    const s = setup();
    s.broker.publish(CH, 2);
    const socket = new FakeSocket();
    const joining = s.hub.join(socket, CH, null, 7);
    const watch = await s.broker.watches.next();
    const topAtWatch = s.broker.top;
    s.broker.publish(CH, 2);
    s.broker.answerWatch(watch, topAtWatch);
    const position = await s.broker.positions.next();
    s.broker.publish(CH, 1);
    position.resolve({ epoch: "e1", offset: s.broker.top });
    const result = await joining;
    s.broker.publish(CH, 2);

    expect(result).toEqual({ subscribed: { type: "subscribed", channel: CH, epoch: "e1", offset: 5, id: 7 }, from: 5, acked: 5 });
    expect(socket.frames[0]).toEqual({ type: "subscribed", channel: CH, epoch: "e1", offset: 5, id: 7 });
    expect(socket.offsets(CH)).toEqual([6, 7]);
  });
});

describe("join with since", () => {
  test("live publishes while history() is pending come from the buffer: one read, no gap, no duplicate", async () => {
    const s = setup();
    s.broker.publish(CH, 5);
    const { socket, joining, read } = await joiningSince(s, { offset: 2, epoch: "e1" });
    const pageAtCall = s.broker.page(2, 100);
    s.broker.publish(CH, 3);
    read.resolve(pageAtCall);
    const result = await joining;
    s.broker.publish(CH, 1);

    expect(result?.subscribed).toEqual({ type: "subscribed", channel: CH, epoch: "e1", offset: 8, recovered: true });
    expect(socket.offsets(CH)).toEqual(range(3, 9));
    expect(s.broker.histories.count).toBe(1);
    expect(s.replays).toEqual([6]);
  });

  test("a page read ahead of this node's delivery is cut at what was delivered; the rest arrives live", async () => {
    const s = setup({ deliversAll: false });
    s.broker.publish(CH, 5);
    const { socket, joining, read } = await joiningSince(s, { offset: 2, epoch: "e1" });
    s.broker.append(CH, 2);
    s.broker.deliverThrough(CH, 6);
    s.broker.answerHistory(read);
    await joining;
    s.broker.deliverThrough(CH);

    expect(socket.ofType("subscribed")).toEqual([{ type: "subscribed", channel: CH, epoch: "e1", offset: 6, recovered: true }]);
    expect(socket.offsets(CH)).toEqual(range(3, 7));
  });

  test("an offset up to what was delivered is not ahead, even when the page was read before it", async () => {
    const s = setup();
    s.broker.publish(CH, 5);
    const { joining, read } = await joiningSince(s, { offset: 7, epoch: "e1" });
    const pageAtCall = s.broker.page(7, 100);
    s.broker.publish(CH, 3);
    read.resolve(pageAtCall);

    expect((await joining)?.subscribed).toEqual({ type: "subscribed", channel: CH, epoch: "e1", offset: 8, recovered: true });
  });

  test("another epoch or an offset past the top joins at the top with a reason and no replay", async () => {
    for (const [since, reason] of [
      [{ offset: 2, epoch: "e0" }, NotRecoveredReason.EpochChanged],
      [{ offset: 9, epoch: "e1" }, NotRecoveredReason.OffsetAhead],
    ] as const) {
      const s = setup();
      s.broker.publish(CH, 5);
      const { socket, joining, read } = await joiningSince(s, since, 1);
      s.broker.answerHistory(read);
      const result = await joining;
      s.broker.publish(CH, 1);

      expect(result).toEqual({ subscribed: { type: "subscribed", channel: CH, epoch: "e1", offset: 5, recovered: false, reason, id: 1 }, from: 5, acked: 5 });
      expect(socket.offsets(CH)).toEqual([6]);
    }
  });

  test("a since before the trim line replays what is retained with history_trimmed", async () => {
    const s = setup();
    s.broker.publish(CH, 8);
    s.broker.trimmedThrough = 4;
    const { socket, joining, read } = await joiningSince(s, { offset: 1, epoch: "e1" });
    s.broker.answerHistory(read);
    const result = await joining;

    expect(result).toEqual({
      subscribed: { type: "subscribed", channel: CH, epoch: "e1", offset: 8, recovered: false, reason: NotRecoveredReason.HistoryTrimmed },
      from: 1,
      acked: 1,
    });
    expect(socket.offsets(CH)).toEqual(range(5, 8));
  });

  // Every interleaving of the two broker answers with 50 live publishes, on both kinds of engine,
  // with the page read when asked or when answered, and the join finishing before or after the rest.
  test("a since join racing 50 live publishes gets offsets exactly since+1..N in every interleaving", async () => {
    const N = 50;
    let runs = 0;
    for (const deliversAll of [true, false]) {
      for (const pageAt of ["call", "answer"] as const) {
        for (const settleAfterRead of [false, true]) {
          for (let w = 0; w <= N; w += 5) {
            for (let h = w; h <= N; h += 5) {
              const s = setup({ deliversAll });
              s.broker.publish(CH, 5);
              const socket = new FakeSocket();
              const joining = s.hub.join(socket, CH, { offset: 2, epoch: "e1" });
              const watch = await s.broker.watches.next();
              let finished = false;
              for (let i = 0; i <= N; i++) {
                if (i === w) s.broker.answerWatch(watch);
                if (i === h) {
                  const read = await s.broker.histories.next();
                  const page = pageAt === "call" ? s.broker.page(2, 100) : null;
                  if (page) s.broker.publish(CH, 1);
                  page ? read.resolve(page) : s.broker.answerHistory(read);
                  if (settleAfterRead) {
                    await joining;
                    finished = true;
                  }
                }
                if (i < N) s.broker.publish(CH, 1);
              }
              const result = await joining;
              const top = s.broker.top;

              const label = { deliversAll, pageAt, settleAfterRead, w, h };
              expect({ ...label, offsets: socket.offsets(CH) }).toEqual({ ...label, offsets: range(3, top) });
              expect(result?.subscribed.recovered).toBe(true);
              expect(socket.frames[0]!.type).toBe("subscribed");
              expect(finished || socket.frames[0]!.offset === top).toBe(true);
              runs++;
            }
          }
        }
      }
    }
    expect(runs).toBe(8 * 66);
  });

  test("when reads stay behind publishing and the buffer does not reach back, history is read MAX_JOIN_READS times, then recovered:false", async () => {
    const s = setup({ recentPerChannel: 2 });
    const socket = new FakeSocket();
    const joining = s.hub.join(socket, CH, { offset: 0, epoch: "e1" });
    s.broker.answerWatch(await s.broker.watches.next());
    for (let read = 1; read <= MAX_JOIN_READS; read++) {
      const call = await s.broker.histories.next();
      const pageAtCall = s.broker.page(call.args[0]!, call.args[1]!);
      s.broker.publish(CH, 10);
      call.resolve(pageAtCall);
    }
    const result = await joining;
    s.broker.publish(CH, 1);

    const top = 10 * MAX_JOIN_READS;
    expect(result?.subscribed).toEqual({ type: "subscribed", channel: CH, epoch: "e1", offset: top, recovered: false, reason: NotRecoveredReason.HistoryTrimmed });
    expect(s.broker.histories.count).toBe(MAX_JOIN_READS);
    // What the last read did not reach is the loss recovered:false admits; live events follow.
    expect(socket.offsets(CH)).toEqual([...range(1, top - 10), top + 1]);
  });

  test("a tail trimmed away during the join, or a replay at its limit, gives recovered:false", async () => {
    const trimmed = setup({ recentPerChannel: 2 });
    const { joining, read: first } = await joiningSince(trimmed, { offset: 0, epoch: "e1" });
    trimmed.broker.publish(CH, 10);
    first.resolve(trimmed.broker.page(0, 2));
    trimmed.broker.trimmedThrough = 6;
    trimmed.broker.answerHistory(await trimmed.broker.histories.next());
    expect((await joining)?.subscribed).toMatchObject({ recovered: false, reason: NotRecoveredReason.HistoryTrimmed });

    const limited = setup({ recentPerChannel: 2, replayLimit: 3 });
    const { socket, joining: joiningLimited, read } = await joiningSince(limited, { offset: 0, epoch: "e1" });
    limited.broker.publish(CH, 10);
    limited.broker.answerHistory(read);
    expect((await joiningLimited)?.subscribed).toMatchObject({ recovered: false, reason: NotRecoveredReason.HistoryTrimmed, offset: 10 });
    expect(limited.broker.histories.count).toBe(1);
    expect(socket.offsets(CH)).toEqual([1, 2, 3]);
  });
});

describe("a socket closing mid-join", () => {
  test("while history() is pending: null, nothing written, and the channel released and unwatched", async () => {
    const s = setup();
    s.broker.publish(CH, 3);
    const { socket, joining, read } = await joiningSince(s, { offset: 1, epoch: "e1" });
    s.transport.close(socket);
    s.broker.answerHistory(read);

    expect(await joining).toBeNull();
    expect(socket.frames).toEqual([]);
    expect(s.broker.unwatched).toEqual([CH]);
    expect(s.hub.subscriptionsByKind()).toEqual({});
    s.broker.publish(CH, 1);
    expect(s.transport.published).toEqual([]);
  });

  test("while a second history() read is pending: null and released", async () => {
    const s = setup({ recentPerChannel: 2 });
    const { socket, joining, read: first } = await joiningSince(s, { offset: 0, epoch: "e1" });
    s.broker.publish(CH, 10);
    first.resolve(s.broker.page(0, 2));
    const second = await s.broker.histories.next();
    s.transport.close(socket);
    s.broker.answerHistory(second);

    expect(await joining).toBeNull();
    expect(socket.frames).toEqual([]);
    expect(s.broker.unwatched).toEqual([CH]);
  });

  test("while position() is pending, with another subscriber staying: released but still watched", async () => {
    const s = setup();
    const stays = await joined(s);
    const socket = new FakeSocket();
    const joining = s.hub.join(socket, CH, null);
    const position = await s.broker.positions.next();
    s.transport.close(socket);
    position.resolve({ epoch: "e1", offset: 0 });

    expect(await joining).toBeNull();
    expect(s.hub.subscriptionsByKind()).toEqual({ user: 1 });
    expect(s.broker.unwatched).toEqual([]);
    s.broker.publish(CH, 1);
    expect(stays.offsets(CH)).toEqual([1]);
  });
});

describe("live delivery", () => {
  test("one publish per event whatever the subscriber count, with the stored frame text as is", async () => {
    const s = setup();
    const sockets = [await joined(s), await joined(s), await joined(s)];
    s.clock.t += 40;
    s.broker.append(CH, 2);
    s.clock.t += 5;
    s.broker.deliverThrough(CH);

    expect(s.transport.published.map((p) => p.data)).toEqual(s.broker.stored.map((e) => e.frame));
    for (const socket of sockets) expect(socket.offsets(CH)).toEqual([1, 2]);
    expect(s.fanouts).toEqual([
      { events: 1, subscribers: 3, latencyMs: 5 },
      { events: 1, subscribers: 3, latencyMs: 5 },
    ]);
  });

  test("backpressure reported by the transport is passed on once per delivery; no subscriber, no publish", async () => {
    const s = setup();
    s.broker.publish(CH, 1);
    expect(s.transport.published).toEqual([]);
    await joined(s);
    s.transport.outcome = -1;
    s.broker.publish(CH, 2);
    expect(s.backpressure()).toBe(2);
  });

  test("an epoch change under live subscribers sends each one subscribed frame with epoch_changed", async () => {
    const s = setup();
    const a = await joined(s);
    const b = await joined(s);
    s.broker.publish(CH, 2);
    s.broker.resetEpoch("e2");
    s.broker.publish(CH, 1);

    const told = { type: "subscribed", channel: CH, epoch: "e2", offset: 0, recovered: false, reason: NotRecoveredReason.EpochChanged };
    for (const socket of [a, b]) {
      expect(socket.frames.slice(1).map((f) => (f.type === "event" ? f.offset : f))).toEqual([1, 2, told, 1]);
    }
    expect(s.transport.published.filter((p) => p.data.includes('"subscribed"'))).toHaveLength(1);
    expect(s.hub.epochOf(CH)).toBe("e2");
    expect(s.hub.deliveredTop(CH)).toBe(1);
  });

  test("critical events are confirmed by acks with times from the injected clock", async () => {
    const s = setup();
    await joined(s);
    s.broker.publish(CH, 2, { critical: true });
    s.clock.t += 250;
    expect(s.hub.oldestUnacked(CH, 0)).toEqual({ ts: s.clock.t - 250, count: 2 });
    expect(s.hub.acked(CH, 0, 1)).toEqual({ confirmed: 1, totalMs: 250, samplesMs: [250] });
    expect(s.hub.oldestUnacked(CH, 1)).toEqual({ ts: s.clock.t - 250, count: 1 });
  });
});

describe("leaving", () => {
  test("the last leave unwatches; only an engine that delivers every channel keeps its buffer", async () => {
    for (const deliversAll of [true, false]) {
      const s = setup({ deliversAll });
      const a = await joined(s);
      const b = await joined(s);
      s.broker.publish(CH, 2);
      s.hub.leave(a, CH);
      expect(s.broker.unwatched).toEqual([]);
      s.hub.leave(b, CH);

      expect(s.broker.unwatched).toEqual([CH]);
      expect(s.hub.subscriptionsByKind()).toEqual({});
      expect(s.hub.bufferStats().channels).toBe(deliversAll ? 1 : 0);
      s.broker.publish(CH, 1);
      expect([a.offsets(CH), b.offsets(CH)]).toEqual([
        [1, 2],
        [1, 2],
      ]);
    }
  });

  test("a closed socket is not unsubscribed, only released", async () => {
    const s = setup();
    const socket = await joined(s);
    const unsubscribe = s.transport.unsubscribe;
    let unsubscribed = 0;
    s.transport.unsubscribe = (sock, topic) => {
      unsubscribed++;
      unsubscribe(sock, topic);
    };
    s.transport.close(socket);
    s.hub.leave(socket, CH);
    expect(unsubscribed).toBe(0);
    expect(s.broker.unwatched).toEqual([CH]);
  });
});

test("joining before a transport is attached is a TypeError", async () => {
  const broker = new FakeBroker({ deliversAll: true, now: () => 0 });
  const hub = new Hub<FakeSocket>({ engine: broker, now: () => 0, recentPerChannel: 10, memoryCapBytes: 1 << 20, replayLimit: 10 });
  await expect(hub.join(new FakeSocket(), CH, null)).rejects.toThrow(new TypeError("Cannot join: the hub has no transport attached"));
});

describe("membership (presence counts)", () => {
  test("is reported once per completed join and once per leave, never for a join abandoned by a closed socket, never per publish", async () => {
    const s = setup();
    const a = await joined(s);
    const b = await joined(s);
    expect(s.memberships).toEqual([[a, CH, 1], [b, CH, 1]]);
    s.broker.publish(CH, 3);
    expect(a.offsets(CH)).toEqual([1, 2, 3]);
    expect(s.memberships).toHaveLength(2);
    s.hub.leave(a, CH);
    expect(s.memberships.at(-1)).toEqual([a, CH, -1]);

    const closing = new FakeSocket();
    const joining = s.hub.join(closing, CH, null);
    closing.closed = true;
    (await s.broker.positions.next()).resolve({ epoch: s.broker.epoch, offset: s.broker.top });
    expect(await joining).toBeNull();
    expect(s.memberships).toHaveLength(3);
  });
});
