/**
 * Presence on one node: per channel, each user's connection count and the channel's total, kept
 * as subscriptions change. A read sorts only the channel's own users; nothing walks the sockets.
 * It is the embedded engine's presence and the Redis presence's local truth.
 */
import type { Presence, PresencePage } from "./types.ts";

interface ChannelCounts {
  total: number;
  users: Map<string, number>;
}

/**
 * In-memory presence.
 *
 * @example
 * const presence = new MemoryPresence();
 * presence.change("public:lobby", "alice", 1);
 * await presence.read("public:lobby", 1000); // { subscribers: 1, users: [{ user: "alice", connections: 1 }] }
 */
export class MemoryPresence implements Presence {
  readonly #channels = new Map<string, ChannelCounts>();

  change(channel: string, user: string, delta: 1 | -1): void {
    let counts = this.#channels.get(channel);
    if (!counts) {
      if (delta < 0) return;
      counts = { total: 0, users: new Map() };
      this.#channels.set(channel, counts);
    }
    const n = (counts.users.get(user) ?? 0) + delta;
    // A leave without a join (never expected) must not drive counts below zero.
    if (n < 0) return;
    counts.total += delta;
    if (n > 0) counts.users.set(user, n);
    else counts.users.delete(user);
    if (counts.total === 0) this.#channels.delete(channel);
  }

  /** `user`'s connections on `channel` here (0 when none). */
  connections(channel: string, user: string): number {
    return this.#channels.get(channel)?.users.get(user) ?? 0;
  }

  /** Every (channel, user) pair with its count, for a cluster presence to write back or remove. */
  *entries(): IterableIterator<{ channel: string; user: string; connections: number }> {
    for (const [channel, counts] of this.#channels) {
      for (const [user, connections] of counts.users) yield { channel, user, connections };
    }
  }

  read(channel: string, maxUsers: number): Promise<PresencePage> {
    const counts = this.#channels.get(channel);
    if (!counts) return Promise.resolve({ subscribers: 0, users: [] });
    const names = [...counts.users.keys()].sort();
    const users = names.slice(0, maxUsers).map((user) => ({ user, connections: counts.users.get(user)! }));
    return Promise.resolve({ subscribers: counts.total, users });
  }
}
