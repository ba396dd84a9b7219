/**
 * Cluster delivery: this node listens to a channel's Redis pub/sub channel only while the hub
 * watches it, and hands `deliver` every committed event once, in offset order, with no gap.
 *
 * Pub/sub alone loses messages (a dropped connection, Bun's reconnect defect), so it is treated as
 * a hint: each watched channel tracks `last`, the offset up to which delivery is complete.
 * A message at `last + 1` is delivered at once; one at or below `last` is a duplicate; one beyond
 * `last + 1` means messages were lost, and the stream is read from `last` (a "sync") before
 * anything newer goes out. While a sync runs, arriving messages queue behind it.
 *
 * Why one file over 300 lines: subscribe, gap-fill and Bun's resubscribe workaround share the
 * per-channel watch state and must stay one state machine.
 */
import type { RedisClient } from "bun";
import { resubscribe as resubscribeAll, withTimeout, type LogFn } from "./redis-client.ts";
import { parseMessage } from "./redis-codec.ts";
import { StoreUnavailableError, type DeliverFn, type HistoryPage, type StoredEvent } from "./types.ts";

export interface WatcherOptions {
  /** The dedicated subscriber connection. */
  sub: RedisClient;
  /** The pub/sub channel name of a channel. */
  pubsubName: (channel: string) => string;
  /**
   * The channel's top offset. Must send its command synchronously on the command connection, so
   * a publish sent after `watch()` returns is ordered after it.
   */
  readTop: (channel: string) => Promise<number>;
  /**
   * A history page plus its epoch's base (live delivery of a new epoch resumes above it). `seen`
   * is the epoch and offset this watch delivered up to, so the store can tell a channel that went
   * back below it (null before the first read).
   */
  history: (channel: string, after: number, limit: number, seen: { epoch: string; top: number } | null) => Promise<HistoryPage & { base: number }>;
  /** Every watermark a message carries (the node's knowledge of the dataset). */
  observed?: (watermark: number) => void;
  /**
   * A message carried a watermark at or below one seen before: Redis went back in time. Resolves
   * once the store was fenced (a new generation, whatever its watermark); every watched channel
   * then syncs.
   */
  regressed?: (seen: number) => Promise<void>;
  deliver: DeliverFn;
  log: LogFn;
  /** Bound on each subscribe/unsubscribe. */
  commandTimeoutMs: number;
  /** Delay before a failed sync or resubscribe is tried again. */
  retryMs: number;
  /** Events read per history call while syncing. */
  pageSize?: number;
}

interface Watched {
  channel: string;
  pubsub: string;
  /** Delivery is complete through this offset; -1 until the watch's baseline is known. */
  last: number;
  epoch: string | null;
  /** Messages queue instead of being applied (a sync is pending or running). */
  busy: boolean;
  queue: StoredEvent[][];
  syncing: boolean;
  /** Another sync was asked for while one ran. */
  again: boolean;
  ready: Promise<number>;
  retry: ReturnType<typeof setTimeout> | null;
}

/**
 * Creates the watcher. `watch` resolves with W: every event after W reaches `deliver`.
 *
 * @example
 * const watcher = createWatcher({ sub, pubsubName, readTop, history, deliver, log, commandTimeoutMs: 1_000, retryMs: 500 });
 * const w = await watcher.watch("user:a");
 */
export function createWatcher(o: WatcherOptions) {
  const watched = new Map<string, Watched>();
  const byPubsub = new Map<string, Watched>();
  const pageSize = o.pageSize ?? 1_000;
  let closed = false;
  let resubscribeTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * Highest watermark of any message: Redis runs publishes one at a time and delivers their
   * messages in that order, so on one subscriber connection watermarks only grow. `lastMessage`
   * names the latest message, to tell Bun delivering one message twice from a watermark that came
   * round again.
   */
  let highest = 0;
  let lastMessage = "";

  const current = (st: Watched) => !closed && watched.get(st.channel) === st;

  function deliver(st: Watched, events: StoredEvent[]) {
    try {
      o.deliver(st.channel, events, st.epoch ?? undefined);
    } catch (error) {
      // A failing consumer must not stall the channel's delivery state.
      o.log("error", "deliver failed", { channel: st.channel, error: (error as Error)?.message });
    }
  }

  function onMessage(message: string, pubsub: string) {
    const st = byPubsub.get(pubsub);
    if (!st) return;
    let parsed: ReturnType<typeof parseMessage>;
    try {
      parsed = parseMessage(st.channel, message);
    } catch (error) {
      o.log("error", "bad pub/sub message", { channel: st.channel, error: (error as Error).message });
      return requestSync(st);
    }
    if (parsed.watermark !== null) {
      const name = `${pubsub} ${parsed.watermark} ${message.length}`;
      if (name === lastMessage) return; // the same message again: delivered once already
      lastMessage = name;
      if (parsed.watermark <= highest) return onRegression(parsed.watermark);
      highest = parsed.watermark;
      o.observed?.(parsed.watermark);
    }
    // Another epoch: Redis lost the channel and offsets start over; the sync sorts it out.
    if (st.epoch !== null && parsed.epoch !== st.epoch) return requestSync(st);
    if (st.busy) st.queue.push(parsed.events);
    else apply(st, parsed.events, true);
  }

  /**
   * Delivers what follows `last`; on a gap, queues the rest and syncs from the stream first.
   * A `live` message (not one queued behind a sync, which may overlap what the sync read) at or
   * below `last` under the same epoch should not exist: the channel may have gone back below what
   * this node delivered, so a sync re-reads it, telling the store the top seen (see HISTORY).
   */
  function apply(st: Watched, events: StoredEvent[], live = false) {
    let out: StoredEvent[] | null = null;
    let stale = false;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      if (ev.offset <= st.last) {
        stale = true;
        continue;
      }
      if (ev.offset > st.last + 1) {
        if (out) deliver(st, out);
        st.queue.unshift(events.slice(i));
        return requestSync(st);
      }
      (out ??= []).push(ev);
      st.last = ev.offset;
    }
    if (out) deliver(st, out);
    if (stale && live) requestSync(st);
  }

  /**
   * The dataset went back (a node that never saw the lost writes published into it): a second,
   * different message at a watermark already seen proves two publishes got one watermark. Fence it
   * with what this node saw, then every watched channel re-reads, which moves each to its new epoch.
   */
  function onRegression(watermark: number) {
    const seen = highest;
    o.log("error", "redis pub/sub watermark went back: Redis lost acknowledged writes", { seen, now: watermark });
    highest = watermark;
    for (const st of watched.values()) st.busy = true;
    const fenced = o.regressed ? o.regressed(seen) : Promise.resolve();
    void fenced
      .catch((error: unknown) => o.log("warn", "redis fence failed; syncing anyway", { error: (error as Error)?.message }))
      .then(() => {
        for (const st of watched.values()) if (current(st) && st.last >= 0) requestSync(st);
      });
  }

  function requestSync(st: Watched) {
    st.busy = true;
    if (st.syncing) {
      st.again = true;
      return;
    }
    st.syncing = true;
    void sync(st);
  }

  async function sync(st: Watched) {
    try {
      do {
        st.again = false;
        await catchUp(st);
      } while (st.again && current(st));
    } catch (error) {
      st.syncing = false;
      if (!current(st)) return;
      o.log("warn", "redis sync failed; retrying", { channel: st.channel, error: (error as Error)?.message });
      st.retry = setTimeout(() => {
        st.retry = null;
        if (current(st)) requestSync(st);
      }, o.retryMs);
      return;
    }
    st.syncing = false;
    if (!current(st)) return;
    st.busy = false;
    while (st.queue.length > 0 && !st.busy) apply(st, st.queue.shift()!);
  }

  /**
   * Reads the stream after `last` and delivers it. A complete read also covers offsets that no
   * longer exist (coalesced or trimmed), so `last` moves up to the top read with it.
   */
  async function catchUp(st: Watched) {
    for (;;) {
      const page = await o.history(st.channel, st.last, pageSize, st.epoch === null ? null : { epoch: st.epoch, top: st.last });
      if (!current(st)) return;
      if (st.epoch !== null && page.epoch !== st.epoch) {
        // Redis lost the channel (restart without persistence, eviction: base 0, offsets start
        // over) or acknowledged writes (a rollback: offsets continue above the surviving top).
        o.log("warn", "channel epoch changed under a watch", { channel: st.channel, from: st.epoch, to: page.epoch, base: page.base });
        st.epoch = page.epoch;
        st.last = page.base;
        continue;
      }
      st.epoch = page.epoch;
      const fresh = page.events.filter((e) => e.offset > st.last);
      if (fresh.length > 0) {
        deliver(st, fresh);
        st.last = fresh[fresh.length - 1]!.offset;
      }
      if (page.events.length < pageSize) {
        if (page.offset > st.last) st.last = page.offset;
        return;
      }
    }
  }

  /**
   * Bun's defect: after a reconnect the subscriber says connected but receives nothing until each
   * channel is unsubscribed and subscribed again. Then every watched channel syncs from `last`,
   * since pub/sub dropped whatever was published during the gap.
   */
  async function resubscribe() {
    if (resubscribeTimer) clearTimeout(resubscribeTimer);
    resubscribeTimer = null;
    const all = [...watched.values()];
    if (closed || all.length === 0) return;
    for (const st of all) st.busy = true;
    const names = all.map((st) => st.pubsub);
    try {
      await resubscribeAll(o.sub, names, onMessage, { timeoutMs: o.commandTimeoutMs });
    } catch (error) {
      if (closed) return;
      o.log("warn", "redis resubscribe failed; retrying", { channels: all.length, error: (error as Error)?.message });
      resubscribeTimer = setTimeout(() => void resubscribe(), o.retryMs);
      return;
    }
    o.log("info", "redis resubscribed", { channels: all.length });
    const gone = all.filter((st) => !current(st)).map((st) => st.pubsub);
    if (gone.length > 0) Promise.resolve().then(() => o.sub.unsubscribe(gone)).catch(() => {});
    for (const st of all) if (current(st) && st.last >= 0) requestSync(st);
  }

  return {
    watch(channel: string): Promise<number> {
      const existing = watched.get(channel);
      if (existing) return existing.ready;
      const st: Watched = {
        channel,
        pubsub: o.pubsubName(channel),
        last: -1,
        epoch: null,
        busy: true,
        queue: [],
        syncing: false,
        again: false,
        ready: Promise.resolve(0),
        retry: null,
      };
      watched.set(channel, st);
      byPubsub.set(st.pubsub, st);
      // The baseline is read before subscribing, and the sync after subscribing covers what was
      // published in between, so W needs no wait and nothing published after watch() is missed.
      const baseline = o.readTop(channel);
      st.ready = (async () => {
        try {
          const w = await baseline;
          await withTimeout(o.sub.subscribe(st.pubsub, onMessage), o.commandTimeoutMs, "subscribe");
          if (current(st)) {
            st.last = w;
            requestSync(st);
          }
          return w;
        } catch (error) {
          if (current(st)) forget(st);
          throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError(`Cannot watch ${channel}`, { cause: error });
        }
      })();
      return st.ready;
    },

    unwatch(channel: string): void {
      const st = watched.get(channel);
      if (st) forget(st);
    },

    /** Channels watched right now. */
    get size() {
      return watched.size;
    },

    /** To call on every connect of the subscriber connection. */
    resubscribe,

    close() {
      closed = true;
      if (resubscribeTimer) clearTimeout(resubscribeTimer);
      for (const st of watched.values()) if (st.retry) clearTimeout(st.retry);
      watched.clear();
      byPubsub.clear();
    },
  };

  function forget(st: Watched) {
    watched.delete(st.channel);
    byPubsub.delete(st.pubsub);
    if (st.retry) clearTimeout(st.retry);
    try {
      o.sub.unsubscribe(st.pubsub).catch(() => {});
    } catch {
      // Not subscribed (the subscribe itself failed): nothing to undo.
    }
  }
}

export type Watcher = ReturnType<typeof createWatcher>;
