/**
 * The `Presence` port: one suite that the in-memory presence and the Redis presence (against the
 * real Redis, under a prefix of its own) both pass, then what only the Redis one does: entries of
 * nodes whose heartbeat lapsed stop counting, a clean close removes its own, and a restore writes
 * them back.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { MemoryPresence } from "../../src/engine/presence-memory.ts";
import { RedisPresence } from "../../src/engine/presence-redis.ts";
import { withTimeout } from "../../src/engine/redis-client.ts";
import type { Presence, PresencePage } from "../../src/engine/types.ts";
import { deleteKeys, describeRedis } from "../redis-env.ts";

/** Waits until `presence.read` answers `expected` (the Redis writes go out in the background). */
async function reads(presence: Presence, channel: string, expected: PresencePage, maxUsers = 1000) {
  const deadline = Date.now() + 3000;
  for (;;) {
    const page = await presence.read(channel, maxUsers);
    if (Bun.deepEquals(page, expected) || Date.now() > deadline) return expect(page).toEqual(expected);
    // The writes were sent before the read on the same connection; this only covers a retried one.
    await Bun.sleep(10);
  }
}

function presenceContract(name: string, make: () => Presence) {
  describe(`${name} presence`, () => {
    test("counts each user's connections and the channel's total as they join and leave", async () => {
      const p = make();
      p.change("public:a", "bob", 1);
      p.change("public:a", "alice", 1);
      p.change("public:a", "alice", 1);
      p.change("public:b", "alice", 1);
      await reads(p, "public:a", { subscribers: 3, users: [{ user: "alice", connections: 2 }, { user: "bob", connections: 1 }] });
      await reads(p, "public:b", { subscribers: 1, users: [{ user: "alice", connections: 1 }] });
      p.change("public:a", "alice", -1);
      p.change("public:a", "bob", -1);
      await reads(p, "public:a", { subscribers: 1, users: [{ user: "alice", connections: 1 }] });
      p.change("public:a", "alice", -1);
      await reads(p, "public:a", { subscribers: 0, users: [] });
    });

    test("a leave without a join changes nothing", async () => {
      const p = make();
      p.change("public:c", "carol", -1);
      p.change("public:c", "dave", 1);
      p.change("public:c", "carol", -1);
      await reads(p, "public:c", { subscribers: 1, users: [{ user: "dave", connections: 1 }] });
    });

    test("lists at most maxUsers users, sorted by id, while subscribers stays the full count", async () => {
      const p = make();
      const users = Array.from({ length: 1005 }, (_, i) => `u${String(i).padStart(4, "0")}`);
      for (const user of [...users].reverse()) p.change("public:big", user, 1);
      p.change("public:big", "u0000", 1);
      const expected = { subscribers: 1006, users: users.slice(0, 1000).map((user) => ({ user, connections: user === "u0000" ? 2 : 1 })) };
      await reads(p, "public:big", expected);
      expect((await p.read("public:big", 2)).users).toEqual([{ user: "u0000", connections: 2 }, { user: "u0001", connections: 1 }]);
    });
  });
}

presenceContract("memory", () => new MemoryPresence());

describeRedis("Redis presence", (url) => {
  const prefix = `courier-presence-${crypto.randomUUID().slice(0, 8)}:`;
  const nodesKey = `${prefix}{conn}:nodes`;
  const client = new RedisClient(url);
  const made: RedisPresence[] = [];
  let n = 0;
  /** A presence whose member's heartbeat is alive (expires in the far future) or long lapsed. */
  const make = (alive = true) => {
    const member = `node-${++n}#test`;
    // Sent before any of its writes or reads, on the same connection: Redis runs them in order.
    void client.send("ZADD", [nodesKey, alive ? "99999999999999" : "1", member]);
    const p = new RedisPresence({ prefix, member, nodesKey, client: () => client, run: (p, what) => withTimeout(p, 1000, what), retryMs: 50 });
    made.push(p);
    return p;
  };

  afterAll(async () => {
    client.close();
    await deleteKeys(url, prefix);
  });

  presenceContract("Redis", () => make());

  test("nodes add up; a node whose heartbeat lapsed stops counting; a clean close removes its entries", async () => {
    const [one, two, dead] = [make(), make(), make(false)];
    one.change("public:n", "alice", 1);
    two.change("public:n", "alice", 1);
    two.change("public:n", "bob", 1);
    dead.change("public:n", "zed", 1);
    await reads(one, "public:n", { subscribers: 3, users: [{ user: "alice", connections: 2 }, { user: "bob", connections: 1 }] });
    await two.close();
    await reads(one, "public:n", { subscribers: 1, users: [{ user: "alice", connections: 1 }] });
    // The dead node's field was deleted by a read: only this node's own field is left.
    expect(await client.send("HKEYS", [`${prefix}{conn}:p:public:n`])).toEqual([`node-${n - 2}#test|alice`]);
  });

  test("restore writes every local entry back (after reads dropped them while the heartbeat had lapsed)", async () => {
    const p = make();
    p.change("public:r", "alice", 1);
    p.change("public:r", "alice", 1);
    await reads(p, "public:r", { subscribers: 2, users: [{ user: "alice", connections: 2 }] });
    await client.send("DEL", [`${prefix}{conn}:p:public:r`]);
    await reads(p, "public:r", { subscribers: 0, users: [] });
    p.restore();
    await reads(p, "public:r", { subscribers: 2, users: [{ user: "alice", connections: 2 }] });
  });

  test("a write that fails is written again once Redis answers", async () => {
    let down = true;
    const member = `node-${++n}#test`;
    await client.send("ZADD", [nodesKey, "99999999999999", member]);
    const p = new RedisPresence({
      prefix,
      member,
      nodesKey,
      client: () => {
        if (down) throw new Error("redis is down");
        return client;
      },
      run: (p, what) => withTimeout(p, 1000, what),
      retryMs: 20,
    });
    p.change("public:w", "alice", 1);
    down = false;
    await reads(p, "public:w", { subscribers: 1, users: [{ user: "alice", connections: 1 }] });
  });
});
