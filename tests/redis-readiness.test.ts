/**
 * The cluster broker's readiness check against a real Redis (`COURIER_REDIS_URL`): a probe message
 * published through the command connection must come back through this node's subscriber. It
 * fails while the subscriber is gone and passes again once it reconnected and resubscribed (Bun's
 * subscriber says connected and receives nothing otherwise: BUN-NOTES). Then `/ready` of a real
 * server on Redis lists both required checks. Keys live under a prefix unique to this run; the
 * probe itself stores nothing.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { createRedisEngine, type RedisEngine } from "../src/engine/redis-engine.ts";
import { deleteKeys, describeRedis } from "./redis-env.ts";
import { startServer } from "./helpers/server.ts";

const PREFIX = `courier-test-${crypto.randomUUID().slice(0, 8)}:`;
const BASE = { historySize: 100, historyTtlMs: 60_000, criticalRetentionMs: 3_600_000, idempotencyTtlMs: 300_000, now: Date.now };

describeRedis("cluster broker readiness (pub/sub probe)", (url) => {
  const admin = new RedisClient(url, { enableOfflineQueue: false, connectionTimeout: 2_000, autoReconnect: false });
  beforeAll(() => admin.connect());
  afterAll(async () => {
    await deleteKeys(url, PREFIX);
    admin.close();
  });

  async function clientId(name: string): Promise<string> {
    const list = (await admin.send("CLIENT", ["LIST"])) as string;
    const line = list.split("\n").find((l) => l.includes(` name=${name} `));
    if (!line) throw new Error(`No Redis client named ${name}`);
    return /^id=(\d+)/.exec(line)![1]!;
  }

  const outcome = (engine: RedisEngine, ms: number) =>
    engine.checkDelivery!(AbortSignal.timeout(ms)).then(
      () => "ok",
      (error: Error) => error.message,
    );

  test("the probe comes back through the subscriber; with the subscriber killed it fails, after its reconnect it passes again", async () => {
    let reconnected = Promise.withResolvers<void>();
    let killed = false;
    const engine = createRedisEngine({
      ...BASE,
      url,
      nodeId: `probe-${crypto.randomUUID().slice(0, 6)}`,
      keyPrefix: `${PREFIX}a:`,
      log: (_level, msg, fields) => {
        if (killed && msg === "redis connected" && (fields as { connection?: string }).connection === "subscriber") reconnected.resolve();
      },
    });
    await engine.start(() => {});
    try {
      expect(await outcome(engine, 2_000)).toBe("ok");
      // Nothing stored by the probe: no key under the prefix besides what start wrote.
      const probeKeys = (await admin.send("KEYS", [`${PREFIX}a:probe*`])) as string[];
      expect(probeKeys).toEqual([]);

      for (let round = 0; round < 2; round++) {
        reconnected = Promise.withResolvers<void>();
        killed = true;
        await admin.send("CLIENT", ["KILL", "ID", await clientId(`courier:${engine.nodeId}:sub`)]);
        // Published while the subscriber is gone: pub/sub drops it, the check fails.
        expect(await outcome(engine, 300)).toBe("Redis pub/sub: the probe message did not come back in time");
        await reconnected.promise;
        killed = false;
        // The probe resubscribed on connect; a check waits for that before it publishes.
        expect(await outcome(engine, 2_000)).toBe("ok");
      }
    } finally {
      await engine.close();
    }
  }, 20_000);

  test("a check whose signal has already aborted rejects without publishing", async () => {
    const engine = createRedisEngine({ ...BASE, url, nodeId: `probe-${crypto.randomUUID().slice(0, 6)}`, keyPrefix: `${PREFIX}b:` });
    await engine.start(() => {});
    try {
      // An already aborted signal: the probe does not even publish.
      const answer = await outcome(engine, 0);
      expect(answer).not.toBe("ok");
    } finally {
      await engine.close();
    }
  });

  test("/ready of a server on Redis lists the store check and the pub/sub check, both required and passing", async () => {
    await using server = await startServer({
      engine: (config) => createRedisEngine({ ...BASE, url, nodeId: config.cluster.nodeId!, keyPrefix: `${PREFIX}c:` }),
    });
    const res = await fetch(`${server.http}/ready`);
    const body = (await res.json()) as { status: string; checks: Record<string, { ok: boolean; required: boolean; ms: number }> };
    expect(res.status).toBe(200);
    expect(body.status).toBe("ready");
    expect(body.checks.redis).toMatchObject({ ok: true, required: true });
    expect(body.checks.pubsub).toMatchObject({ ok: true, required: true });
    expect(body.checks.pubsub!.ms).toBeLessThan(server.config.resilience.readinessGroupsMs.broker);
  });
});
