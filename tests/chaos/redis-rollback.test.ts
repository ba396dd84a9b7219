/**
 * Chaos: Redis restarts from an older RDB snapshot after acknowledging more critical events
 * (issue #14 item 1). Without fencing, new publishes got 200 at offsets 101.. under the old epoch
 * and subscribers dropped them as already seen. Now the node that saw the lost writes fences Redis
 * on reconnect: the channel moves to a new epoch whose offsets continue above the surviving top,
 * live subscribers and `since` resumes are told `epoch_changed`, and no (epoch, offset) names two
 * events.
 */
import { expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { connectWelcomed } from "../helpers/client.ts";
import { spawnCourier } from "../helpers/process.ts";
import { describeRedis } from "../redis-env.ts";
import { nodeLogged, publishEvent, readHistory, scenarioCleanup, userToken } from "./node-http.ts";
import { createLedger } from "./publish-ledger.ts";
import { redisDir, startRedis } from "./redis-server.ts";

const run = randomUUID().slice(0, 8);
const { children, clients } = scenarioCleanup();

describeRedis("chaos: Redis rolls back to an older snapshot", () => {
  test("RDB snapshot, 100 more critical 200s, kill -9, restart: new epoch, no offset reused", async () => {
    const dir = redisDir();
    const args = ["--save", "", "--appendonly", "no"];
    let redis = await startRedis({ dir, args });
    const node = await spawnCourier({ COURIER_REDIS_URL: redis.url, COURIER_NODE_ID: `rollback-${run}` });
    children.push(node);
    const channel = `public:rollback-${run}`;
    const ledger = createLedger("redis rollback (RDB)");
    const sub = await connectWelcomed(`${node.ws}?token=${await userToken(`sub-${run}`)}`);
    clients.push(sub);
    const subscribed = await sub.request({ type: "subscribe", channel });
    const publishMany = async (from: number, count: number) => {
      for (let i = from; i < from + count; i++) expect((await publishEvent(node.http, channel, `ev-${i}`, { ledger })).status).toBe(200);
    };

    await publishMany(0, 100);
    expect(await redis.cli("SAVE")).toBe("OK");
    await publishMany(100, 100);
    await sub.collect((f) => f.type === "event", 200);
    const oldEpoch = subscribed.epoch;
    expect(ledger.acks.map((a) => a.epoch)).toEqual(Array(200).fill(oldEpoch));

    await redis.kill9();
    redis = await startRedis({ dir, port: redis.port, args });
    expect(await redis.cli("HGET", `courier:{${channel}}:m`, "t")).toBe("100"); // the snapshot's top
    // The node saw watermarks Redis no longer has: its reconnect fences the dataset.
    await nodeLogged(node, /redis lost acknowledged writes/);

    // The first publish after the restart already gets the new epoch, above the surviving top.
    const first = await publishEvent(node.http, channel, "ev-200", { ledger });
    expect(first.status).toBe(200);
    expect(first.body.epoch).not.toBe(oldEpoch);
    expect(first.body.offset).toBe(101);
    console.log(`[chaos] redis rollback: first publish after restart: offset ${first.body.offset} under a new epoch (old ${oldEpoch}, new ${first.body.epoch})`);
    await publishMany(201, 49);

    // Live subscriber: told before the first event of the new epoch, then gets every new event.
    const changed = await sub.next((f) => f.type === "subscribed" && f.reason === "epoch_changed");
    expect(changed).toMatchObject({ channel, epoch: first.body.epoch, recovered: false, offset: 100 });
    const after = await sub.collect((f) => f.type === "event" && sub.frames.indexOf(f) > sub.frames.indexOf(changed), 50);
    expect(after.map((e) => e.offset)).toEqual(Array.from({ length: 50 }, (_, i) => 101 + i));

    // A resume from the old epoch is told, and replays nothing.
    const resumer = await connectWelcomed(`${node.ws}?token=${await userToken(`resume-${run}`)}`);
    clients.push(resumer);
    const resumed = await resumer.request({ type: "subscribe", channel, since: { offset: 200, epoch: oldEpoch } });
    expect(resumed).toMatchObject({ recovered: false, reason: "epoch_changed", epoch: first.body.epoch });

    const history = await readHistory(node.http, channel);
    expect(history.epoch).toBe(first.body.epoch!);
    const counts = ledger.check({ subscribers: [sub.frames, resumer.frames], history: new Map([[channel, history]]) });
    expect(counts).toEqual({ acked: 250, lost: 0, historyMissing: 0, duplicated: 0, outOfOrder: 0, reusedOffsets: 0, epochChanged: 100 });
  }, 30_000);
});
