/**
 * Chaos: a publish whose Redis command times out after it was sent (issue #14 item 5). The command
 * may still run, so the 503 must not pass for "nothing was published": it says the outcome is
 * unknown, and a retry with the same Idempotency-Key answers the first outcome instead of
 * publishing again. The plain "store unavailable" 503 stays for failures that are certain (the
 * command was never sent).
 *
 * A proxy between the node and Redis holds the publish script back past the node's 1 s command
 * timeout, then lets it through: it runs on Redis after the node answered 503.
 */
import { expect, test } from "bun:test";
import { RedisClient } from "bun";
import { randomUUID } from "node:crypto";
import { redisKeys } from "../../src/engine/redis-keys.ts";
import { PUBLISH } from "../../src/engine/redis-scripts.ts";
import { OUTCOME_UNKNOWN_MESSAGE } from "../../src/engine/types.ts";
import { describeRedis } from "../redis-env.ts";
import { publishEvent, readHistory, scenarioCleanup } from "./node-http.ts";
import { createLedger } from "./publish-ledger.ts";

const run = randomUUID().slice(0, 8);
const scenario = scenarioCleanup();

describeRedis("chaos: a publish that times out after it was sent", (redisUrl) => {
  test("503 outcome unknown; the command still runs; the retry with the same key stores nothing twice", async () => {
    const proxy = scenario.proxy(redisUrl);
    const node = await scenario.node(proxy.url, `unknown-${run}`);
    const channel = `public:unknown-${run}`;
    const ledger = createLedger("redis outcome unknown");
    const { client: sub } = await scenario.subscriber(node, `sub-${run}`, channel);
    expect((await publishEvent(node.http, channel, "before", { ledger })).status).toBe(200);

    const key = `key-${run}`;
    const held = proxy.holdCommand(PUBLISH.sha);
    const first = await publishEvent(node.http, channel, "once", { key, ledger });
    await held;
    expect(first.status).toBe(503);
    expect(first.body).toEqual({ error: "unavailable", message: OUTCOME_UNKNOWN_MESSAGE });
    expect(first.retryAfter).toBeTruthy();

    // The command reaches Redis after the node gave up on it, and is stored and delivered.
    proxy.release();
    const late = await sub.next((f) => f.type === "event" && f.data.id === "once");

    const retry = await publishEvent(node.http, channel, "once", { key, ledger });
    expect(retry.status).toBe(200);
    expect(retry.body.offset).toBe(late.offset);
    expect((await publishEvent(node.http, channel, "after", { ledger })).status).toBe(200);
    await sub.next((f) => f.type === "event" && f.data.id === "after");

    const history = await readHistory(node.http, channel);
    expect(history.events.filter((e) => e.data.id === "once")).toHaveLength(1);
    const counts = ledger.check({ subscribers: [sub.frames], history: new Map([[channel, history]]) });
    expect(counts).toEqual({ acked: 3, lost: 0, historyMissing: 0, duplicated: 0, outOfOrder: 0, reusedOffsets: 0, epochChanged: 0 });

    // Certain failure: Redis unreachable, the script is never sent: not "outcome unknown", and
    // indeed nothing was stored.
    proxy.down();
    const never = await publishEvent(node.http, channel, "never", { key: `never-${run}` });
    expect(never.status).toBe(503);
    expect(never.body.error).toBe("unavailable");
    expect(never.body.message).not.toBe(OUTCOME_UNKNOWN_MESSAGE);
    const direct = new RedisClient(redisUrl);
    try {
      const stored = (await direct.send("XRANGE", [redisKeys("courier:").channel(channel).critical, "-", "+"])) as [string, string[]][];
      expect(stored.map(([, fields]) => JSON.parse(fields[5]!).data.id)).toEqual(["before", "once", "after"]);
    } finally {
      direct.close();
    }
  }, 20_000);
});
