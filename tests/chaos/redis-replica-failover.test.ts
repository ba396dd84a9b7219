/**
 * Chaos: the Redis primary dies and a replica is promoted (issue #14 item 1).
 * - `cluster.waitReplicas: 1`: a critical publish answers 200 only once a replica holds it
 *   (`WAIT`), so after `kill -9` of the primary and `REPLICAOF NO ONE` on the replica, a node
 *   pointed at the replica has every critical event that was ever answered 200. With no replica
 *   left to confirm, a publish answers 503 "outcome unknown" instead of a 200 a failover could lose.
 * - `waitReplicas: 0` and a replica that lagged, behind a stable address: the node that saw the
 *   lost writes fences the promoted replica on reconnect, so the channel moves to a new epoch
 *   instead of handing out the lost offsets again.
 */
import { expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { OUTCOME_UNKNOWN_MESSAGE } from "../../src/engine/types.ts";
import { describeRedis } from "../redis-env.ts";
import { publishEvent, publishMany, readHistory, scenarioCleanup } from "./node-http.ts";
import { createLedger } from "./publish-ledger.ts";
import { redisDir, startRedis } from "./redis-server.ts";

const run = randomUUID().slice(0, 8);
const scenario = scenarioCleanup();

const NO_PERSISTENCE = ["--save", "", "--appendonly", "no"];

describeRedis("chaos: failover to a replica", () => {
  test("waitReplicas 1: kill -9 the primary, promote the replica: every critical 200 is there", async () => {
    const primary = await startRedis({ dir: redisDir(), args: NO_PERSISTENCE });
    const replica = await startRedis({ dir: redisDir(), args: [...NO_PERSISTENCE, "--replicaof", "127.0.0.1", String(primary.port)] });
    await replica.logged(/MASTER <-> REPLICA sync: Finished with success/);
    const [waiting, plain] = await Promise.all([
      scenario.node(primary.url, `wait-${run}`, { COURIER_CLUSTER__WAIT_REPLICAS: "1" }),
      scenario.node(primary.url, `plain-${run}`),
    ]);
    const channel = `public:failover-${run}`;
    const ledger = createLedger("redis replica failover (waitReplicas 1)");
    const { client: sub } = await scenario.subscriber(waiting, `sub-${run}`, channel);

    // Publishes in flight when the primary dies: each either 200 (then on the replica) or 503.
    const latency = { waiting: [] as number[], plain: [] as number[] };
    let answered503 = 0;
    const burst = async (i: number) => {
      const t0 = performance.now();
      const answer = await publishEvent(waiting.http, channel, `ev-${i}`, { ledger });
      latency.waiting.push(performance.now() - t0);
      if (answer.status === 503) answered503++;
      else expect(answer.status).toBe(200);
      const t1 = performance.now();
      // The same publish without WAIT, on another channel, for the cost of waiting.
      expect((await publishEvent(plain.http, `public:plain-${run}`, `p-${i}`)).status).toBe(200);
      latency.plain.push(performance.now() - t1);
    };
    for (let i = 0; i < 100; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => burst(i + j)));
    const mean = (xs: number[]) => (xs.reduce((s, x) => s + x, 0) / xs.length).toFixed(2);
    console.log(`[chaos] replica failover: mean publish latency ${mean(latency.waiting)} ms with WAIT 1, ${mean(latency.plain)} ms without (10 concurrent, local replica)`);
    const inFlight = Promise.all(Array.from({ length: 20 }, (_, j) => publishEvent(waiting.http, channel, `ev-${100 + j}`, { ledger })));
    await primary.kill9();
    const late = await inFlight;
    answered503 += late.filter((a) => a.status === 503).length;
    for (const a of late) expect([200, 503]).toContain(a.status);

    expect(await replica.cli("REPLICAOF", "NO", "ONE")).toBe("OK");
    for (const n of [waiting, plain]) n.kill("SIGKILL");
    const promoted = await scenario.node(replica.url, `promoted-${run}`, { COURIER_CLUSTER__WAIT_REPLICAS: "1" });

    const history = await readHistory(promoted.http, channel);
    const counts = ledger.check({ subscribers: [sub.frames], history: new Map([[channel, history]]) });
    console.log(`[chaos] replica failover: ${counts.acked} critical 200s, ${answered503} answered 503 while the primary died`);
    expect(counts).toEqual({ acked: counts.acked, lost: 0, historyMissing: 0, duplicated: 0, outOfOrder: 0, reusedOffsets: 0, epochChanged: 0 });
    expect(counts.acked).toBeGreaterThanOrEqual(100);

    // The promoted replica has no replica of its own: a critical publish cannot be confirmed.
    const unconfirmed = await publishEvent(promoted.http, channel, "unconfirmed");
    expect(unconfirmed.status).toBe(503);
    expect(unconfirmed.body).toEqual({ error: "unavailable", message: OUTCOME_UNKNOWN_MESSAGE });
  }, 30_000);

  test("waitReplicas 0, a replica that lagged, failover behind a stable address: new epoch, no offset reused", async () => {
    const primary = await startRedis({ dir: redisDir(), args: NO_PERSISTENCE });
    const replica = await startRedis({ dir: redisDir(), args: [...NO_PERSISTENCE, "--replicaof", "127.0.0.1", String(primary.port)] });
    await replica.logged(/MASTER <-> REPLICA sync: Finished with success/);
    const proxy = scenario.proxy(primary.url);
    const node = await scenario.node(proxy.url, `lag-${run}`);
    const channel = `public:lag-${run}`;
    const ledger = createLedger("redis failover to a lagging replica (waitReplicas 0)");
    const { client: sub, subscribed } = await scenario.subscriber(node, `lag-${run}`, channel);
    const oldEpoch = subscribed.epoch as string;
    await publishMany(node.http, channel, 0, 50, ledger);
    expect(await primary.cli("WAIT", "1", "5000")).toBe("1"); // the replica has the first 50
    expect(await replica.cli("REPLICAOF", "NO", "ONE")).toBe("OK"); // and from now on lags
    await publishMany(node.http, channel, 50, 50, ledger);
    await sub.collect((f) => f.type === "event", 100);

    await primary.kill9();
    proxy.retarget(new URL(replica.url));
    await node.printed(/redis lost acknowledged writes/, 10_000);
    const first = await publishEvent(node.http, channel, "ev-100", { ledger });
    expect(first.body).toMatchObject({ offset: 51 });
    expect(first.body.epoch).not.toBe(oldEpoch);
    const changed = await sub.next((f) => f.type === "subscribed" && f.reason === "epoch_changed");
    expect(changed).toMatchObject({ epoch: first.body.epoch, offset: 50, recovered: false });
    await sub.next((f) => f.type === "event" && f.data.id === "ev-100");

    const history = await readHistory(node.http, channel);
    const counts = ledger.check({ subscribers: [sub.frames], history: new Map([[channel, history]]) });
    expect(counts).toEqual({ acked: 101, lost: 0, historyMissing: 0, duplicated: 0, outOfOrder: 0, reusedOffsets: 0, epochChanged: 50 });
  }, 20_000);
});
