/**
 * What a node shares with the cluster about itself: its heartbeat, its connection slots per user,
 * and its stats report. A crashed node's slots stop counting once its heartbeat lapses
 * (`heartbeatTtlMs`, judged by Redis server time so skewed node clocks agree): slots are keyed by
 * node, so the first acquire after the lapse reclaims them, and a refusal says how long until then.
 *
 * Each process is its own slot owner (`<nodeId>#<random>`), so a node restarted under the same
 * id never inherits the counts of its dead predecessor. The node's local counts are the truth for
 * its own field: every acquire and release writes the whole count, and a heartbeat that finds the
 * node was judged dead (a partition, a long stall) writes all of them back.
 */
import type { LogFn } from "./redis-client.ts";
import type { RedisKeys } from "./redis-keys.ts";
import { ACQUIRE, CLUSTER_STATS, HEARTBEAT, REPORT_STATS, SET_SLOTS, type Script } from "./redis-scripts.ts";

export interface NodePresenceOptions {
  nodeId: string;
  keys: RedisKeys;
  heartbeatTtlMs: number;
  /** Runs a script under the engine's command timeout. */
  script: (s: Script, keys: string[], args: string[], what: string) => Promise<unknown>;
  /** Runs a plain command under the engine's command timeout. */
  command: (cmd: string, args: string[], what: string) => Promise<unknown>;
  log: LogFn;
}

/**
 * Creates the node's presence; call `beat` every `heartbeatTtlMs / 3`.
 *
 * @example
 * const presence = createNodePresence({ nodeId: "n1", keys, heartbeatTtlMs: 3_000, script, command, log });
 * await presence.beat();
 * const { taken, retryAfterMs } = await presence.acquire("alice", 3);
 * if (!taken) refuse429(retryAfterMs);
 */
export function createNodePresence(o: NodePresenceOptions) {
  const member = `${o.nodeId}#${crypto.randomUUID().slice(0, 8)}`;
  const slots = new Map<string, number>();
  const ttl = String(o.heartbeatTtlMs);

  const setLocal = (user: string, count: number) => {
    if (count > 0) slots.set(user, count);
    else slots.delete(user);
  };

  return {
    member,

    /**
     * Takes one of `max` slots of `user` across the cluster. When all are taken, `retryAfterMs` is
     * how long until another node's slots can stop counting (its heartbeat lapses), 0 if unknown.
     */
    async acquire(user: string, max: number): Promise<{ taken: boolean; retryAfterMs: number }> {
      // Counted locally first, so concurrent acquires of one user each ask for their own slot.
      const want = (slots.get(user) ?? 0) + 1;
      slots.set(user, want);
      let taken = false;
      let retryAfterMs = 0;
      try {
        const reply = (await o.script(ACQUIRE, [o.keys.userSlots(user), o.keys.nodes], [member, String(max), ttl, String(want)], "acquire")) as [number, number];
        taken = Number(reply[0]) === 1;
        retryAfterMs = Number(reply[1]);
      } finally {
        if (!taken) setLocal(user, (slots.get(user) ?? 1) - 1);
      }
      return { taken, retryAfterMs };
    },

    /** Frees one slot of `user`; a release without a slot is a no-op (never below zero). */
    async release(user: string): Promise<void> {
      const count = slots.get(user) ?? 0;
      if (count === 0) return;
      setLocal(user, count - 1);
      await o.script(SET_SLOTS, [o.keys.userSlots(user)], [member, String(count - 1)], "release");
    },

    /** Refreshes the heartbeat; restores this node's counts if others judged it dead. Never throws. */
    async beat(): Promise<void> {
      try {
        const alive = await o.script(HEARTBEAT, [o.keys.nodes], [member, ttl], "heartbeat");
        if (Number(alive) === 1 || slots.size === 0) return;
        o.log("warn", "node heartbeat had lapsed; restoring connection counts", { users: slots.size });
        await Promise.all(
          [...slots].map(([user, count]) => o.script(SET_SLOTS, [o.keys.userSlots(user)], [member, String(count)], "restore slots")),
        );
      } catch (error) {
        o.log("warn", "redis heartbeat failed", { error: (error as Error).message });
      }
    },

    /** A clean shutdown: this node's slots stop counting at once instead of after the TTL. */
    async leave(): Promise<void> {
      await o.command("ZREM", [o.keys.nodes, member], "leave");
    },

    /** Stores this node's stats, visible to `clusterStats` for `ttlMs` (server time). */
    async reportStats(stats: object, ttlMs: number): Promise<void> {
      await o.script(REPORT_STATS, [o.keys.stats], [o.nodeId, String(ttlMs), JSON.stringify(stats)], "report stats");
    },

    /** Every live node's last report, by node id. */
    async clusterStats(): Promise<Array<{ node: string; stats: unknown }>> {
      const flat = (await o.script(CLUSTER_STATS, [o.keys.stats], [], "cluster stats")) as string[];
      const out: Array<{ node: string; stats: unknown }> = [];
      for (let i = 0; i < flat.length; i += 2) out.push({ node: flat[i]!, stats: JSON.parse(flat[i + 1]!) });
      return out.sort((a, b) => a.node.localeCompare(b.node));
    },
  };
}

export type NodePresence = ReturnType<typeof createNodePresence>;
