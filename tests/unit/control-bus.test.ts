/**
 * The `ControlBus` port: the single node's bus, and the Redis bus on the real Redis (a channel
 * prefix of its own): every node answers once, this node's own command is not run twice, the
 * wait ends as soon as all have answered, a node that stalls past the wait is reported missing,
 * and an unreachable Redis rejects with `StoreUnavailableError` after this node has acted.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { localControlBus } from "../../src/engine/control-local.ts";
import { createRedisControlBus, type RedisControlBus } from "../../src/engine/control-redis.ts";
import { withTimeout } from "../../src/engine/redis-client.ts";
import { StoreUnavailableError } from "../../src/engine/types.ts";
import { describeRedis } from "../redis-env.ts";

describe("local control bus", () => {
  test("runs the command here, once", async () => {
    const bus = localControlBus();
    const seen: unknown[] = [];
    bus.serve((command) => {
      seen.push(command);
      return { count: 2 };
    });
    expect(await bus.broadcast({ kind: "x" }, 1000)).toEqual({ replies: [{ count: 2 }], missing: 0 });
    expect(seen).toEqual([{ kind: "x" }]);
  });
});

describeRedis("Redis control bus", (url) => {
  const prefix = `courier-bus-${crypto.randomUUID().slice(0, 8)}:`;
  const cmd = new RedisClient(url);
  const buses: RedisControlBus[] = [];
  let n = 0;
  const bus = async (options: { client?: () => RedisClient } = {}) => {
    const b = createRedisControlBus({
      url,
      prefix,
      member: `node-${++n}#test`,
      client: options.client ?? (() => cmd),
      run: (p, what) => withTimeout(p, 1000, what),
      log: () => {},
      commandTimeoutMs: 1000,
      connectTimeoutMs: 2000,
      retryMs: 250,
    });
    await b.start();
    buses.push(b);
    return b;
  };
  afterAll(() => {
    for (const b of buses) b.close();
    cmd.close();
  });

  test("every node runs the command once and answers; the asking node's answer comes first", async () => {
    const [one, two, three] = [await bus(), await bus(), await bus()];
    const runs: string[] = [];
    one.serve(() => (runs.push("one"), "from one"));
    two.serve(() => (runs.push("two"), "from two"));
    three.serve(async () => (runs.push("three"), "from three"));
    // Ends when all have answered: a wait of a minute would outlast the test's own 5 s timeout.
    const outcome = await one.broadcast({ kind: "ping" }, 60_000);
    expect(outcome.missing).toBe(0);
    expect(outcome.replies[0]).toBe("from one");
    expect([...outcome.replies].sort()).toEqual(["from one", "from three", "from two"]);
    expect(runs.sort()).toEqual(["one", "three", "two"]);
    for (const b of [one, two, three]) b.close();
  });

  test("a node that does not answer within the wait is counted missing", async () => {
    const [asker, stalled] = [await bus(), await bus()];
    asker.serve(() => 1);
    const { promise: never } = Promise.withResolvers<number>();
    stalled.serve(() => never);
    expect(await asker.broadcast({ kind: "slow" }, 200)).toEqual({ replies: [1], missing: 1 });
    asker.close();
    stalled.close();
  });

  test("Redis unreachable for the command: rejects with StoreUnavailableError once this node has acted", async () => {
    let acted = false;
    const b = await bus({
      client: () => {
        throw new StoreUnavailableError("Redis engine is closed");
      },
    });
    b.serve(() => (acted = true));
    expect(await b.broadcast({ kind: "x" }, 200).catch((e) => e)).toBeInstanceOf(StoreUnavailableError);
    expect(acted).toBe(true);
    b.close();
  });
});
