/**
 * Chaos: Redis is killed (`kill -9`) and restarted on the same port and data (AOF, fsync always)
 * while clients keep publishing (issue #14 item 4). Publishes answer 503 with `Retry-After` while
 * it is gone, enough of them to open the store's breaker; once Redis is back, publishes must work
 * again within the `Retry-After` those 503s advertised. Before, the breaker stayed open 10 s while
 * every 503 said `Retry-After: 2` (~8 s of refusals after Redis returned). Now, while the breaker
 * is open, the readiness loop checks every 500 ms and a passing check closes it; and the 503s never
 * advertise less than its cooldown.
 */
import { expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { describeRedis } from "../redis-env.ts";
import { publishEvent, publishMany, readHistory, scenarioCleanup } from "./node-http.ts";
import { createLedger } from "./publish-ledger.ts";
import { redisDir, startRedis } from "./redis-server.ts";

const run = randomUUID().slice(0, 8);
const scenario = scenarioCleanup();
const AOF = ["--save", "", "--appendonly", "yes", "--appendfsync", "always"];
/** Failures that open the store breaker (`resilience.breakerFailures`, default 5), twice over. */
const REFUSALS = 10;

describeRedis("chaos: Redis killed and restarted", () => {
  test("503 with Retry-After while Redis is gone; once it is back, publishes work within the Retry-After advertised; nothing acked is lost", async () => {
    const dir = redisDir();
    const redis = await startRedis({ dir, args: AOF });
    const node = await scenario.node(redis.url, `returns-${run}`);
    const channel = `public:returns-${run}`;
    const ledger = createLedger("redis returns");
    const { client: sub } = await scenario.subscriber(node, `sub-${run}`, channel);
    await publishMany(node.http, channel, 0, 20, ledger);

    await redis.kill9();
    const refused = [];
    for (let i = 0; i < REFUSALS; i++) refused.push(await publishEvent(node.http, channel, `down-${i}`, { ledger }));
    expect(refused.map((a) => a.status)).toEqual(Array(REFUSALS).fill(503));
    expect(refused.every((a) => /^\d+$/.test(a.retryAfter ?? ""))).toBe(true);
    await node.printed(/"msg":"breaker state".*"to":"open"/, 10_000);
    const advertisedMs = 1000 * Math.max(...refused.map((a) => Number(a.retryAfter)));

    await startRedis({ dir, port: redis.port, args: AOF });
    const backAt = performance.now();
    // A client retrying at a 50 ms pace (bounded by 4× the advertised wait): its first 200 says
    // when publishes work again, measured from Redis accepting connections.
    let attempts = 0;
    let answer = await publishEvent(node.http, channel, `back-${attempts}`, { ledger });
    while (answer.status !== 200 && performance.now() - backAt < 4 * advertisedMs) {
      attempts++;
      await Bun.sleep(50); // a retrying client's pace; the bound above ends the loop
      answer = await publishEvent(node.http, channel, `back-${attempts}`, { ledger });
    }
    const recoveredMs = performance.now() - backAt;
    const readyMs = await fetch(`${node.http}/ready`).then((r) => (r.status === 200 ? performance.now() - backAt : Number.NaN));
    console.log(
      `[chaos] redis returns: refusals said Retry-After ${refused.map((a) => a.retryAfter).join(",")}; after the restart, first 200 at ${recoveredMs.toFixed(0)} ms (${attempts + 1} attempts), /ready 200 at ${readyMs.toFixed(0)} ms`,
    );
    expect(answer.status).toBe(200);
    // Within the advertised wait, plus one retry step and its request.
    expect(recoveredMs).toBeLessThanOrEqual(advertisedMs + 250);
    expect(readyMs).toBeLessThanOrEqual(advertisedMs + 250);

    // Nothing acknowledged is lost: the subscriber and history hold every 2xx, in order.
    await sub.next((f) => f.type === "event" && f.data?.id === `back-${attempts}`, 10_000);
    const counts = ledger.check({ subscribers: [sub.frames], history: new Map([[channel, await readHistory(node.http, channel)]]) });
    expect(counts).toEqual({ acked: 21, lost: 0, historyMissing: 0, duplicated: 0, outOfOrder: 0, reusedOffsets: 0, epochChanged: 0 });
  }, 30_000);
});
