/**
 * The single-node engine: channel state cached in memory, events in bun:sqlite (WAL).
 * Publishes of one event-loop turn are group-committed in one transaction, so the per-event cost is
 * one prepared insert, and a publish resolves only once its events are durable (PROTOCOL §5). A
 * publish that comes alone is committed at once, in its own turn.
 *
 * Why one file over 300 lines: the group commit, delivery order and the store guard share one batch
 * state; the SQL lives in sqlite-store.ts.
 */
import { createHash } from "node:crypto";
import { eventFrame } from "../protocol/serializer.ts";
import { LocalSlots } from "./local-slots.ts";
import { startCheckpointer, type Checkpointer, type CheckpointerOptions } from "./sqlite-checkpointer.ts";
import { guardStore, type StoreGuard } from "./sqlite-store-guard.ts";
import { openSqliteStore, type BatchRow, type ChannelTop, type LogFn, type SqliteStore } from "./sqlite-store.ts";
import {
  StoreUnavailableError,
  type DeliverFn,
  type Engine,
  type EngineOptions,
  type HistoryPage,
  type Position,
  type PublishItem,
  type PublishOutcome,
  type SessionState,
  type StoredEvent,
} from "./types.ts";

export interface EmbeddedEngineOptions extends EngineOptions {
  /** Directory of the store; created when missing. */
  dataDir: string;
  /** Store file inside `dataDir`. Default `courier.db`. */
  fileName?: string;
  /** Structured log sink. Default: one JSON line on stdout. */
  log?: LogFn;
  /** Bound of the WAL file; see `openSqliteStore`. Default 16 MiB. */
  walLimitBytes?: number;
  /** Below this much free space on the data dir's filesystem, `check()` rejects. Default 1 MiB. */
  minFreeBytes?: number;
  /** How often, at most, the open files are compared with the data dir when nothing else asks. Default 1000. */
  identityCheckMs?: number;
  /** Starts the WAL checkpoint worker. Default `startCheckpointer`; tests pass their own to run checkpoints when they choose. */
  startCheckpointer?: (options: CheckpointerOptions) => Checkpointer;
}

/** Counters of the group commit, for tests and stats. */
export interface EmbeddedEngineStats {
  /** Transactions that stored a batch. */
  commits: number;
  /** Events stored by those transactions. */
  events: number;
  /** Batches refused because the store failed. */
  failures: number;
}

export interface EmbeddedEngine extends Engine {
  readonly kind: "embedded";
  readonly stats: Readonly<EmbeddedEngineStats>;
}

/**
 * Creates the embedded engine; `start` opens `<dataDir>/courier.db`.
 *
 * @example
 * const { historySize, historyTtlMs, criticalRetentionMs, idempotencyTtlMs } = config.delivery;
 * const engine = createEmbeddedEngine({
 *   historySize, historyTtlMs, criticalRetentionMs, idempotencyTtlMs, now: Date.now, dataDir: config.store.dataDir,
 * });
 * await engine.start((channel, events) => hub.fanOut(channel, events));
 * const [outcome] = await engine.publish([{ channel: "user:a", event: "hello", dataJson: "{}", critical: false }]);
 * // outcome: { channel: "user:a", offset: 1, epoch: "…", duplicate: false }
 */
export function createEmbeddedEngine(opts: EmbeddedEngineOptions): EmbeddedEngine {
  return new SqliteEngine(opts);
}

/** In-memory view of a channel. `top` counts offsets handed out; `committed` only stored ones. */
interface ChannelState {
  epoch: string;
  top: number;
  committed: number;
  trimmed: number;
}

/** What an idempotency key answers, and since when. */
interface Remembered {
  channel: string;
  offset: number;
  epoch: string;
  ts: number;
}

interface Waiter {
  outcomes: PublishOutcome[];
  resolve: (outcomes: PublishOutcome[]) => void;
  reject: (error: Error) => void;
}

/** Everything published during one event-loop turn. */
interface Batch {
  rows: BatchRow[];
  /** Per channel, in first-publish order: its state and its new events in offset order. */
  channels: Map<string, { state: ChannelState; events: StoredEvent[] }>;
  /** Idempotency keys first used in this batch: they become remembered only if it commits. */
  keys: Map<string, Remembered>;
  waiters: Waiter[];
}

/** Past this many cached channels, trim() forgets the idle ones (sqlite still has them). */
const CHANNEL_CACHE_SOFT_MAX = 100_000;

/**
 * A publish this long (by `opts.now`) after the previous one, with no batch open, is alone: it is
 * committed and delivered at once instead of at the end of the turn, where it would wait for the
 * rest of the turn's I/O. Bursts come well under a millisecond apart, so 2 (over 1 ms at
 * `Date.now`'s resolution) keeps them in one commit. Not a count of the publish requests in flight:
 * Bun dispatches the requests of one I/O turn one after another and runs each one's microtasks in
 * between, so a small body is read and published before the next request is even seen, and such a
 * count is 0 for every publish of a burst.
 *
 * The publish right after an alone one is alone too (`#afterPause`): a paced stream's late publish
 * is often followed at once by the next one, on time. Batched, that one waited for the end of the
 * turn, i.e. after the first one's writes to every subscriber (p50 +1.7 ms at 300 subscribers, where
 * bare Bun, publishing both in their requests, adds 0.06 ms). A burst costs one more single-row
 * commit: its third publish onwards share one.
 */
const ALONE_AFTER_MS = 2;

class SqliteEngine implements EmbeddedEngine {
  readonly kind = "embedded" as const;
  readonly name = "store" as const;
  readonly deliversAll = true;
  readonly sharedAcrossNodes = false;
  readonly #opts: EmbeddedEngineOptions;
  readonly #log: LogFn;
  #store: SqliteStore | null = null;
  #closed = false;
  #deliver: DeliverFn = () => {};
  #checkpointer: Checkpointer | null = null;
  #guard: StoreGuard | null = null;
  readonly #channels = new Map<string, ChannelState>();
  /** Committed keys in commit order, so expiry can stop at the first live one. */
  readonly #keys = new Map<string, Remembered>();
  readonly #sessions = new Map<string, { json: string; expiresAt: number }>();
  /** Committed tops not yet written to their channel rows: the next trim pass writes them (sqlite-trim.ts `REFRESH_TOPS`). */
  readonly #unsavedTops = new Map<string, number>();
  /** The per-user slots, counted with this node's open connections once app.ts wires them. */
  readonly localSlots = new LocalSlots();
  #batch: Batch | null = null;
  #flushTimer: ReturnType<typeof setImmediate> | null = null;
  /** When the last publish came; from start, as the first publishes after a restart often come together. */
  #lastPublishAt = 0;
  /** The last publish came ALONE_AFTER_MS or more after the one before it, with no batch open. */
  #afterPause = false;
  /**
   * Set while a batch is delivered: a publish made by a deliver callback must not be committed and
   * delivered at once, before the rest of this batch (a channel's events would arrive out of order).
   */
  #flushing = false;
  readonly #stats: EmbeddedEngineStats = { commits: 0, events: 0, failures: 0 };
  /** Batches committed since the last write made only to start the WAL over (`#afterCheckpoint`). */
  #commitsSinceRestart = 0;

  constructor(opts: EmbeddedEngineOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? ((level, msg, fields) => console.log(JSON.stringify({ level, msg, ...fields })));
  }

  get stats(): Readonly<EmbeddedEngineStats> {
    return { ...this.#stats };
  }

  async start(deliver: DeliverFn): Promise<void> {
    if (this.#store !== null || this.#closed) throw new TypeError("Cannot start: engine already started");
    const o = this.#opts;
    const { guard, store } = guardStore(
      { dataDir: o.dataDir, log: this.#log, minFreeBytes: o.minFreeBytes, identityCheckMs: o.identityCheckMs },
      () => openSqliteStore({ dataDir: o.dataDir, fileName: o.fileName ?? "courier.db", now: o.now, log: this.#log, walLimitBytes: o.walLimitBytes }),
    );
    try {
      for (const k of store.idempotencyKeys(o.now() - o.idempotencyTtlMs)) {
        this.#keys.delete(k.idem);
        this.#keys.set(k.idem, { channel: k.channel, offset: k.offset, epoch: k.epoch, ts: k.ts });
      }
    } catch (error) {
      // A failed start holds nothing: the dir stays free for the next attempt.
      store.close();
      guard.release();
      throw error;
    }
    this.#guard = guard;
    this.#deliver = deliver;
    this.#store = store;
    this.#lastPublishAt = o.now();
    const checkpoints = o.startCheckpointer ?? startCheckpointer;
    this.#checkpointer = checkpoints({ path: store.path, walLimitBytes: o.walLimitBytes, log: this.#log, onRun: (result) => this.#afterCheckpoint(result) });
  }

  publish(items: PublishItem[]): Promise<PublishOutcome[]> {
    if (this.#store === null) {
      if (!this.#closed) throw new TypeError("Cannot publish: engine not started");
      return Promise.reject(new StoreUnavailableError("Cannot publish: engine closed"));
    }
    const lost = this.#guard?.lost ?? null;
    if (lost !== null) return Promise.reject(new StoreUnavailableError(`Cannot publish: ${lost}`));
    // Every channel is loaded before any offset is handed out, so a store error assigns nothing.
    const states = new Array<ChannelState>(items.length);
    try {
      for (let i = 0; i < items.length; i++) states[i] = this.#writable(items[i]!.channel);
    } catch (error) {
      return Promise.reject(new StoreUnavailableError("Cannot publish: store unavailable", { cause: error }));
    }
    const now = this.#opts.now();
    const idle = this.#batch === null && !this.#flushing;
    const paused = idle && now - this.#lastPublishAt >= ALONE_AFTER_MS;
    const alone = paused || (idle && this.#afterPause);
    this.#afterPause = paused;
    this.#lastPublishAt = now;
    const batch = this.#batch ?? this.#openBatch(alone);
    const outcomes = new Array<PublishOutcome>(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const key = item.idempotencyKey;
      const seen = key === undefined ? undefined : (batch.keys.get(key) ?? this.#remembered(key, now));
      if (seen !== undefined) {
        outcomes[i] = { channel: seen.channel, offset: seen.offset, epoch: seen.epoch, duplicate: true };
        continue;
      }
      const state = states[i]!;
      const offset = ++state.top;
      const ev: StoredEvent = {
        channel: item.channel,
        offset,
        event: item.event,
        critical: item.critical,
        coalesce: item.coalesce ?? null,
        ts: now,
        frame: eventFrame({ channel: item.channel, offset, event: item.event, dataJson: item.dataJson, critical: item.critical, ts: now }),
      };
      batch.rows.push({ ev, idem: key ?? null, dataJson: item.dataJson });
      let group = batch.channels.get(item.channel);
      if (group === undefined) batch.channels.set(item.channel, (group = { state, events: [] }));
      group.events.push(ev);
      if (key !== undefined) batch.keys.set(key, { channel: item.channel, offset, epoch: state.epoch, ts: now });
      outcomes[i] = { channel: item.channel, offset, epoch: state.epoch, duplicate: false };
    }
    const stored = new Promise<PublishOutcome[]>((resolve, reject) => batch.waiters.push({ outcomes, resolve, reject }));
    if (alone) this.#flush();
    return stored;
  }

  async position(channel: string): Promise<Position> {
    const state = this.#readable(channel, "read a position");
    return { epoch: state.epoch, offset: state.committed };
  }

  async history(channel: string, after: number, limit: number): Promise<HistoryPage> {
    const store = this.#require("read history");
    const state = this.#readable(channel, "read history");
    // Read synchronously with `committed`: events of a pending batch are neither listed nor counted.
    let events: StoredEvent[] = [];
    try {
      if (limit > 0 && state.top > 0) events = store.history(channel, after, limit);
    } catch (error) {
      throw new StoreUnavailableError("Cannot read history: store unavailable", { cause: error });
    }
    return { epoch: state.epoch, offset: state.committed, events, trimmedThrough: state.trimmed };
  }

  async watch(channel: string): Promise<number> {
    // Single node: every commit is delivered, so everything past the committed top will arrive,
    // including a pending batch (delivered at its commit, or reassigned offsets if it fails).
    return this.#readable(channel, "watch a channel").committed;
  }

  unwatch(_channel: string): void {}

  acquireConnection(user: string, max: number): Promise<boolean> {
    return this.localSlots.acquireConnection(user, max);
  }

  releaseConnection(user: string): Promise<void> {
    return this.localSlots.releaseConnection(user);
  }

  async saveSession(id: string, state: SessionState, ttlMs: number): Promise<void> {
    // Stored as text so a caller mutating its object later cannot change the saved session.
    this.#sessions.set(id, { json: JSON.stringify(state), expiresAt: this.#opts.now() + ttlMs });
  }

  async loadSession(id: string): Promise<SessionState | null> {
    const saved = this.#sessions.get(id);
    if (saved === undefined) return null;
    if (saved.expiresAt <= this.#opts.now()) {
      this.#sessions.delete(id);
      return null;
    }
    return JSON.parse(saved.json) as SessionState;
  }

  async deleteSession(id: string): Promise<void> {
    this.#sessions.delete(id);
  }

  async putRecord(key: string, value: string, ttlMs: number): Promise<void> {
    const store = this.#require("store a record");
    try {
      store.putRecord(key, value, this.#opts.now() + ttlMs);
    } catch (error) {
      throw new StoreUnavailableError("Cannot store record: store unavailable", { cause: error });
    }
  }

  async getRecord(key: string): Promise<string | null> {
    const store = this.#require("read a record");
    try {
      return store.getRecord(key, this.#opts.now());
    } catch (error) {
      throw new StoreUnavailableError("Cannot read record: store unavailable", { cause: error });
    }
  }

  async trim(now: number): Promise<{ dropped: number }> {
    const store = this.#require("trim");
    const o = this.#opts;
    const { dropped, trimmed } = store.trim(
      { historySize: o.historySize, nonCriticalBefore: now - o.historyTtlMs, criticalBefore: now - o.criticalRetentionMs },
      this.#unsavedTops,
    );
    this.#unsavedTops.clear();
    store.expireRecords(now);
    for (const [channel, max] of trimmed) {
      const state = this.#channels.get(channel);
      if (state !== undefined && max > state.trimmed) state.trimmed = max;
    }
    for (const [key, r] of this.#keys) {
      if (now - r.ts < o.idempotencyTtlMs) break;
      this.#keys.delete(key);
    }
    for (const [id, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(id);
    // Channels whose publishes all failed: store.trim() collected their (empty) rows, if any.
    for (const [channel, state] of this.#channels) if (state.top === 0) this.#channels.delete(channel);
    if (this.#channels.size > CHANNEL_CACHE_SOFT_MAX) {
      // Only channels with nothing pending: their state is exactly what sqlite holds.
      for (const [channel, state] of this.#channels) if (state.top === state.committed) this.#channels.delete(channel);
    }
    return { dropped };
  }

  /** Proves the store takes a write now (see `StoreGuard.check`). */
  async check(): Promise<void> {
    const store = this.#require("check");
    this.#guard!.check(store, this.#opts.now());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#flushTimer !== null) clearImmediate(this.#flushTimer);
    this.#flush();
    // Stopped first: the final TRUNCATE checkpoint in store.close() must not race a PASSIVE one.
    this.#checkpointer?.close();
    this.#checkpointer = null;
    this.#store?.close();
    this.#store = null;
    this.#guard?.release();
    this.#guard = null;
  }

  #require(what: string): SqliteStore {
    if (this.#store !== null) return this.#store;
    throw this.#closed
      ? new StoreUnavailableError(`Cannot ${what}: engine closed`)
      : new TypeError(`Cannot ${what}: engine not started`);
  }

  /**
   * A channel's state for a reader. A channel with no stored event is answered, not remembered:
   * reads by any user token must not grow the store (or this cache) by one row per name.
   */
  #readable(channel: string, what: string): ChannelState {
    const cached = this.#channels.get(channel);
    if (cached !== undefined) return cached;
    const store = this.#require(what);
    let row;
    try {
      row = store.channel(channel);
    } catch (error) {
      throw new StoreUnavailableError(`Cannot ${what}: store unavailable`, { cause: error });
    }
    if (row === null) return { epoch: this.#emptyEpoch(store, channel), top: 0, committed: 0, trimmed: 0 };
    const state = { epoch: row.epoch, top: row.top, committed: row.top, trimmed: row.trimmed };
    this.#channels.set(channel, state);
    return state;
  }

  /** A channel's state for a publish: cached, so offsets handed out in this turn are counted. */
  #writable(channel: string): ChannelState {
    let state = this.#channels.get(channel);
    if (state === undefined) {
      state = this.#readable(channel, "publish");
      this.#channels.set(channel, state);
    }
    return state;
  }

  /**
   * The epoch of a channel that never had an event: derived from the store's id, so it is the same
   * on every call and after a restart without being stored, and it is the epoch the first publish
   * stores. A fresh store file (deleted, corrupt) has a new id, so these epochs change with it.
   */
  #emptyEpoch(store: SqliteStore, channel: string): string {
    return createHash("sha256").update(store.storeId).update("\0").update(channel).digest("hex").slice(0, 12);
  }

  #remembered(key: string, now: number): Remembered | undefined {
    const r = this.#keys.get(key);
    return r !== undefined && now - r.ts < this.#opts.idempotencyTtlMs ? r : undefined;
  }

  /** A batch flushed at the end of the turn, or by `publish` itself once its publish is queued. */
  #openBatch(alone: boolean): Batch {
    const batch: Batch = { rows: [], channels: new Map(), keys: new Map(), waiters: [] };
    this.#batch = batch;
    if (!alone) this.#flushTimer = setImmediate(() => this.#flush());
    return batch;
  }

  /**
   * The worker copied every frame of the WAL back, so the next write starts the WAL over, and
   * SQLite fsyncs the new WAL header inside that write (`synchronous = NORMAL` keeps this sync;
   * 0.3–4 ms on the VM's ext4). Left to the next batch, that fsync sits in a publish's commit, before
   * its delivery: at 100 paced publishes/s, 3 % of them (every checkpoint's next one). Written here,
   * in the worker's message, a task of its own, it lands between publishes. Only after commits: the
   * probe row's own frame is copied back by the next checkpoint, which then finds nothing to do here,
   * and the idle TRUNCATE follows as before.
   */
  #afterCheckpoint([busy, walPages, checkpointed]: [number, number, number]): void {
    if (busy !== 0 || walPages === 0 || checkpointed !== walPages || this.#commitsSinceRestart === 0) return;
    // A pending batch starts the WAL over itself, at the end of this turn.
    if (this.#batch !== null || this.#store === null || this.#guard!.lost !== null) return;
    this.#commitsSinceRestart = 0;
    try {
      this.#store.probe(this.#opts.now());
    } catch {
      // Nothing depends on this write: the next batch meets the same failure, and reports it.
    }
  }

  /** Commits the pending batch, then delivers and resolves; or rolls it back and rejects it. */
  #flush(): void {
    const batch = this.#batch;
    this.#batch = null;
    this.#flushTimer = null;
    if (batch === null) return;
    if (batch.rows.length > 0) {
      const tops = new Map<string, ChannelTop>();
      for (const [channel, { state, events }] of batch.channels) tops.set(channel, channelTop(state, events));
      try {
        // Checked before every commit: after `rm -rf` SQLite keeps committing into unlinked files.
        this.#guard!.verifyLinked();
        const lost = this.#guard!.lost;
        if (lost !== null) throw new StoreUnavailableError(lost);
        this.#store!.commit(batch.rows, tops);
      } catch (error) {
        for (const { state } of batch.channels.values()) state.top = state.committed;
        this.#stats.failures++;
        this.#log("error", "publish batch not stored", { events: batch.rows.length, error: String(error) });
        const refused = new StoreUnavailableError("Cannot publish: store unavailable", { cause: error });
        for (const w of batch.waiters) w.reject(refused);
        return;
      }
      this.#stats.commits++;
      this.#commitsSinceRestart++;
      this.#stats.events += batch.rows.length;
      for (const [channel, { state }] of batch.channels) {
        state.committed = state.top;
        this.#unsavedTops.set(channel, state.top);
      }
      for (const [key, r] of batch.keys) {
        // Re-inserted so the map stays in commit order for expiry.
        this.#keys.delete(key);
        this.#keys.set(key, r);
      }
      this.#flushing = true;
      for (const [channel, { events, state }] of batch.channels) {
        try {
          this.#deliver(channel, events, state.epoch);
        } catch (error) {
          // The events are stored: a failing fan-out must not turn the publish into an error.
          this.#log("error", "deliver threw", { channel, error: String(error) });
        }
      }
      this.#flushing = false;
    }
    for (const w of batch.waiters) w.resolve(w.outcomes);
  }
}

/** A channel's row after a batch: its new top, and its first event's `ts` per class for the age rule. */
function channelTop(state: ChannelState, events: readonly StoredEvent[]): ChannelTop {
  let normalTs: number | null = null;
  let criticalTs: number | null = null;
  for (const ev of events) {
    if (ev.critical) criticalTs ??= ev.ts;
    else normalTs ??= ev.ts;
    if (normalTs !== null && criticalTs !== null) break;
  }
  return { epoch: state.epoch, top: state.top, normalTs, criticalTs };
}
