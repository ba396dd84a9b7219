/**
 * One Courier node on the real Redis, in this process: the test server with a Redis engine under a
 * test's own key prefix (delete it with `deleteKeys` from tests/redis-env.ts when done).
 */
import { createRedisEngine } from "../../src/engine/redis-engine.ts";
import { startServer, type TestServer } from "./server.ts";

/**
 * @example
 * const a = await startRedisNode(redisUrl, "node-a", `${PREFIX}:`);
 */
export function startRedisNode(url: string, nodeId: string, keyPrefix: string): Promise<TestServer> {
  return startServer({
    config: { cluster: { nodeId } },
    engine: (config) =>
      createRedisEngine({
        url,
        nodeId,
        keyPrefix,
        historySize: config.delivery.historySize,
        historyTtlMs: config.delivery.historyTtlMs,
        criticalRetentionMs: config.delivery.criticalRetentionMs,
        idempotencyTtlMs: config.delivery.idempotencyTtlMs,
        now: Date.now,
      }),
  });
}
