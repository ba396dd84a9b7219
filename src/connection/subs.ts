/**
 * A connection's subscriptions, `ConnData.subs`: every writer goes through these functions, and
 * every reader but the sweep's two per-connection loops (manager.ts), which must not allocate. Most
 * connections join one channel, so that one is held as the Subscription itself and a Map (≈ 260 B
 * with its table) exists only while there are two or more. Iteration follows
 * the order of subscribing, as a Map's does: a saved session restores its channels in that order.
 */
import type { ConnData, Subscription } from "./conn-data.ts";

/** None, exactly one, or a Map of two or more, by channel. */
export type Subs = Subscription | Map<string, Subscription> | null;

const NONE: readonly Subscription[] = Object.freeze([]);

/**
 * A subscription to `channel` whose join has not completed, with every field present from the
 * start so all subscriptions share one object shape.
 */
export function newSubscription(channel: string): Subscription {
  return { channel, epoch: "", from: 0, acked: 0, timedOut: 0, joinedAt: 0, ready: false };
}

/** The subscription to `channel`, if any (joined or still joining). */
export function subOf(data: ConnData, channel: string): Subscription | undefined {
  const subs = data.subs;
  if (subs instanceof Map) return subs.get(channel);
  return subs !== null && subs.channel === channel ? subs : undefined;
}

/** How many channels the connection is subscribed to (or joining). */
export function subCount(data: ConnData): number {
  const subs = data.subs;
  if (subs instanceof Map) return subs.size;
  return subs === null ? 0 : 1;
}

/** Records `sub` under its channel, replacing any subscription to that channel in place. */
export function setSub(data: ConnData, sub: Subscription): void {
  const subs = data.subs;
  if (subs instanceof Map) subs.set(sub.channel, sub);
  else if (subs === null || subs.channel === sub.channel) data.subs = sub;
  else data.subs = new Map([[subs.channel, subs], [sub.channel, sub]]);
}

/** Forgets the subscription to `channel`; false when there was none. */
export function deleteSub(data: ConnData, channel: string): boolean {
  const subs = data.subs;
  if (!(subs instanceof Map)) {
    if (subs === null || subs.channel !== channel) return false;
    data.subs = null;
    return true;
  }
  if (!subs.delete(channel)) return false;
  if (subs.size === 1) data.subs = subs.values().next().value!;
  return true;
}

/** The subscriptions in the order they were made; the caller must not change them while iterating. */
export function subsOf(data: ConnData): Iterable<Subscription> {
  const subs = data.subs;
  if (subs instanceof Map) return subs.values();
  return subs === null ? NONE : [subs];
}
