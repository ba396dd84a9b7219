/**
 * The single-node engine: channel state cached in memory, events in bun:sqlite (WAL).
 * Publishes of one event-loop turn are group-committed in one transaction, so the per-event cost is
 * one prepared insert, and a publish resolves only once its events are durable (PROTOCOL §5).
 */
import { eventFrame } from "../protocol/serializer.ts";
import { startCheckpointer, type Checkpointer } from "./sqlite-checkpointer.ts";
import { openSqliteStore, type BatchRow, type LogFn, type SqliteStore } from "./sqlite-store.ts";
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

class SqliteEngine implements EmbeddedEngine {
  readonly kind = "embedded" as const;
  readonly deliversAll = true;
  readonly #opts: EmbeddedEngineOptions;
  readonly #log: LogFn;
  #store: SqliteStore | null = null;
  #closed = false;
  #deliver: DeliverFn = () => {};
  #checkpointer: Checkpointer | null = null;
  readonly #channels = new Map<string, ChannelState>();
  /** Committed keys in commit order, so expiry can stop at the first live one. */
  readonly #keys = new Map<string, Remembered>();
  readonly #sessions = new Map<string, { json: string; expiresAt: number }>();
  readonly #slots = new Map<string, number>();
  #batch: Batch | null = null;
  #flushTimer: ReturnType<typeof setImmediate> | null = null;
  readonly #stats: EmbeddedEngineStats = { commits: 0, events: 0, failures: 0 };

  constructor(opts: EmbeddedEngineOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? ((level, msg, fields) => console.log(JSON.stringify({ level, msg, ...fields })));
  }

  get stats(): Readonly<EmbeddedEngineStats> {
    return { ...this.#stats };
  }

  async start(deliver: DeliverFn): Promise<void> {
    if (this.#store !== null || this.#closed) throw new TypeError("Cannot start: engine already started");
    const store = openSqliteStore({
      dataDir: this.#opts.dataDir,
      fileName: this.#opts.fileName ?? "courier.db",
      now: this.#opts.now,
      log: this.#log,
    });
    for (const k of store.idempotencyKeys(this.#opts.now() - this.#opts.idempotencyTtlMs)) {
      this.#keys.delete(k.idem);
      this.#keys.set(k.idem, { channel: k.channel, offset: k.offset, epoch: k.epoch, ts: k.ts });
    }
    this.#deliver = deliver;
    this.#store = store;
    this.#checkpointer = startCheckpointer({ path: store.path, log: this.#log });
  }

  publish(items: PublishItem[]): Promise<PublishOutcome[]> {
    if (this.#store === null) {
      if (!this.#closed) throw new TypeError("Cannot publish: engine not started");
      return Promise.reject(new StoreUnavailableError("Cannot publish: engine closed"));
    }
    // Every channel is loaded before any offset is handed out, so a store error assigns nothing.
    const states = new Array<ChannelState>(items.length);
    try {
      for (let i = 0; i < items.length; i++) states[i] = this.#channel(items[i]!.channel);
    } catch (error) {
      return Promise.reject(new StoreUnavailableError("Cannot publish: store unavailable", { cause: error }));
    }
    const now = this.#opts.now();
    const batch = this.#batch ?? this.#openBatch();
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
      batch.rows.push({ ev, idem: key ?? null });
      let group = batch.channels.get(item.channel);
      if (group === undefined) batch.channels.set(item.channel, (group = { state, events: [] }));
      group.events.push(ev);
      if (key !== undefined) batch.keys.set(key, { channel: item.channel, offset, epoch: state.epoch, ts: now });
      outcomes[i] = { channel: item.channel, offset, epoch: state.epoch, duplicate: false };
    }
    return new Promise((resolve, reject) => batch.waiters.push({ outcomes, resolve, reject }));
  }

  async position(channel: string): Promise<Position> {
    const state = this.#channel(channel);
    return { epoch: state.epoch, offset: state.committed };
  }

  async history(channel: string, after: number, limit: number): Promise<HistoryPage> {
    const store = this.#require("read history");
    const state = this.#channel(channel);
    // Read synchronously with `committed`: events of a pending batch are neither listed nor counted.
    const events = limit > 0 ? store.history(channel, after, limit) : [];
    return { epoch: state.epoch, offset: state.committed, events, trimmedThrough: state.trimmed };
  }

  async watch(channel: string): Promise<number> {
    // Single node: every commit is delivered, so everything past the committed top will arrive,
    // including a pending batch (delivered at its commit, or reassigned offsets if it fails).
    return this.#channel(channel).committed;
  }

  unwatch(_channel: string): void {}

  async acquireConnection(user: string, max: number): Promise<boolean> {
    const used = this.#slots.get(user) ?? 0;
    if (used >= max) return false;
    this.#slots.set(user, used + 1);
    return true;
  }

  async releaseConnection(user: string): Promise<void> {
    const used = this.#slots.get(user) ?? 0;
    if (used <= 1) this.#slots.delete(user);
    else this.#slots.set(user, used - 1);
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
    const { dropped, trimmed } = store.trim({
      historySize: o.historySize,
      nonCriticalBefore: now - o.historyTtlMs,
      criticalBefore: now - o.criticalRetentionMs,
    });
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
    if (this.#channels.size > CHANNEL_CACHE_SOFT_MAX) {
      // Only channels with nothing pending: their state is exactly what sqlite holds.
      for (const [channel, state] of this.#channels) if (state.top === state.committed) this.#channels.delete(channel);
    }
    return { dropped };
  }

  async check(): Promise<void> {
    this.#require("check").ping();
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
  }

  #require(what: string): SqliteStore {
    if (this.#store !== null) return this.#store;
    throw this.#closed
      ? new StoreUnavailableError(`Cannot ${what}: engine closed`)
      : new TypeError(`Cannot ${what}: engine not started`);
  }

  #channel(channel: string): ChannelState {
    let state = this.#channels.get(channel);
    if (state !== undefined) return state;
    const store = this.#require("use a channel");
    const row = store.channel(channel);
    if (row !== null) {
      state = { epoch: row.epoch, top: row.top, committed: row.top, trimmed: row.trimmed };
    } else {
      // Persisted at once: an epoch a client has seen must survive a crash even with no event yet.
      const epoch = newEpoch();
      store.createChannel(channel, epoch);
      state = { epoch, top: 0, committed: 0, trimmed: 0 };
    }
    this.#channels.set(channel, state);
    return state;
  }

  #remembered(key: string, now: number): Remembered | undefined {
    const r = this.#keys.get(key);
    return r !== undefined && now - r.ts < this.#opts.idempotencyTtlMs ? r : undefined;
  }

  #openBatch(): Batch {
    const batch: Batch = { rows: [], channels: new Map(), keys: new Map(), waiters: [] };
    this.#batch = batch;
    this.#flushTimer = setImmediate(() => this.#flush());
    return batch;
  }

  /** Commits the pending batch, then delivers and resolves; or rolls it back and rejects it. */
  #flush(): void {
    const batch = this.#batch;
    this.#batch = null;
    this.#flushTimer = null;
    if (batch === null) return;
    if (batch.rows.length > 0) {
      const tops = new Map<string, number>();
      for (const [channel, { state }] of batch.channels) tops.set(channel, state.top);
      try {
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
      this.#stats.events += batch.rows.length;
      for (const { state } of batch.channels.values()) state.committed = state.top;
      for (const [key, r] of batch.keys) {
        // Re-inserted so the map stays in commit order for expiry.
        this.#keys.delete(key);
        this.#keys.set(key, r);
      }
      for (const [channel, { events, state }] of batch.channels) {
        try {
          this.#deliver(channel, events, state.epoch);
        } catch (error) {
          // The events are stored: a failing fan-out must not turn the publish into an error.
          this.#log("error", "deliver threw", { channel, error: String(error) });
        }
      }
    }
    for (const w of batch.waiters) w.resolve(w.outcomes);
  }
}

/** 48 random bits: a new epoch must not collide with the one a client remembers. */
function newEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
