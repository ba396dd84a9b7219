/**
 * Chaos: Redis is killed (`kill -9`) after acknowledging 200 critical events and restarts from
 * what it persisted (issue #14 item 1), with each persistence mode:
 * - RDB snapshot taken after 100: the restart forgets 101..200. Before the fence, new publishes
 *   got 200 at offsets 101.. under the old epoch and subscribers dropped them as already seen.
 *   Now the node that saw the lost writes fences Redis on reconnect: the channel moves to a new
 *   epoch whose offsets continue above the surviving top, live subscribers and `since` resumes are
 *   told `epoch_changed`, and no (epoch, offset) names two events.
 * - AOF with `appendfsync always`: nothing is lost, so nothing changes (no false alarm).
 * - No persistence: everything is lost; the channel starts over in a new epoch, subscribers told.
 */
import { expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { describeRedis } from "../redis-env.ts";
import { nodeReady, publishEvent, publishMany, readHistory, scenarioCleanup } from "./node-http.ts";
import { createLedger } from "./publish-ledger.ts";
import { redisDir, startRedis, type PrivateRedis } from "./redis-server.ts";

const run = randomUUID().slice(0, 8);
const scenario = scenarioCleanup();

/**
 * A node on a private Redis started with `args`, a live subscriber, 100 critical publishes,
 * `between` (e.g. SAVE), 100 more (all delivered), then `kill -9` and a restart in the same dir.
 */
async function crashAfter200(name: string, args: string[], between: (redis: PrivateRedis) => Promise<void>) {
  const dir = redisDir();
  let redis = await startRedis({ dir, args });
  const node = await scenario.node(redis.url, `${name}-${run}`);
  const channel = `public:${name}-${run}`;
  const ledger = createLedger(`redis restart (${name})`);
  const { client: sub, subscribed } = await scenario.subscriber(node, `sub-${run}`, channel);
  const oldEpoch = subscribed.epoch as string;
  const publishSome = (from: number, count: number) => publishMany(node.http, channel, from, count, ledger);
  await publishSome(0, 100);
  await between(redis);
  await publishSome(100, 100);
  await sub.collect((f) => f.type === "event", 200);
  expect(ledger.acks.map((a) => a.epoch)).toEqual(Array(200).fill(oldEpoch));
  await redis.kill9();
  redis = await startRedis({ dir, port: redis.port, args });
  /** The final check: the subscriber and another client that resumes by `since` from before the crash. */
  const check = async (expected: { epochChanged: number }) => {
    const { client: resumer, subscribed: resumed } = await scenario.subscriber(node, `resume-${run}`, channel, { offset: 200, epoch: oldEpoch });
    if (expected.epochChanged > 0) expect(resumed).toMatchObject({ recovered: false, reason: "epoch_changed" });
    else expect(resumed).toMatchObject({ recovered: true });
    const history = await readHistory(node.http, channel);
    const counts = ledger.check({ subscribers: [sub.frames, resumer.frames], history: new Map([[channel, history]]) });
    expect(counts).toEqual({ acked: counts.acked, lost: 0, historyMissing: 0, duplicated: 0, outOfOrder: 0, reusedOffsets: 0, ...expected });
  };
  return { redis, node, channel, ledger, sub, oldEpoch, publishSome, check };
}

describeRedis("chaos: Redis restarts with less than it acknowledged", () => {
  test("RDB snapshot after 100, 100 more critical 200s, kill -9, restart: new epoch above 100, no offset reused", async () => {
    const s = await crashAfter200("rdb", ["--save", "", "--appendonly", "no"], async (redis) => expect(await redis.cli("SAVE")).toBe("OK"));
    expect(await s.redis.cli("HGET", `courier:{${s.channel}}:m`, "t")).toBe("100"); // the snapshot's top
    // The node saw watermarks Redis no longer has: its reconnect fences the dataset.
    await s.node.printed(/redis lost acknowledged writes/, 10_000);

    // The first publish after the restart already gets the new epoch, above the surviving top.
    const first = await publishEvent(s.node.http, s.channel, "ev-200", { ledger: s.ledger });
    expect(first.status).toBe(200);
    expect(first.body.epoch).not.toBe(s.oldEpoch);
    expect(first.body.offset).toBe(101);
    console.log(`[chaos] redis rollback: first publish after restart: offset ${first.body.offset} under a new epoch (old ${s.oldEpoch}, new ${first.body.epoch})`);
    await s.publishSome(201, 49);

    // Live subscriber: told before the first event of the new epoch, then gets every new event.
    const changed = await s.sub.next((f) => f.type === "subscribed" && f.reason === "epoch_changed");
    expect(changed).toMatchObject({ channel: s.channel, epoch: first.body.epoch, recovered: false, offset: 100 });
    const after = await s.sub.collect((f) => f.type === "event" && s.sub.frames.indexOf(f) > s.sub.frames.indexOf(changed), 50);
    expect(after.map((e) => e.offset)).toEqual(Array.from({ length: 50 }, (_, i) => 101 + i));
    await s.check({ epochChanged: 100 });
  }, 20_000);

  test("AOF appendfsync always: kill -9 loses nothing, and nothing changes", async () => {
    const s = await crashAfter200("aof", ["--save", "", "--appendonly", "yes", "--appendfsync", "always"], async () => {});
    await nodeReady(s.node);
    const next = await publishEvent(s.node.http, s.channel, "ev-200", { ledger: s.ledger });
    expect(next.body).toMatchObject({ epoch: s.oldEpoch, offset: 201 });
    await s.sub.next((f) => f.type === "event" && f.offset === 201);
    expect(s.node.output()).not.toMatch(/redis lost acknowledged writes/);
    await s.check({ epochChanged: 0 });
  }, 20_000);

  test("no persistence: kill -9 loses everything; the channel starts over in a new epoch, subscribers told", async () => {
    const s = await crashAfter200("none", ["--save", "", "--appendonly", "no"], async () => {});
    await s.node.printed(/redis lost acknowledged writes/, 10_000);
    const first = await publishEvent(s.node.http, s.channel, "ev-200", { ledger: s.ledger });
    expect(first.body.offset).toBe(1);
    expect(first.body.epoch).not.toBe(s.oldEpoch);
    const changed = await s.sub.next((f) => f.type === "subscribed" && f.reason === "epoch_changed");
    expect(changed).toMatchObject({ epoch: first.body.epoch, offset: 0 });
    await s.sub.next((f) => f.type === "event" && f.data.id === "ev-200");
    await s.check({ epochChanged: 200 });
  }, 20_000);
});
