/**
 * The Redis engine against a real Redis (`COURIER_REDIS_URL`; see `redis-env.ts`): the shared engine
 * contract, then what only a cluster has: two nodes on one Redis, lost pub/sub messages, a killed
 * subscriber connection, Redis going away and coming back, a node crash freeing its slots.
 * Every key lives under a prefix unique to this run and is deleted afterwards.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { createRedisEngine, type RedisEngine, type RedisEngineOptions } from "../src/engine/redis-engine.ts";
import { StoreUnavailableError, type PublishItem, type StoredEvent } from "../src/engine/types.ts";
import { frameHalves, parseMessage, readPublishReply } from "../src/engine/redis-codec.ts";
import { redisKeys } from "../src/engine/redis-keys.ts";
import { eventFrame } from "../src/protocol/serializer.ts";
import { engineContract } from "./contract/engine-contract.ts";
import { deleteKeys, describeRedis } from "./redis-env.ts";
import { redisProxy } from "./chaos/redis-proxy.ts";

const PREFIX = `courier-test-${crypto.randomUUID().slice(0, 8)}:`;
const T0 = 1_800_000_000_000;
const BASE = { historySize: 100, historyTtlMs: 60_000, criticalRetentionMs: 3_600_000, idempotencyTtlMs: 300_000 };

/** Records `deliver` calls; `until` resolves once a channel has seen `offset`. */
function deliveries() {
  const calls: { channel: string; events: StoredEvent[] }[] = [];
  /** The epoch passed with each call, by index. */
  const epochs: (string | undefined)[] = [];
  const waiters: { ready: () => boolean; resolve: () => void }[] = [];
  const top = (channel: string) => Math.max(0, ...calls.filter((c) => c.channel === channel).flatMap((c) => c.events.map((e) => e.offset)));
  const when = (ready: () => boolean): Promise<void> => {
    if (ready()) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    waiters.push({ ready, resolve });
    return promise;
  };
  return {
    calls,
    epochs,
    deliver(channel: string, events: StoredEvent[], epoch?: string) {
      calls.push({ channel, events });
      epochs.push(epoch);
      for (const w of waiters.splice(0)) (w.ready() ? w.resolve() : waiters.push(w));
    },
    /** Resolves once `channel` has seen `offset`. */
    until: (channel: string, offset: number) => when(() => top(channel) >= offset),
    /** Resolves once `ready()` holds after some delivery. */
    when,
    offsets: (channel: string) => calls.filter((c) => c.channel === channel).flatMap((c) => c.events.map((e) => e.offset)),
  };
}

function item(channel: string, extra: Partial<PublishItem> = {}): PublishItem {
  return { channel, event: "step", dataJson: '{"n":1}', critical: false, ...extra };
}

const unique = (p: string) => `${p}${crypto.randomUUID().slice(0, 8)}`;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);


// Pure codec checks: they run with or without Redis.
describe("redis codec", () => {
  const parts = { channel: "job:j-1", event: "tool_completed", dataJson: '{"t":"é 🎉\\n"}', critical: true };

  test("frame halves around the offset rebuild eventFrame byte for byte", () => {
    for (const critical of [true, false]) {
      const [prefix, suffix] = frameHalves({ ...parts, critical }, 42);
      for (const offset of [1, 9, 10, 123_456_789]) {
        expect(prefix + offset + suffix).toBe(eventFrame({ ...parts, critical, offset, ts: 42 }));
      }
    }
  });

  test("a pub/sub message of several records parses back, frames with newlines and all", () => {
    // Built the way the publish script concatenates its records.
    const record = (offset: number, critical: boolean, coalesce: string | null, dataJson: string) => {
      const frame = eventFrame({ channel: "job:j", offset, event: "e", dataJson, critical, ts: 5 });
      return `${offset}\n${critical ? 1 : 0}\n5\ne\n${coalesce === null ? "" : JSON.stringify(coalesce)}\n${frame.length}\n${frame}`;
    };
    const message = "e1 42\n" + record(7, false, null, '{\n "a": "\\n"\n}') + record(8, true, "k|\n🎉", '"🎉"');
    expect(parseMessage("job:j", message)).toMatchObject({ epoch: "e1", watermark: 42 });
    expect(parseMessage("job:j", message).events.map((e) => [e.offset, e.critical, e.coalesce, e.ts, JSON.parse(e.frame).offset])).toEqual([
      [7, false, null, 5, 7],
      [8, true, "k|\n🎉", 5, 8],
    ]);
    expect(() => parseMessage("job:j", "e1 3\n1\n0\n5\ne\n\n99\n{}")).toThrow(SyntaxError);
    expect(() => parseMessage("job:j", "e1")).toThrow(SyntaxError);
    expect(() => parseMessage("job:j", "e1 x\n")).toThrow(SyntaxError);
    // A node of the previous version sends no watermark.
    expect(parseMessage("job:j", "e1\n" + record(7, false, null, "1"))).toMatchObject({ epoch: "e1", watermark: null, events: [{ offset: 7 }] });
  });

  test("the publish reply maps to outcomes, duplicates keeping their first epoch", () => {
    expect(readPublishReply("user:a", ["e2", "17", "4", "", "1", "e1"])).toEqual({
      watermark: 17,
      outcomes: [
        { channel: "user:a", offset: 4, epoch: "e2", duplicate: false },
        { channel: "user:a", offset: 1, epoch: "e1", duplicate: true },
      ],
    });
  });

  test("keys of a channel share its hash tag; a prefix with braces is refused", () => {
    const k = redisKeys("c:").channel("user:a");
    expect(Object.values(k).every((key) => key.startsWith("c:{user:a}:"))).toBe(true);
    expect(() => redisKeys("c{x}:")).toThrow(RangeError);
  });
});

describeRedis("redis engine", (url) => {
  const admin = new RedisClient(url, { enableOfflineQueue: false, connectionTimeout: 2_000, autoReconnect: false });

  beforeAll(async () => {
    // Fail at once, with the reason, instead of every test timing out (CI=true must not skip).
    const ok = await Promise.race([admin.connect().then(() => admin.send("PING", [])).catch(() => null), Bun.sleep(2_000).then(() => null)]);
    if (ok !== "PONG") throw new Error(`Redis tests need a Redis at ${url}; none answered PING`);
  });

  afterAll(async () => {
    if (!admin.connected) return;
    admin.close();
    await deleteKeys(url, PREFIX);
  });

  // Each contract engine gets its own prefix: trim() walks every channel of its store, and the
  // contract counts what one engine's trim dropped.
  let made = 0;
  engineContract(
    "redis",
    async (opts) => {
      const keyPrefix = `${PREFIX}c${++made}:`;
      return {
        engine: createRedisEngine({ ...opts, url, nodeId: "contract", keyPrefix }),
        cleanup: async () => {},
        // Persistent state: a channel key without a TTL (a read's key expires unless a publish keeps it).
        channelStored: async (channel) => {
          const probe = new RedisClient(url);
          try {
            const keys = redisKeys(keyPrefix).channelList(redisKeys(keyPrefix).channel(channel));
            for (const key of keys) if (Number(await probe.send("PTTL", [key])) === -1) return true;
            return false;
          } finally {
            probe.close();
          }
        },
      };
    },
    { channelStored: true },
  );

  const open: RedisEngine[] = [];
  afterEach(async () => {
    for (const e of open.splice(0)) await e.close();
  });

  /** A started node; nodes made with the same `space` share one store. */
  async function node(nodeId: string, space: string, extra: Partial<RedisEngineOptions> = {}) {
    const clock = { now: T0 };
    const d = deliveries();
    const engine = createRedisEngine({ ...BASE, now: () => clock.now, url, nodeId, keyPrefix: `${PREFIX}${space}:`, log: process.env.DEBUG_REDIS ? (l, m, f) => console.log(nodeId, l, m, f) : undefined, ...extra });
    open.push(engine);
    await engine.start(d.deliver);
    return { engine, d, clock };
  }

  async function clientId(name: string): Promise<string> {
    const list = (await admin.send("CLIENT", ["LIST"])) as string;
    const line = list.split("\n").find((l) => l.includes(` name=${name} `));
    if (!line) throw new Error(`No Redis client named ${name} in:\n${list}`);
    return /^id=(\d+)/.exec(line)![1]!;
  }

  test("frames stay byte-identical to eventFrame through Lua, pub/sub and history, whatever the data", async () => {
    const space = unique("s");
    const { engine, d, clock } = await node("a", space);
    const ch = unique("job:");
    await engine.watch(ch);
    clock.now = T0 + 7;
    const data = [`{\n  "text": "héllo 世界 🎉 \\u0000 \\"q\\" |\\n|"\n}`, '"a\\nb"', "null", JSON.stringify({ big: "x".repeat(100_000) })];
    const items = data.map((dataJson, i) => item(ch, { event: `e.${i}`, dataJson, critical: i % 2 === 1, coalesce: i === 2 ? "ké\n|y" : undefined }));
    await engine.publish(items);
    await d.until(ch, 4);
    const expected = data.map((dataJson, i): StoredEvent => ({
      channel: ch,
      offset: i + 1,
      event: `e.${i}`,
      critical: i % 2 === 1,
      coalesce: i === 2 ? "ké\n|y" : null,
      ts: T0 + 7,
      frame: eventFrame({ channel: ch, offset: i + 1, event: `e.${i}`, dataJson, critical: i % 2 === 1, ts: T0 + 7 }),
    }));
    expect(d.calls).toEqual([{ channel: ch, events: expected }]);
    expect((await engine.history(ch, 0, 10)).events).toEqual(expected);
  });

  test("a publish through node A is delivered on node B, and on A only while A watches", async () => {
    const space = unique("s");
    const a = await node("a", space);
    const b = await node("b", space);
    const ch = unique("public:");
    const other = unique("public:");
    expect(await b.engine.watch(ch)).toBe(0);
    await a.engine.watch(other);
    const [out] = await a.engine.publish([item(ch, { event: "hello" })]);
    await b.d.until(ch, 1);
    expect(b.d.calls).toEqual([{ channel: ch, events: [expect.objectContaining({ offset: 1, event: "hello" })] }]);
    expect(out).toEqual({ channel: ch, offset: 1, epoch: (await b.engine.position(ch)).epoch, duplicate: false });
    // A barrier on a channel A watches: had A delivered `ch`, it would have by now.
    await b.engine.publish([item(other)]);
    await a.d.until(other, 1);
    expect(a.d.calls.map((c) => c.channel)).toEqual([other]);
  });

  test("watch resolves with W; later events arrive once, in order; unwatch stops delivery", async () => {
    const space = unique("s");
    const a = await node("a", space);
    const b = await node("b", space);
    const ch = unique("user:");
    const barrier = unique("user:");
    await a.engine.publish([item(ch), item(ch)]);
    const w = await b.engine.watch(ch);
    expect(w).toBe(2);
    expect(await b.engine.watch(ch)).toBe(2);
    for (let i = 0; i < 5; i++) await a.engine.publish([item(ch), item(ch)]);
    await b.d.until(ch, 12);
    expect(b.d.offsets(ch)).toEqual(range(3, 12));
    b.engine.unwatch(ch);
    await b.engine.watch(barrier);
    await a.engine.publish([item(ch)]);
    await a.engine.publish([item(barrier)]);
    await b.d.until(barrier, 1);
    expect(b.d.offsets(ch)).toEqual(range(3, 12));
  });

  test("a pub/sub message lost on the way is recovered from the stream before newer events", async () => {
    const space = unique("s");
    const a = await node("a", space);
    const ch = unique("job:");
    await a.engine.watch(ch);
    await a.engine.publish([item(ch)]);
    await a.d.until(ch, 1);
    // Store offset 2 as the publish script would, but without its PUBLISH: the message is "lost".
    const base = `${PREFIX}${space}:{${ch}}:`;
    const frame = eventFrame({ channel: ch, offset: 2, event: "lost", dataJson: "1", critical: false, ts: T0 });
    await admin.send("XADD", [base + "n", "2-0", "t", String(T0), "e", "lost", "f", frame]);
    await admin.send("HSET", [base + "m", "t", "2"]);
    await a.engine.publish([item(ch, { event: "after" })]);
    await a.d.until(ch, 3);
    // The sync reads the stream from offset 1, so 2 and 3 may arrive in one call; order is what counts.
    expect(a.d.calls.flatMap((c) => c.events.map((e) => [e.offset, e.event]))).toEqual([[1, "step"], [2, "lost"], [3, "after"]]);
  });

  test("a channel lost under a watch (eviction, Redis restart) gets a new epoch and delivery goes on", async () => {
    const space = unique("s");
    const a = await node("a", space);
    const b = await node("b", space);
    const ch = unique("job:");
    await b.engine.watch(ch);
    const [first] = await a.engine.publish([item(ch), item(ch), item(ch)]);
    await b.d.until(ch, 3);
    const base = `${PREFIX}${space}:{${ch}}:`;
    await admin.send("DEL", [base + "m", base + "n", base + "c", base + "k"]);
    const [again] = await a.engine.publish([item(ch, { event: "reborn" })]);
    expect(again).toEqual({ channel: ch, offset: 1, epoch: expect.any(String), duplicate: false });
    expect(again!.epoch).not.toBe(first!.epoch);
    await b.d.when(() => b.d.calls.some((c) => c.events.some((e) => e.event === "reborn")));
    expect(b.d.offsets(ch)).toEqual([1, 2, 3, 1]);
  });

  /** Logs of a node that tests can wait on: `logged(msg)` resolves at its first such line. */
  function logWatch() {
    const seen: string[] = [];
    const waiters: { msg: string; resolve: () => void }[] = [];
    return {
      log: (_level: string, msg: string) => {
        seen.push(msg);
        for (const w of waiters.splice(0)) (w.msg === msg ? w.resolve() : waiters.push(w));
      },
      logged: (msg: string) => (seen.includes(msg) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ msg, resolve }))),
    };
  }

  /** Makes Redis forget the channel's events above `keep` (as an older snapshot would). */
  async function rollBack(space: string, ch: string, keep: number, opts: { watermarkBy: number }) {
    const base = `${PREFIX}${space}:{${ch}}:`;
    for (const stream of [base + "n", base + "c"]) {
      const kept = (await admin.send("XRANGE", [stream, "-", `${keep}-0`])) as [string, string[]][];
      await admin.send("DEL", [stream]);
      for (const [id, fields] of kept) await admin.send("XADD", [stream, id, ...fields]);
    }
    await admin.send("HSET", [base + "m", "t", String(keep)]);
    if (opts.watermarkBy > 0) await admin.send("HINCRBY", [`${PREFIX}${space}:fence`, "w", String(-opts.watermarkBy)]);
  }

  test("Redis went back: the first publish of a node that saw more moves the channel to a new epoch above the surviving top", async () => {
    const space = unique("s");
    const a = await node("a", space);
    const ch = unique("job:");
    await a.engine.watch(ch);
    const [first] = await a.engine.publish(range(1, 10).map(() => item(ch)));
    await a.d.until(ch, 10);
    await rollBack(space, ch, 6, { watermarkBy: 1 });
    const [next] = await a.engine.publish([item(ch, { event: "after" })]);
    expect(next).toMatchObject({ offset: 7, duplicate: false });
    expect(next!.epoch).not.toBe(first!.epoch);
    await a.d.when(() => a.d.calls.some((c) => c.events.some((e) => e.event === "after")));
    expect(a.d.calls.at(-1)!.events.map((e) => e.offset)).toEqual([7]);
    expect(a.d.epochs.at(-1)).toBe(next!.epoch);
    // Every later call, from any node, stays in the new epoch.
    const other = await node("o", space);
    expect((await other.engine.position(ch)).epoch).toBe(next!.epoch);
  });

  test("channels from before fences keep their epoch on an upgrade, but not after a loss", async () => {
    const space = unique("s");
    const a = await node("a", space);
    const [ch1, ch2] = [unique("job:"), unique("job:")];
    const [one, two] = await a.engine.publish([item(ch1), item(ch2)]);
    const meta = (ch: string) => `${PREFIX}${space}:{${ch}}:m`;
    const fence = `${PREFIX}${space}:fence`;
    // What the previous version left: no fence, no generation on the channels.
    await admin.send("DEL", [fence]);
    for (const ch of [ch1, ch2]) await admin.send("HDEL", [meta(ch), "g", "b"]);
    const upgraded = await node("upgraded", space);
    expect(await upgraded.engine.position(ch1)).toEqual({ epoch: one!.epoch, offset: 1 });
    // The same state reached by losing the fence, seen by a node that knew more: a new epoch.
    await admin.send("DEL", [fence]);
    expect((await a.engine.position(ch2)).epoch).not.toBe(two!.epoch);
  });

  /**
   * Node `a` watches a channel a publisher filled to 10; Redis then forgets 7..10 (and the dataset
   * watermark by `watermarkBy`); `fresh`, started after, knows no watermark.
   */
  async function watchedThenRolledBack(watermarkBy: number) {
    const space = unique("s");
    const watch = logWatch();
    const a = await node("a", space, { log: watch.log });
    const ch = unique("job:");
    await a.engine.watch(ch);
    const publisher = await node("p", space);
    const [first] = await publisher.engine.publish(range(1, 10).map(() => item(ch)));
    await a.d.until(ch, 10);
    await rollBack(space, ch, 6, { watermarkBy });
    const fresh = await node("fresh", space);
    /** Publishes "after" through `fresh`; checks `a` gets it alone, under the epoch it was answered with. */
    const after = async () => {
      const [next] = await fresh.engine.publish([item(ch, { event: "after" })]);
      expect(next!.epoch).not.toBe(first!.epoch);
      await a.d.when(() => a.d.calls.some((c) => c.events.some((e) => e.event === "after")));
      expect(a.d.calls.at(-1)!.events.map((e) => e.offset)).toEqual([next!.offset]);
      expect(a.d.epochs.at(-1)).toBe(next!.epoch);
      return next!;
    };
    return { ch, first: first!, fresh, watch, after };
  }

  test("a node that never saw the lost writes publishes into them: a watching node sees the watermark go back and fences", async () => {
    const { ch, first, fresh, watch, after } = await watchedThenRolledBack(1);
    // The residual window: a fresh node knows no watermark, so its first publish reuses offset 7.
    const [reused] = await fresh.engine.publish([item(ch, { event: "reused" })]);
    expect(reused).toMatchObject({ offset: 7, epoch: first.epoch });
    await watch.logged("redis pub/sub watermark went back: Redis lost acknowledged writes");
    await watch.logged("redis lost acknowledged writes: every channel moves to a new epoch");
    await watch.logged("channel epoch changed under a watch");
    expect((await after()).offset).toBe(8);
  });

  test("a channel back below what a watching node delivered, under the same epoch, takes a new epoch", async () => {
    // The dataset watermark is intact: only the channel's top tells.
    const { ch, fresh, watch, after } = await watchedThenRolledBack(0);
    await fresh.engine.publish([item(ch, { event: "reused" })]);
    await watch.logged("channel epoch changed under a watch");
    await after();
  });

  test("killing the subscriber connection loses nothing: it resubscribes and catches up", async () => {
    const space = unique("s");
    const a = await node("a", space);
    let resubscribed = Promise.withResolvers<void>();
    const b = await node(unique("b"), space, { log: (_l, msg) => msg === "redis resubscribed" && resubscribed.resolve() });
    const ch = unique("job:");
    await b.engine.watch(ch);
    await a.engine.publish([item(ch)]);
    await b.d.until(ch, 1);
    for (let round = 0; round < 3; round++) {
      resubscribed = Promise.withResolvers<void>();
      await admin.send("CLIENT", ["KILL", "ID", await clientId(`courier:${b.engine.nodeId}:sub`)]);
      // Published while the subscriber is gone or not yet resubscribed: pub/sub drops these.
      for (let i = 0; i < 10; i++) await a.engine.publish([item(ch)]);
      await resubscribed.promise;
    }
    await b.d.until(ch, 31);
    expect(b.d.offsets(ch)).toEqual(range(1, 31));
    // And live delivery works again after the last reconnect, not only the catch-up.
    const [last] = await a.engine.publish([item(ch)]);
    await b.d.until(ch, last!.offset);
    expect(b.d.offsets(ch)).toEqual(range(1, 32));
  }, 20_000);

  test("Redis down: check and publish reject with StoreUnavailableError fast; back up, delivery resumes", async () => {
    const space = unique("s");
    const proxy = redisProxy(new URL(url));
    proxy.up();
    const reconnected = { sub: Promise.withResolvers<void>() };
    let downSince = 0;
    const log = (_level: string, msg: string, fields?: object) => {
      if (downSince > 0 && msg === "redis connected" && (fields as { connection?: string })?.connection === "subscriber") reconnected.sub.resolve();
    };
    const b = await node("b", space, { url: `redis://127.0.0.1:${proxy.port}`, log });
    const direct = await node("direct", space);
    const ch = unique("job:");
    await b.engine.watch(ch);
    await direct.engine.publish([item(ch)]);
    await b.d.until(ch, 1);

    proxy.down();
    downSince = performance.now();
    const t = performance.now();
    const results = await Promise.allSettled([b.engine.check(), b.engine.publish([item(ch)]), b.engine.history(ch, 0, 10)]);
    expect(performance.now() - t).toBeLessThan(1_500);
    for (const r of results) expect(r).toEqual({ status: "rejected", reason: expect.any(StoreUnavailableError) });
    // Published elsewhere while this node cannot hear.
    for (let i = 0; i < 5; i++) await direct.engine.publish([item(ch)]);

    proxy.up();
    await reconnected.sub.promise;
    await b.d.until(ch, 6);
    const [next] = await direct.engine.publish([item(ch)]);
    await b.d.until(ch, next!.offset);
    expect(b.d.offsets(ch)).toEqual(range(1, 7));
    await b.engine.check();
    proxy.down();
  }, 30_000);

  test("Redis hanging: every command gives up after the command timeout", async () => {
    const proxy = redisProxy(new URL(url));
    proxy.up();
    const { engine } = await node("hang", unique("s"), { url: `redis://127.0.0.1:${proxy.port}`, commandTimeoutMs: 300 });
    const ch = unique("job:");
    await engine.publish([item(ch)]);
    proxy.stall();
    const t = performance.now();
    const results = await Promise.allSettled([engine.check(), engine.publish([item(ch)]), engine.position(ch), engine.acquireConnection("u", 3)]);
    const elapsed = performance.now() - t;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1_000);
    for (const r of results) expect(r).toEqual({ status: "rejected", reason: expect.any(StoreUnavailableError) });
    // The publish was sent and may still run: its outcome is unknown, and it says so.
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ outcomeUnknown: true });
    proxy.down();
  });

  test("with nothing listening, start carries on, and check and publish reject within the command timeout", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const engine = createRedisEngine({ ...BASE, now: Date.now, url: `redis://127.0.0.1:${port}`, nodeId: "nowhere", keyPrefix: `${PREFIX}x:`, connectTimeoutMs: 300 });
    open.push(engine);
    await engine.start(() => {});
    const t = performance.now();
    const results = await Promise.allSettled([engine.check(), engine.publish([item("job:x")]), engine.watch("job:x")]);
    expect(performance.now() - t).toBeLessThan(1_500);
    for (const r of results) expect(r).toEqual({ status: "rejected", reason: expect.any(StoreUnavailableError) });
    // Never sent: certainly nothing was stored.
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ outcomeUnknown: false });
  });

  test("the per-user limit holds across nodes; a closed node frees its slots at once", async () => {
    const space = unique("s");
    const a = await node("a", space);
    const b = await node("b", space);
    const u = unique("u");
    expect(await a.engine.acquireConnection(u, 3)).toBe(true);
    expect(await b.engine.acquireConnection(u, 3)).toBe(true);
    expect(await a.engine.acquireConnection(u, 3)).toBe(true);
    expect(await b.engine.acquireConnection(u, 3)).toBe(false);
    await b.engine.releaseConnection(u);
    expect(await a.engine.acquireConnection(u, 3)).toBe(true);
    expect(await b.engine.acquireConnection(u, 3)).toBe(false);
    await a.engine.close();
    expect([await b.engine.acquireConnection(u, 3), await b.engine.acquireConnection(u, 3), await b.engine.acquireConnection(u, 3)]).toEqual([true, true, true]);
    expect(await b.engine.acquireConnection(u, 3)).toBe(false);
  });

  test("a crashed node's slots stop counting once its heartbeat expires", async () => {
    const space = unique("s");
    const u = unique("u");
    const src = `
      import { createRedisEngine } from ${JSON.stringify(new URL("../src/engine/redis-engine.ts", import.meta.url).pathname)};
      const e = createRedisEngine({ ...${JSON.stringify(BASE)}, now: Date.now, url: ${JSON.stringify(url)}, nodeId: "crashy",
        keyPrefix: ${JSON.stringify(`${PREFIX}${space}:`)}, heartbeatTtlMs: 600 });
      await e.start(() => {});
      console.log(await e.acquireConnection(${JSON.stringify(u)}, 2), await e.acquireConnection(${JSON.stringify(u)}, 2));
      setInterval(() => {}, 1000);
    `;
    const child = Bun.spawn(["bun", "-e", src], { stdout: "pipe", stderr: "inherit" });
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value)).toBe("true true\n");
    const b = await node("b", space);
    expect(await b.engine.acquireConnection(u, 2)).toBe(false);
    child.kill("SIGKILL");
    await child.exited;
    expect(await b.engine.acquireConnection(u, 2)).toBe(false);
    // The refusal says when the dead node's slots lapse (Redis gives no event for it): waiting
    // exactly that long is enough, which is what makes the 429's Retry-After honest.
    const hintMs = b.engine.connectionRetryAfterMs!(u)!;
    expect(hintMs).toBeGreaterThan(0);
    expect(hintMs).toBeLessThanOrEqual(600);
    expect(b.engine.connectionRetryAfterMs!(u)).toBeUndefined(); // read once
    await Bun.sleep(hintMs);
    expect(await b.engine.acquireConnection(u, 2)).toBe(true);
    expect(await b.engine.acquireConnection(u, 2)).toBe(true);
    expect(await b.engine.acquireConnection(u, 2)).toBe(false);
  }, 15_000);

  test("waitReplicas: a critical publish no replica confirms answers outcome unknown within the command timeout", async () => {
    const { engine } = await node("lonely", unique("s"), { waitReplicas: 1, commandTimeoutMs: 300 });
    const ch = unique("job:");
    expect(await engine.publish([item(ch)])).toEqual([expect.objectContaining({ offset: 1 })]); // not critical: no WAIT
    const t = performance.now();
    await expect(engine.publish([item(ch, { critical: true })])).rejects.toMatchObject({ name: "StoreUnavailableError", outcomeUnknown: true });
    expect(performance.now() - t).toBeLessThan(300 + 250 + 100);
    // It is on the primary all the same: the outcome really was unknown, not "nothing stored".
    expect((await engine.history(ch, 0, 10)).events.map((e) => e.offset)).toEqual([1, 2]);
  });

  test("a node judged dead writes its counts back on its next heartbeat", async () => {
    const space = unique("s");
    const a = await node("a", space, { heartbeatTtlMs: 300 });
    const b = await node("b", space);
    const u = unique("u");
    const hash = `${PREFIX}${space}:{conn}:u:${u}`;
    expect([await a.engine.acquireConnection(u, 2), await a.engine.acquireConnection(u, 2)]).toEqual([true, true]);
    const [member] = Object.keys((await admin.send("HGETALL", [hash])) as Record<string, string>);
    // What other nodes do once A's heartbeat lapses (a partition, a long stall).
    await admin.send("ZREM", [`${PREFIX}${space}:{conn}:nodes`, member!]);
    await admin.send("HDEL", [hash, member!]);
    // No event tells when A's next heartbeat lands: poll, bounded well past its 100 ms interval.
    let restored: string | null = null;
    for (const deadline = performance.now() + 3_000; restored === null && performance.now() < deadline; ) {
      restored = (await admin.send("HGET", [hash, member!])) as string | null;
      if (restored === null) await Bun.sleep(20);
    }
    expect(restored).toBe("2");
    expect(await b.engine.acquireConnection(u, 2)).toBe(false);
    await a.engine.releaseConnection(u);
    expect(await b.engine.acquireConnection(u, 2)).toBe(true);
  });

  test("critical events survive any count bound; the publish-time bound raises trimmedThrough", async () => {
    const space = unique("s");
    const { engine } = await node("a", space, { historySize: 5, trimSlack: 5 });
    const ch = unique("job:");
    await engine.publish([item(ch, { critical: true })]);
    for (let i = 0; i < 10; i++) await engine.publish([item(ch)]);
    // 10 non-critical stored: at the cap (5 + 5), not past it.
    expect((await engine.history(ch, 0, 100)).events.map((e) => e.offset)).toEqual(range(1, 11));
    await engine.publish([item(ch)]);
    const page = await engine.history(ch, 0, 100);
    expect(page.events.map((e) => e.offset)).toEqual([1, ...range(8, 12)]);
    expect(page.trimmedThrough).toBe(7);
  });

  test("trim works through large backlogs in bounded steps", async () => {
    const space = unique("s");
    const { engine } = await node("a", space, { historySize: 10, trimSlack: 0 });
    const ch = unique("job:");
    for (let i = 0; i < 5; i++) await engine.publish(Array.from({ length: 500 }, () => item(ch)));
    expect(await engine.trim(T0)).toEqual({ dropped: 2_490 });
    const page = await engine.history(ch, 0, 100);
    expect(page.events.map((e) => e.offset)).toEqual(range(2_491, 2_500));
    expect(page.trimmedThrough).toBe(2_490);
  });

  test("one node at a time trims; the lease passes on when its holder closes", async () => {
    const space = unique("s");
    const a = await node("a", space, { historySize: 2, trimSlack: 0 });
    const b = await node("b", space, { historySize: 2, trimSlack: 0 });
    const ch = unique("job:");
    await a.engine.publish([item(ch), item(ch), item(ch)]);
    expect(await a.engine.trim(T0)).toEqual({ dropped: 1 });
    await a.engine.publish([item(ch)]);
    expect(await b.engine.trim(T0)).toEqual({ dropped: 0 });
    expect((await b.engine.history(ch, 0, 10)).events.map((e) => e.offset)).toEqual([2, 3, 4]);
    await a.engine.close();
    expect(await b.engine.trim(T0)).toEqual({ dropped: 1 });
    expect((await b.engine.history(ch, 0, 10)).events.map((e) => e.offset)).toEqual([3, 4]);
  });

  test("an idempotency key used twice across channels in one batch answers the first", async () => {
    const space = unique("s");
    const { engine } = await node("a", space);
    const x = unique("user:x");
    const y = unique("user:y");
    const key = unique("k");
    const out = await engine.publish([item(x, { idempotencyKey: key }), item(y, { idempotencyKey: key }), item(y)]);
    expect(out).toEqual([
      { channel: x, offset: 1, epoch: out[0]!.epoch, duplicate: false },
      { channel: x, offset: 1, epoch: out[0]!.epoch, duplicate: true },
      { channel: y, offset: 1, epoch: out[2]!.epoch, duplicate: false },
    ]);
  });

  test("cluster stats list every live node's report and drop expired ones", async () => {
    const space = unique("s");
    const a = await node("a", space);
    const b = await node("b", space);
    await a.engine.reportStats({ connections: 3 }, 60_000);
    await b.engine.reportStats({ connections: 5 }, 60_000);
    expect(await a.engine.clusterStats()).toEqual([
      { node: "a", stats: { connections: 3 } },
      { node: "b", stats: { connections: 5 } },
    ]);
    await b.engine.reportStats({ connections: 6 }, 1);
    // Server time moves on by itself; a poll bounded in time waits out the 1 ms (20 polls took less
    // than 1 ms on a fast machine).
    let stats = await a.engine.clusterStats();
    for (const until = performance.now() + 2_000; stats.length > 1 && performance.now() < until; ) stats = await a.engine.clusterStats();
    expect(stats).toEqual([{ node: "a", stats: { connections: 3 } }]);
  });
});
