import { afterAll } from "bun:test";
import { RedisClient } from "bun";
import { createRedisEngine } from "../src/engine/redis-engine.ts";
import { engineContract } from "./contract/engine-contract.ts";
import { describeRedis } from "./redis-env.ts";

const PREFIX = `courier-test-${crypto.randomUUID().slice(0, 8)}:`;

describeRedis("redis engine", (url) => {
  afterAll(async () => {
    const admin = new RedisClient(url);
    let cursor = "0";
    do {
      const [next, keys] = (await admin.send("SCAN", [cursor, "MATCH", `${PREFIX}*`, "COUNT", "1000"])) as [string, string[]];
      cursor = next;
      if (keys.length > 0) await admin.send("DEL", keys);
    } while (cursor !== "0");
    admin.close();
  });

  // Each engine gets its own prefix: trim() walks every channel of its store, and the contract
  // counts what one engine's trim dropped.
  let made = 0;
  engineContract("redis", async (opts) => ({
    engine: createRedisEngine({ ...opts, url, nodeId: "contract", keyPrefix: `${PREFIX}c${++made}:` }),
    cleanup: async () => {},
  }));
});
