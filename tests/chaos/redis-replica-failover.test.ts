/**
 * Chaos: the Redis primary dies and a replica is promoted (issue #14 item 1, `cluster.waitReplicas`).
 * With `waitReplicas: 1` a critical publish answers 200 only once a replica holds it (`WAIT`), so
 * after `kill -9` of the primary and `REPLICAOF NO ONE` on the replica, a node pointed at the
 * replica has every critical event that was ever answered 200. With no replica left to confirm,
 * a publish answers 503 "outcome unknown" instead of a 200 that a failover could lose.
 */
import { expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { OUTCOME_UNKNOWN_MESSAGE } from "../../src/engine/types.ts";
import { connectWelcomed } from "../helpers/client.ts";
import { spawnCourier } from "../helpers/process.ts";
import { describeRedis } from "../redis-env.ts";
import { publishEvent, readHistory, scenarioCleanup, userToken } from "./node-http.ts";
import { createLedger } from "./publish-ledger.ts";
import { redisDir, startRedis } from "./redis-server.ts";

const run = randomUUID().slice(0, 8);
const { children, clients } = scenarioCleanup();

const NO_PERSISTENCE = ["--save", "", "--appendonly", "no"];

describeRedis("chaos: failover to a replica", () => {
  test("waitReplicas 1: kill -9 the primary, promote the replica: every critical 200 is there", async () => {
    const primary = await startRedis({ dir: redisDir(), args: NO_PERSISTENCE });
    const replica = await startRedis({ dir: redisDir(), args: [...NO_PERSISTENCE, "--replicaof", "127.0.0.1", String(primary.port)] });
    await replica.logged(/MASTER <-> REPLICA sync: Finished with success/);
    const env = { COURIER_REDIS_URL: primary.url };
    const [waiting, plain] = await Promise.all([
      spawnCourier({ ...env, COURIER_NODE_ID: `wait-${run}`, COURIER_CLUSTER__WAIT_REPLICAS: "1" }),
      spawnCourier({ ...env, COURIER_NODE_ID: `plain-${run}` }),
    ]);
    children.push(waiting, plain);
    const channel = `public:failover-${run}`;
    const ledger = createLedger("redis replica failover (waitReplicas 1)");
    const sub = await connectWelcomed(`${waiting.ws}?token=${await userToken(`sub-${run}`)}`);
    clients.push(sub);
    await sub.request({ type: "subscribe", channel });

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
    const promoted = await spawnCourier({ COURIER_REDIS_URL: replica.url, COURIER_NODE_ID: `promoted-${run}`, COURIER_CLUSTER__WAIT_REPLICAS: "1" });
    children.push(promoted);

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
});
