/**
 * The one contract every engine passes (PROTOCOL.md §5 and `src/engine/types.ts`): register it from
 * an engine's test file with a factory. The suite starts each engine with its own `deliver`, closes
 * it, then calls `cleanup`. It assumes nothing about timing: deliveries are awaited, never expected
 * synchronously. Time comes only from `opts.now`, so an engine must judge every age (history,
 * retention, idempotency window, session expiry) by that clock, never by its store's own.
 * Channel and user names carry a random suffix, so a shared store (Redis) may be reused.
 *
 * @example
 * engineContract("embedded", async (opts) => {
 *   const dataDir = await mkdtemp(join(tmpdir(), "courier-"));
 *   return { engine: createEmbeddedEngine({ ...opts, dataDir }), cleanup: () => rm(dataDir, { recursive: true }) };
 * });
 */
import { afterEach, describe, expect, test } from "bun:test";
import { eventFrame } from "../../src/protocol/serializer.ts";
import type { Engine, EngineOptions, PublishItem, StoredEvent } from "../../src/engine/types.ts";
import { streamCases } from "./stream-cases.ts";

export type MakeEngine = (opts: EngineOptions) => Promise<{
  engine: Engine;
  cleanup: () => Promise<void>;
  /**
   * Whether the engine's store holds persistent state for `channel` (a row, a key), read beside
   * the engine as an operator would. Engines whose test gives it run the "reads store nothing" case.
   */
  channelStored?: (channel: string) => Promise<boolean>;
}>;

const T0 = 1_800_000_000_000;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Small limits so trimming is observable with a handful of events. */
const BASE: Omit<EngineOptions, "now"> = {
  historySize: 3,
  historyTtlMs: MINUTE,
  criticalRetentionMs: HOUR,
  idempotencyTtlMs: 5 * MINUTE,
};

/** Records `deliver` calls; `until` resolves once a channel has received up to a given offset. */
function deliveries() {
  const calls: { channel: string; events: StoredEvent[] }[] = [];
  const waiters: { channel: string; offset: number; resolve: () => void }[] = [];
  const top = (channel: string) => {
    let max = 0;
    for (const c of calls) if (c.channel === channel) for (const e of c.events) max = Math.max(max, e.offset);
    return max;
  };
  return {
    calls,
    deliver(channel: string, events: StoredEvent[]) {
      calls.push({ channel, events });
      for (const w of waiters.splice(0)) {
        if (top(w.channel) >= w.offset) w.resolve();
        else waiters.push(w);
      }
    },
    until(channel: string, offset: number): Promise<void> {
      if (top(channel) >= offset) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      waiters.push({ channel, offset, resolve });
      return promise;
    },
    of(channel: string) {
      return calls.filter((c) => c.channel === channel).map((c) => c.events.map((e) => e.offset));
    },
  };
}

function unique(prefix: string): string {
  return `${prefix}${crypto.randomUUID().slice(0, 8)}`;
}

function item(channel: string, event = "step", extra: Partial<PublishItem> = {}): PublishItem {
  return { channel, event, dataJson: '{"n":1}', critical: false, ...extra };
}

/**
 * Registers the engine contract suite under `describe(name)`. `abilities.channelStored`: the
 * factory gives a `channelStored` probe, so the "reads store nothing" case runs (skipped otherwise).
 *
 * @example
 * engineContract("redis", async (opts) => ({ engine: createRedisEngine({ ...opts, url }), cleanup: async () => {} }));
 */
export function engineContract(name: string, make: MakeEngine, abilities: { channelStored?: boolean } = {}): void {
  const open: (() => Promise<void>)[] = [];

  /** A started engine with a clock the test moves by hand. */
  async function setup(overrides: Partial<Omit<EngineOptions, "now">> = {}) {
    const clock = { now: T0 };
    const { engine, cleanup, channelStored } = await make({ ...BASE, ...overrides, now: () => clock.now });
    const d = deliveries();
    await engine.start(d.deliver);
    open.push(async () => {
      await engine.close();
      await cleanup();
    });
    return { engine, clock, d, channelStored };
  }

  async function offsets(engine: Engine, channel: string, after = 0, limit = 1000) {
    return (await engine.history(channel, after, limit)).events.map((e) => e.offset);
  }

  describe(`${name} engine contract`, () => {
    afterEach(async () => {
      for (const close of open.splice(0)) await close();
    });

    describe("offsets and epochs", () => {
      test("a new channel has an epoch and offset 0, and the epoch is stable", async () => {
        const { engine } = await setup();
        const ch = unique("user:a");
        const first = await engine.position(ch);
        expect(first.offset).toBe(0);
        expect(first.epoch).toBeString();
        expect(first.epoch.length).toBeGreaterThan(0);
        expect(await engine.position(ch)).toEqual(first);
        const [out] = await engine.publish([item(ch)]);
        expect(out).toEqual({ channel: ch, offset: 1, epoch: first.epoch, duplicate: false });
        expect(await engine.position(ch)).toEqual({ epoch: first.epoch, offset: 1 });
      });

      test("publish gives consecutive offsets from 1 per channel, in item order", async () => {
        const { engine } = await setup();
        const ch = unique("job:");
        const a = await engine.publish([item(ch), item(ch), item(ch)]);
        const b = await engine.publish([item(ch)]);
        expect([...a, ...b].map((o) => o.offset)).toEqual([1, 2, 3, 4]);
        expect(new Set([...a, ...b].map((o) => o.epoch)).size).toBe(1);
      });

      test("channels are independent streams, also within one publish", async () => {
        const { engine } = await setup();
        const x = unique("public:x");
        const y = unique("public:y");
        await engine.publish([item(x)]);
        const out = await engine.publish([item(y), item(x), item(y), item(x)]);
        expect(out.map((o) => [o.channel, o.offset])).toEqual([[y, 1], [x, 2], [y, 2], [x, 3]]);
        expect((await engine.position(x)).offset).toBe(3);
        expect((await engine.position(y)).offset).toBe(2);
      });

      test("publishes made in the same turn still get consecutive offsets in call order", async () => {
        const { engine } = await setup();
        const ch = unique("job:");
        const all = await Promise.all([engine.publish([item(ch)]), engine.publish([item(ch), item(ch)]), engine.publish([item(ch)])]);
        expect(all.map((outs) => outs.map((o) => o.offset))).toEqual([[1], [2, 3], [4]]);
      });
    });

    describe("delivery", () => {
      test("deliver gets one call per channel per publish, events in offset order", async () => {
        const { engine, d } = await setup();
        const x = unique("user:x");
        const y = unique("user:y");
        await engine.watch(x);
        await engine.watch(y);
        await engine.publish([item(x, "a"), item(y, "b"), item(x, "c"), item(x, "d")]);
        await Promise.all([d.until(x, 3), d.until(y, 1)]);
        expect(d.of(x)).toEqual([[1, 2, 3]]);
        expect(d.of(y)).toEqual([[1]]);
        expect(d.calls.find((c) => c.channel === x)!.events.map((e) => e.event)).toEqual(["a", "c", "d"]);
      });

      test("delivered and stored events carry the frame built once at publish", async () => {
        const { engine, clock, d } = await setup();
        const ch = unique("job:");
        await engine.watch(ch);
        clock.now = T0 + 1234;
        await engine.publish([{ channel: ch, event: "tool_completed", dataJson: '{"ok":true}', critical: true }]);
        await d.until(ch, 1);
        const expected: StoredEvent = {
          channel: ch,
          offset: 1,
          event: "tool_completed",
          critical: true,
          coalesce: null,
          ts: T0 + 1234,
          frame: eventFrame({ channel: ch, offset: 1, event: "tool_completed", dataJson: '{"ok":true}', critical: true, ts: T0 + 1234 }),
        };
        expect(d.calls.find((c) => c.channel === ch)!.events).toEqual([expected]);
        expect((await engine.history(ch, 0, 10)).events).toEqual([expected]);
      });

      test("watch resolves with the top after which every event is delivered", async () => {
        const { engine, d } = await setup();
        const ch = unique("user:");
        expect(await engine.watch(ch)).toBe(0);
        await engine.publish([item(ch), item(ch)]);
        const other = unique("user:");
        await engine.publish([item(other)]);
        expect(await engine.watch(other)).toBe(1);
        await engine.publish([item(other)]);
        await d.until(other, 2);
        expect(d.of(other).flat()).toContain(2);
        engine.unwatch(ch);
        expect(await engine.watch(ch)).toBe(2);
        engine.unwatch(ch);
        engine.unwatch(other);
      });

      test("deliversAll says whether a channel this node does not watch reaches deliver", async () => {
        const { engine, d } = await setup();
        const quiet = unique("user:");
        const watched = unique("user:");
        await engine.watch(watched);
        await engine.publish([item(quiet)]);
        await engine.publish([item(watched)]);
        await d.until(watched, 1);
        if (engine.deliversAll) await d.until(quiet, 1);
        expect({ deliversAll: engine.deliversAll, quietDelivered: d.of(quiet).length > 0 }).toEqual({ deliversAll: engine.deliversAll, quietDelivered: engine.deliversAll });
        engine.unwatch(watched);
      });

      test("successive publishes are delivered in offset order", async () => {
        const { engine, d } = await setup();
        const ch = unique("user:");
        await engine.watch(ch);
        for (let i = 0; i < 5; i++) await engine.publish([item(ch)]);
        await d.until(ch, 5);
        expect(d.of(ch).flat()).toEqual([1, 2, 3, 4, 5]);
      });
    });

    describe("history", () => {
      test("history answers events after an offset, oldest first, at most limit", async () => {
        const { engine } = await setup({ historySize: 100 });
        const ch = unique("job:");
        const out = await engine.publish(Array.from({ length: 10 }, () => item(ch)));
        const epoch = out[0]!.epoch;
        const all = await engine.history(ch, 0, 100);
        expect({ ...all, events: all.events.map((e) => e.offset) }).toEqual({
          epoch,
          offset: 10,
          trimmedThrough: 0,
          events: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        });
        expect(await offsets(engine, ch, 3, 4)).toEqual([4, 5, 6, 7]);
        expect(await offsets(engine, ch, 8, 100)).toEqual([9, 10]);
        expect(await offsets(engine, ch, 10, 100)).toEqual([]);
        expect(await offsets(engine, ch, 0, 1)).toEqual([1]);
      });

      test("history of an unknown channel is empty and answers a stable epoch", async () => {
        const { engine } = await setup();
        const ch = unique("public:");
        const page = await engine.history(ch, 0, 10);
        expect(page).toEqual({ epoch: expect.any(String), offset: 0, events: [], trimmedThrough: 0 });
        expect(await engine.position(ch)).toEqual({ epoch: page.epoch, offset: 0 });
        const [out] = await engine.publish([item(ch)]);
        expect(out).toEqual({ channel: ch, offset: 1, epoch: page.epoch, duplicate: false });
      });

      // Issue 14 §7: any user token can read any public name; one stored row per name is a leak.
      test.skipIf(!abilities.channelStored)("reading or watching unknown channels stores nothing; the first publish does", async () => {
        const { engine, channelStored } = await setup();
        if (channelStored === undefined) throw new TypeError("engineContract: channelStored ability declared but no probe given");
        const names = Array.from({ length: 20 }, () => unique("public:read-"));
        for (const ch of names) {
          await engine.position(ch);
          await engine.history(ch, 0, 10);
          await engine.watch(ch);
          engine.unwatch(ch);
        }
        const stored = await Promise.all(names.map((ch) => channelStored(ch)));
        expect(stored.filter(Boolean)).toEqual([]);
        await engine.publish([item(names[0]!)]);
        expect(await channelStored(names[0]!)).toBe(true);
      });
    });

    describe("coalescing", () => {
      test("history keeps only the latest event per coalesce key; others keep their offsets", async () => {
        const { engine } = await setup({ historySize: 100 });
        const ch = unique("job:");
        await engine.publish([item(ch, "progress", { coalesce: "p" })]);
        await engine.publish([item(ch, "log")]);
        await engine.publish([item(ch, "progress", { coalesce: "p" })]);
        await engine.publish([item(ch, "status", { coalesce: "s" })]);
        await engine.publish([item(ch, "progress", { coalesce: "p" })]);
        const page = await engine.history(ch, 0, 100);
        expect(page.events.map((e) => [e.offset, e.coalesce])).toEqual([[2, null], [4, "s"], [5, "p"]]);
        expect(page.offset).toBe(5);
        expect(page.trimmedThrough).toBe(0);
        const [next] = await engine.publish([item(ch)]);
        expect(next!.offset).toBe(6);
      });

      test("coalescing inside one publish keeps the last, and never crosses channels", async () => {
        const { engine } = await setup({ historySize: 100 });
        const x = unique("job:x");
        const y = unique("job:y");
        await engine.publish([item(y, "progress", { coalesce: "p" })]);
        await engine.publish([item(x, "progress", { coalesce: "p" }), item(x, "progress", { coalesce: "p" }), item(x, "done")]);
        expect(await offsets(engine, x)).toEqual([2, 3]);
        expect(await offsets(engine, y)).toEqual([1]);
        expect((await engine.history(x, 0, 10)).trimmedThrough).toBe(0);
      });
    });

    describe("trimming", () => {
      test("trim by count drops old non-critical events, keeps critical ones, raises trimmedThrough", async () => {
        const { engine } = await setup({ historySize: 3 });
        const ch = unique("job:");
        // c n n n c n n n n: the newest 3 are non-critical, so "newest 3 events" and "newest 3 non-critical" agree.
        const crit = [1, 5];
        for (let i = 1; i <= 9; i++) await engine.publish([item(ch, "e", { critical: crit.includes(i) })]);
        const { dropped } = await engine.trim(T0);
        expect(dropped).toBe(4);
        const page = await engine.history(ch, 0, 100);
        expect(page.events.map((e) => e.offset)).toEqual([1, 5, 7, 8, 9]);
        expect(page.trimmedThrough).toBe(6);
        expect(page.offset).toBe(9);
        expect((await engine.trim(T0)).dropped).toBe(0);
      });

      test("a later trim drops only what became old since the last one", async () => {
        const { engine } = await setup({ historySize: 2 });
        const ch = unique("job:");
        await engine.publish(Array.from({ length: 5 }, () => item(ch)));
        expect(await engine.trim(T0)).toEqual({ dropped: 3 });
        await engine.publish([item(ch), item(ch, "e", { critical: true }), item(ch), item(ch)]);
        expect(await engine.trim(T0)).toEqual({ dropped: 3 });
        const page = await engine.history(ch, 0, 100);
        expect(page.events.map((e) => e.offset)).toEqual([7, 8, 9]);
        expect(page.trimmedThrough).toBe(6);
      });

      test("critical events are never dropped by count", async () => {
        const { engine } = await setup({ historySize: 3 });
        const ch = unique("job:");
        await engine.publish(Array.from({ length: 10 }, () => item(ch, "agent_thinking", { critical: true })));
        await engine.trim(T0);
        expect(await offsets(engine, ch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        expect((await engine.history(ch, 0, 1)).trimmedThrough).toBe(0);
      });

      test("trim by age drops non-critical past historyTtl, critical only past retention", async () => {
        const { engine, clock } = await setup({ historySize: 100 });
        const ch = unique("job:");
        await engine.publish([item(ch), item(ch, "e", { critical: true }), item(ch)]);
        clock.now = T0 + MINUTE / 2;
        await engine.publish([item(ch)]);

        expect((await engine.trim(T0 + MINUTE - 1)).dropped).toBe(0);
        expect(await engine.trim(T0 + MINUTE + 1)).toEqual({ dropped: 2 });
        let page = await engine.history(ch, 0, 100);
        expect(page.events.map((e) => e.offset)).toEqual([2, 4]);
        expect(page.trimmedThrough).toBe(3);

        expect(await engine.trim(T0 + HOUR - 1)).toEqual({ dropped: 1 });
        expect(await offsets(engine, ch)).toEqual([2]);
        expect(await engine.trim(T0 + HOUR + 1)).toEqual({ dropped: 1 });
        page = await engine.history(ch, 0, 100);
        expect(page).toEqual({ epoch: page.epoch, offset: 4, events: [], trimmedThrough: 4 });

        const [next] = await engine.publish([item(ch)]);
        expect(next).toEqual({ channel: ch, offset: 5, epoch: page.epoch, duplicate: false });
      });

      test("coalescing does not raise trimmedThrough, trimming does", async () => {
        const { engine } = await setup({ historySize: 2 });
        const ch = unique("job:");
        for (let i = 0; i < 4; i++) await engine.publish([item(ch, "progress", { coalesce: "p" })]);
        expect((await engine.history(ch, 0, 10)).trimmedThrough).toBe(0);
        await engine.publish([item(ch), item(ch)]);
        await engine.trim(T0);
        const page = await engine.history(ch, 0, 10);
        expect(page.events.map((e) => e.offset)).toEqual([5, 6]);
        expect(page.trimmedThrough).toBe(4);
      });
    });

    describe("idempotency", () => {
      test("a repeated key answers the first outcome and stores nothing new", async () => {
        const { engine, d } = await setup();
        const ch = unique("user:");
        const key = unique("key-");
        await engine.watch(ch);
        const [first] = await engine.publish([item(ch, "a", { idempotencyKey: key })]);
        const [again] = await engine.publish([item(ch, "b", { idempotencyKey: key, dataJson: '"other"' })]);
        expect(first).toEqual({ channel: ch, offset: 1, epoch: first!.epoch, duplicate: false });
        expect(again).toEqual({ ...first!, duplicate: true });
        // A later event as a barrier: once it is delivered, a delivery of the duplicate would have been too.
        const [barrier] = await engine.publish([item(ch, "c")]);
        expect(barrier!.offset).toBe(2);
        await d.until(ch, 2);
        expect(d.of(ch).flat()).toEqual([1, 2]);
        expect((await engine.history(ch, 0, 10)).events.map((e) => e.event)).toEqual(["a", "c"]);
      });

      test("the same key twice in one publish or in one turn stores one event", async () => {
        const { engine } = await setup();
        const ch = unique("user:");
        const k1 = unique("key-");
        const k2 = unique("key-");
        const inOne = await engine.publish([item(ch, "a", { idempotencyKey: k1 }), item(ch, "b", { idempotencyKey: k1 })]);
        expect(inOne.map((o) => [o.offset, o.duplicate])).toEqual([[1, false], [1, true]]);
        const [p, q] = await Promise.all([
          engine.publish([item(ch, "c", { idempotencyKey: k2 })]),
          engine.publish([item(ch, "d", { idempotencyKey: k2 })]),
        ]);
        expect([p![0]!.offset, q![0]!.offset]).toEqual([2, 2]);
        expect([p![0]!.duplicate, q![0]!.duplicate].sort()).toEqual([false, true]);
        expect(await offsets(engine, ch)).toEqual([1, 2]);
      });

      test("keys are global: a key reused on another channel answers the first channel's outcome", async () => {
        const { engine } = await setup();
        const x = unique("user:x");
        const y = unique("user:y");
        const key = unique("key-");
        const [first] = await engine.publish([item(x, "a", { idempotencyKey: key })]);
        const [again] = await engine.publish([item(y, "a", { idempotencyKey: key })]);
        expect(again).toEqual({ ...first!, duplicate: true });
        expect((await engine.position(y)).offset).toBe(0);
      });

      test("a key expires after idempotencyTtl", async () => {
        const { engine, clock } = await setup();
        const ch = unique("user:");
        const key = unique("key-");
        await engine.publish([item(ch, "a", { idempotencyKey: key })]);
        clock.now = T0 + BASE.idempotencyTtlMs - 1;
        expect((await engine.publish([item(ch, "a", { idempotencyKey: key })]))[0]!.duplicate).toBe(true);
        clock.now = T0 + BASE.idempotencyTtlMs + 1;
        await engine.trim(clock.now);
        const [fresh] = await engine.publish([item(ch, "a", { idempotencyKey: key })]);
        expect(fresh).toEqual({ channel: ch, offset: 2, epoch: fresh!.epoch, duplicate: false });
      });
    });

    describe("connection slots", () => {
      test("acquire takes up to max slots per user; release frees one", async () => {
        const { engine } = await setup();
        const u = unique("u");
        const other = unique("u");
        expect([await engine.acquireConnection(u, 2), await engine.acquireConnection(u, 2), await engine.acquireConnection(u, 2)]).toEqual([
          true,
          true,
          false,
        ]);
        expect(await engine.acquireConnection(other, 2)).toBe(true);
        await engine.releaseConnection(u);
        expect(await engine.acquireConnection(u, 2)).toBe(true);
        expect(await engine.acquireConnection(u, 2)).toBe(false);
      });

      test("releasing more than acquired never goes below zero", async () => {
        const { engine } = await setup();
        const u = unique("u");
        await engine.releaseConnection(u);
        await engine.releaseConnection(u);
        expect(await engine.acquireConnection(u, 1)).toBe(true);
        expect(await engine.acquireConnection(u, 1)).toBe(false);
      });
    });

    describe("sessions", () => {
      const state = (user: string) => ({ user, channels: { "user:a": { epoch: "e1", from: 3, acked: 5 } } });

      test("a saved session loads until deleted", async () => {
        const { engine } = await setup();
        const id = unique("s");
        expect(await engine.loadSession(id)).toBeNull();
        await engine.saveSession(id, state("a"), MINUTE);
        expect(await engine.loadSession(id)).toEqual(state("a"));
        await engine.saveSession(id, state("b"), MINUTE);
        expect(await engine.loadSession(id)).toEqual(state("b"));
        await engine.deleteSession(id);
        expect(await engine.loadSession(id)).toBeNull();
      });

      test("a session expires after its ttl by the engine clock", async () => {
        const { engine, clock } = await setup();
        const id = unique("s");
        await engine.saveSession(id, state("a"), 1000);
        clock.now = T0 + 999;
        expect(await engine.loadSession(id)).toEqual(state("a"));
        clock.now = T0 + 1001;
        expect(await engine.loadSession(id)).toBeNull();
      });
    });

    describe("records", () => {
      test("a record reads back until it expires by the engine clock; a put replaces it", async () => {
        const { engine, clock } = await setup();
        const key = unique("job");
        expect(await engine.getRecord(key)).toBeNull();
        await engine.putRecord(key, "alice", 1000);
        expect(await engine.getRecord(key)).toBe("alice");
        await engine.putRecord(key, "bob|with|bars", 1000);
        expect(await engine.getRecord(key)).toBe("bob|with|bars");
        clock.now = T0 + 999;
        expect(await engine.getRecord(key)).toBe("bob|with|bars");
        clock.now = T0 + 1001;
        expect(await engine.getRecord(key)).toBeNull();
      });
    });

    streamCases(() => setup());

    describe("health", () => {
      test("check resolves on a started engine", async () => {
        const { engine } = await setup();
        expect(await engine.check()).toBeUndefined();
      });
    });
  });
}
