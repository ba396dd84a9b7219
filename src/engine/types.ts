/**
 * The engine boundary: where channel streams, offsets, history, sessions and per-user limits live.
 * Two implementations pass one contract suite: embedded (memory + bun:sqlite, single node) and
 * Redis (cluster mode). The engine never touches sockets: it hands committed events to `deliver`,
 * and the hub fans them out through Bun's native topics.
 */

/** One event as stored and replayed. `frame` is the event frame text, built once at publish. */
export interface StoredEvent {
  channel: string;
  offset: number;
  event: string;
  critical: boolean;
  coalesce: string | null;
  /** Publish time, ms since epoch. */
  ts: number;
  frame: string;
}

/** A publish after validation. `dataJson` is the serialized `data` (never re-parsed). */
export interface PublishItem {
  channel: string;
  event: string;
  dataJson: string;
  critical: boolean;
  coalesce?: string;
  idempotencyKey?: string;
}

export interface PublishOutcome {
  channel: string;
  offset: number;
  epoch: string;
  /** True when an idempotency key matched an earlier publish: nothing new was stored. */
  duplicate: boolean;
}

/** A channel's generation and the offset of its newest event (0 when empty). */
export interface Position {
  epoch: string;
  offset: number;
}

export interface HistoryPage extends Position {
  /** Retained events with offset > `after`, oldest first, superseded (coalesced) ones left out. */
  events: StoredEvent[];
  /**
   * Highest offset lost to trimming (0 if none). A reader resuming after `after` missed events
   * when `after < trimmedThrough`.
   */
  trimmedThrough: number;
}

/** What a session remembers per channel so a new connection can resume it. */
export interface SessionChannel {
  epoch: string;
  /** Offset at subscribe time: with no ack yet, replay starts after it. */
  from: number;
  /** Highest acknowledged offset, cumulative (0 = none). */
  acked: number;
}

export interface SessionState {
  user: string;
  channels: Record<string, SessionChannel>;
}

/**
 * Called with committed events of one channel, in offset order, ready to fan out locally, and the
 * channel's epoch. An epoch other than the last one seen means history was lost (a cluster store
 * that dropped the channel): offsets start over and subscribers must be told.
 */
export type DeliverFn = (channel: string, events: StoredEvent[], epoch?: string) => void;

/** What a 503 says when a write may or may not have been stored (PROTOCOL §2). */
export const OUTCOME_UNKNOWN_MESSAGE = "outcome unknown; retry with the same Idempotency-Key";

/**
 * The store refused or could not take a write: the publish answers 503. `outcomeUnknown` is true
 * when the write was sent and may still have been stored (a timeout after sending, a connection
 * lost mid-command, replicas that did not confirm in time): only a retry with the same
 * Idempotency-Key is then safe. False means nothing was stored.
 */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
  readonly outcomeUnknown: boolean;
  constructor(message: string, options?: ErrorOptions & { outcomeUnknown?: boolean }) {
    super(message, options);
    this.outcomeUnknown = options?.outcomeUnknown ?? false;
  }
}

/**
 * Streams: offsets, storage, history and delivery to this node (centrifuge's `Broker`). The hub
 * and the publisher take this port.
 */
export interface Broker {
  /** Names the store's breaker and readiness check. */
  readonly name: "store" | "redis";
  /**
   * True when every publish reaches `deliver` whether or not this node watches the channel (the
   * embedded engine); false when only watched channels are delivered (a cluster engine).
   */
  readonly deliversAll: boolean;
  /** Opens storage and subscriptions; call once before anything else. */
  start(deliver: DeliverFn): Promise<void>;
  /**
   * Assigns the next offsets, stores every item as its durability class requires, then delivers.
   * Resolves once stored (critical: durably, surviving `kill -9`). All-or-nothing: rejects with
   * `StoreUnavailableError` and stores none when any cannot be stored.
   */
  publish(items: PublishItem[]): Promise<PublishOutcome[]>;
  /** The channel's current epoch and top offset (creating its epoch on first use). */
  position(channel: string): Promise<Position>;
  /** Retained events after `after`, oldest first, at most `limit`. */
  history(channel: string, after: number, limit: number): Promise<HistoryPage>;
  /**
   * This node has its first local subscriber of `channel`. Resolves, once the node is listening,
   * with offset W: every event of the channel with offset > W will reach `deliver` on this node,
   * in order, with no gap (cluster engines subscribe, then read the top; deliveries at or below W
   * are skipped, and a gap seen later is filled from the stream). The hub replays history up to
   * what was delivered and lets live delivery bring the rest, so a join has no gap and no duplicate.
   * The embedded engine delivers every publish, so it resolves with the current top.
   */
  watch(channel: string): Promise<number>;
  /** This node's last local subscriber of `channel` left. */
  unwatch(channel: string): void;
  /** Trims history by count, age and retention; returns how many events were dropped. */
  trim(now: number): Promise<{ dropped: number }>;
  /** Readiness probe: resolves when the engine can store, rejects otherwise. */
  check(): Promise<void>;
  /**
   * Cluster engines: resolves once a message published now came back through this node's
   * subscription (live delivery from other nodes works), rejects otherwise or when `signal` aborts.
   * The readiness check `broker`; absent on the embedded engine, which delivers in process.
   */
  checkDelivery?(signal?: AbortSignal): Promise<void>;
  /** Flushes pending writes and closes. */
  close(): Promise<void>;
}

/** Where sessions (PROTOCOL.md §6) are kept between connections. `src/server/sessions.ts` takes it. */
export interface SessionStore {
  /**
   * True when another node may resume a session saved here (Redis): state is then saved as it
   * changes, not only on close, so a node that dies does not lose it.
   */
  readonly sharedAcrossNodes: boolean;
  saveSession(id: string, state: SessionState, ttlMs: number): Promise<void>;
  loadSession(id: string): Promise<SessionState | null>;
  deleteSession(id: string): Promise<void>;
}

/** Per-user connection limits, counted where every node sees them. The upgrade takes it. */
export interface ConnectionSlots {
  /** Takes one of `max` connection slots for `user`; false when all are taken. */
  acquireConnection(user: string, max: number): Promise<boolean>;
  releaseConnection(user: string): Promise<void>;
  /**
   * After `acquireConnection` answered false for `user`: ms until one of its slots can free (a
   * crashed node's slots lapse), when the engine knows; the 429's `Retry-After`. Read once.
   */
  connectionRetryAfterMs?(user: string): number | undefined;
}

/** How many connections of a user are open on this node (the connection manager). */
export interface OpenConnectionCount {
  countOf(user: string): number;
}

/**
 * An optional ability of an engine whose slots are this node's alone (`local-slots.ts`): it counts
 * a user's slots as their open connections plus what is in flight, so an idle connection costs it
 * no entry. The node tells it where open connections are counted, and as each opens and closes.
 */
export interface LocalSlotsAbility {
  /** Called once, before the first upgrade. */
  countOpenIn(open: OpenConnectionCount): void;
  /** A connection of `user` opened: its slot is now counted as an open connection. */
  opened(user: string): void;
  /** A connection of `user` closed: its slot is held apart until released (or transferred). */
  closed(user: string): void;
}

/** Small shared records (a job's owner). The job registry takes it. */
export interface RecordStore {
  /**
   * Stores a small record every node can read (e.g. a job's owner), durably where the engine is,
   * until `ttlMs` from now. Resolves once stored.
   */
  putRecord(key: string, value: string, ttlMs: number): Promise<void>;
  /** A record's value, or null when unknown or expired. */
  getRecord(key: string): Promise<string | null>;
}

/** An optional ability of cluster engines: every node's stats, for `/ws/stats?scope=cluster`. */
export interface ClusterStats {
  /** Stores this node's stats for `clusterStats`, visible for `ttlMs` (server time). */
  reportStats(stats: object, ttlMs: number): Promise<void>;
  /** The live stats reports of every node, this one included. */
  clusterStats(): Promise<Array<{ node: string; stats: unknown }>>;
}

/** One page of presence: the full subscriber count and, sorted by id, at most the asked number of users. */
export interface PresencePage {
  /** Connections subscribed to the channel on every live node: always the full count. */
  subscribers: number;
  users: Array<{ user: string; connections: number }>;
}

/**
 * Who is subscribed to a channel (centrifuge's `PresenceManager`), counted as subscriptions change
 * (the hub's join and leave), never by scanning sockets. Embedded: in memory (`presence-memory.ts`);
 * Redis: this node's counts in memory, mirrored per channel where every node reads them
 * (`presence-redis.ts`).
 */
export interface Presence {
  /**
   * A connection of `user` on this node joined (+1) or left (-1) `channel`. Synchronous and never
   * throws: called from the hub's join and leave, off the publish path; a cluster write goes out
   * in the background (one per call) and is retried when it fails.
   */
  change(channel: string, user: string, delta: 1 | -1): void;
  /** `channel`'s subscribers on every live node, listing at most `maxUsers` users. */
  read(channel: string, maxUsers: number): Promise<PresencePage>;
}

/** What one node answered to a control command, and how many nodes did not answer in time. */
export interface ControlOutcome {
  replies: unknown[];
  /** Nodes that got the command but did not answer within the wait (they may still act on it). */
  missing: number;
}

/**
 * Commands every node runs against its own connections (`/v1/disconnect`, `/v1/unsubscribe`, a
 * session taken over on another node). The engine only carries them: commands and answers are
 * JSON values the server defines (`src/server/control-commands.ts`). Embedded: this node alone
 * (`control-local.ts`); Redis: a pub/sub channel every node listens to, answers on each node's own
 * reply channel (`control-redis.ts`).
 */
export interface ControlBus {
  /** Sets this node's handler; commands that arrive before it are answered by nobody. */
  serve(handler: (command: unknown) => unknown | Promise<unknown>): void;
  /**
   * Runs `command` on every node, this one included, and resolves with the answers that arrived
   * within `waitMs`. Rejects with `StoreUnavailableError` when the other nodes cannot be reached
   * (this node has still run it).
   */
  broadcast(command: unknown, waitMs: number): Promise<ControlOutcome>;
}

/** A whole engine: every port, and the optional abilities it has. Consumers take one port each. */
export interface Engine extends Broker, SessionStore, ConnectionSlots, RecordStore {
  /** For logs and `/ws/stats` only: code decides on the ports' fields, never on this. */
  readonly kind: "embedded" | "redis";
  /** Present on engines that span nodes. */
  readonly cluster?: ClusterStats;
  /** Present on engines that span nodes; a single node keeps presence in memory (`presence-memory.ts`). */
  readonly presence?: Presence;
  /** Present on engines that span nodes; a single node runs commands itself (`control-local.ts`). */
  readonly control?: ControlBus;
  /** Present on a single-node engine: its `ConnectionSlots` count with the node's open connections. */
  readonly localSlots?: LocalSlotsAbility;
}

/** Retention and timing every engine takes; values come from `config.delivery`. */
export interface EngineOptions {
  /** Non-critical events retained per channel. */
  historySize: number;
  /** Age after which non-critical events leave history. */
  historyTtlMs: number;
  /** Critical events are kept at least this long. */
  criticalRetentionMs: number;
  /** How long an idempotency key answers its first outcome. */
  idempotencyTtlMs: number;
  /** The clock (ms since epoch); tests inject their own. */
  now: () => number;
}
