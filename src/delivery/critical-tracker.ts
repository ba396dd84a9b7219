/**
 * Tracks recently delivered critical events per channel so confirmations (acks) can be measured
 * and overdue ones detected, with no per-subscriber work at publish time: a connection's state is
 * only its cumulative ack per channel, compared against this list when it acks or when swept.
 */

interface Entry {
  offset: number;
  ts: number;
}

export interface AckOutcome {
  /** Critical events newly confirmed by this ack. */
  confirmed: number;
  /** Sum of their publish → ack times, ms. */
  totalMs: number;
  /** Individual publish → ack times in ms, for the histogram (bounded by the list size). */
  samplesMs: number[];
}

export class CriticalTracker {
  readonly #perChannel: number;
  readonly #lists = new Map<string, Entry[]>();

  constructor(perChannel = 1024) {
    this.#perChannel = perChannel;
  }

  /** Records critical events as delivered. */
  add(channel: string, offset: number, ts: number): void {
    let list = this.#lists.get(channel);
    if (!list) this.#lists.set(channel, (list = []));
    list.push({ offset, ts });
    if (list.length > this.#perChannel) list.splice(0, list.length - this.#perChannel);
  }

  /** Critical events in (from, to] confirmed now. */
  acked(channel: string, from: number, to: number, now: number): AckOutcome {
    const outcome: AckOutcome = { confirmed: 0, totalMs: 0, samplesMs: [] };
    const list = this.#lists.get(channel);
    if (!list) return outcome;
    for (let i = firstAbove(list, from); i < list.length && list[i]!.offset <= to; i++) {
      const ms = Math.max(0, now - list[i]!.ts);
      outcome.confirmed++;
      outcome.totalMs += ms;
      outcome.samplesMs.push(ms);
    }
    return outcome;
  }

  /**
   * The earliest publish time of a critical event with offset in (after, upTo], or null.
   * `upTo` bounds it to what the connection can have received. O(log n): the sweep asks this for
   * every subscription every second.
   */
  oldestUnacked(channel: string, after: number, upTo: number): { ts: number; count: number } | null {
    const list = this.#lists.get(channel);
    if (!list) return null;
    const first = firstAbove(list, after);
    const end = firstAbove(list, upTo);
    return first < end ? { ts: list[first]!.ts, count: end - first } : null;
  }

  /**
   * Critical events with offset in (after, upTo] published before `before`: how many, and the
   * offset of the last one, or null. The sweep asks it once a second per subscription to count
   * each unacknowledged event once as timed out (the caller keeps `through` as its watermark).
   */
  overdue(channel: string, after: number, upTo: number, before: number): { count: number; through: number } | null {
    const list = this.#lists.get(channel);
    if (!list) return null;
    const first = firstAbove(list, after);
    const end = firstAbove(list, upTo);
    let last = first;
    // Entries are in offset order and publish times follow it, so the overdue ones are a prefix.
    while (last < end && list[last]!.ts < before) last++;
    return last > first ? { count: last - first, through: list[last - 1]!.offset } : null;
  }

  /** Forgets a channel nobody here subscribes to any more. */
  drop(channel: string): void {
    this.#lists.delete(channel);
  }

  /** Drops entries older than `before` (they can no longer be overdue-but-unseen) and empty lists. */
  prune(before: number): void {
    for (const [channel, list] of this.#lists) {
      let i = 0;
      while (i < list.length && list[i]!.ts < before) i++;
      if (i > 0) list.splice(0, i);
      if (list.length === 0) this.#lists.delete(channel);
    }
  }
}

/** Index of the first entry with offset > `offset` (entries are in offset order). */
function firstAbove(list: readonly Entry[], offset: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.offset <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
