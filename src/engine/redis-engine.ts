/**
 * The cluster engine on Redis (Bun's built-in `RedisClient`): channels, offsets, history,
 * idempotency keys, sessions, per-user connection slots and node stats shared by every node.
 *
 * A publish is one Lua script per channel (`redis-scripts.ts`): it checks idempotency, assigns
 * offsets, stores each event in the channel's non-critical or critical stream, applies coalescing,
 * and PUBLISHes the events to the channel's pub/sub channel, all atomically. Every node, the
 * publishing one included, delivers from pub/sub (`redis-watcher.ts`), so all nodes see one order.
 *
 * Critical retention by design: critical events live in their own stream that no count bound
 * ever touches; only `trim` removes them, and only once older than `criticalRetentionMs`.
 * Every command is bounded by `commandTimeoutMs` and nothing queues while Redis is away, so a
 * publish that cannot be stored fails fast with `StoreUnavailableError` (a 503).
 *
 * Why one file over 300 lines: one class implements every engine port (Broker, SessionStore,
 * ConnectionSlots, RecordStore, ClusterStats) over the same three Redis connections, breaker-free
 * command runner and dataset fence; splitting it per port (sharing a connection object) is the next
 * step, not yet done.
 */
import { CLIENT_OPTIONS, connectWithin, keepConnected, RedisClient, withTimeout, type LogFn } from "./redis-client.ts";
import { createPubSubProbe, type PubSubProbe } from "./redis-pubsub-probe.ts";
import { redisKeys } from "./redis-keys.ts";
import { GC_SLACK_MS, mergeByOffset, publishCall, readPublishReply, streamEntries } from "./redis-codec.ts";
import { createDatasetFence, type DatasetFence } from "./redis-fence.ts";
import { createNodePresence, type NodePresence } from "./redis-nodes.ts";
import { ALL_SCRIPTS, CLAIM, evalScript, HISTORY, LEASE, LEASE_RELEASE, POSITION, PUBLISH, TRIM, type Script } from "./redis-scripts.ts";
import { createWatcher, type Watcher } from "./redis-watcher.ts";
import { RedisPresence } from "./presence-redis.ts";
import { createRedisControlBus, type RedisControlBus } from "./control-redis.ts";
import {
  OUTCOME_UNKNOWN_MESSAGE,
  StoreUnavailableError,
  type ClusterStats,
  type DeliverFn,
  type Engine,
  type EngineOptions,
  type HistoryPage,
  type Position,
  type PublishItem,
  type PublishOutcome,
  type SessionState,
} from "./types.ts";

export interface RedisEngineOptions extends EngineOptions {
  /** `redis://…` of the shared Redis. */
  url: string;
  /** This node's name (`COURIER_NODE_ID`). */
  nodeId: string;
  /** Prefix of every key; no braces. Default `courier:`. */
  keyPrefix?: string;
  /** Structured log sink. Default: silent. */
  log?: LogFn;
  /** Bound on every Redis command; past it the call rejects with `StoreUnavailableError`. Default 1000. */
  commandTimeoutMs?: number;
  /** How long `start` waits for the first connection before carrying on disconnected. Default 2000. */
  connectTimeoutMs?: number;
  /**
   * A node whose heartbeat is older than this stops counting toward connection limits, so a user
   * whose node crashed can reconnect elsewhere after at most this long. Default 3000.
   */
  heartbeatTtlMs?: number;
  /**
   * Replicas that must confirm a publish holding a critical event before it resolves (`WAIT`,
   * bounded by `commandTimeoutMs` from the publish's start); fewer rejects with an outcome-unknown
   * `StoreUnavailableError`. Default 0 (the primary's answer is enough).
   */
  waitReplicas?: number;
  /**
   * Non-critical events a channel may hold beyond `historySize` before a publish trims it back
   * (between `trim` passes). Default 10000; 0 leaves count trimming to `trim` alone.
   */
  trimSlack?: number;
  /**
   * One node at a time trims (every node calls `trim`, the holder of this lease does the work, the
   * others answer `dropped: 0`); a holder that stops renewing loses it after this long. Default 60000.
   */
  trimLeaseMs?: number;
}

/** The Redis engine with the cluster-wide extras. */
export interface RedisEngine extends Engine, ClusterStats {
  readonly kind: "redis";
  readonly nodeId: string;
  readonly cluster: ClusterStats;
  readonly presence: RedisPresence;
  readonly control: RedisControlBus;
}

/**
 * Creates the Redis engine. `start` connects (carrying on if Redis is down: `check` reports it and
 * Bun keeps reconnecting), loads the scripts and starts the node heartbeat.
 *
 * @example
 * const engine = createRedisEngine({ ...engineOptions, now: Date.now, url: "redis://127.0.0.1:6379", nodeId: "node-1" });
 * await engine.start((channel, events) => hub.fanOut(channel, events));
 * const [outcome] = await engine.publish([{ channel: "user:a", event: "hello", dataJson: "{}", critical: false }]);
 * // outcome: { channel: "user:a", offset: 1, epoch: "…", duplicate: false }
 */
export function createRedisEngine(opts: RedisEngineOptions): RedisEngine {
  return new RedisEngineImpl(opts);
}

/**
 * How long the state a read leaves for a channel that never saw an event lives (renewed by each
 * read; the first publish keeps it for good): long enough that a subscriber waiting for the first
 * event keeps its epoch, short enough that reads of random names cannot pile up keys.
 */
const READ_STATE_TTL_MS = 60 * 60_000;

class RedisEngineImpl implements RedisEngine {
  readonly kind = "redis";
  readonly name = "redis";
  readonly deliversAll = false;
  readonly sharedAcrossNodes = true;
  readonly cluster: ClusterStats = this;
  readonly nodeId: string;
  readonly presence: RedisPresence;
  readonly control: RedisControlBus;
  #o: Required<Omit<RedisEngineOptions, "log" | "keyPrefix">> & { log: LogFn };
  #keys: ReturnType<typeof redisKeys>;
  #presence: NodePresence;
  #cmd: RedisClient | null = null;
  /**
   * Where publishes go: the command connection, or with `waitReplicas` one of their own, since
   * `WAIT` blocks its connection until the replicas answer and covers that connection's writes.
   */
  #pub: RedisClient | null = null;
  #sub: RedisClient | null = null;
  #fence: DatasetFence;
  #watcher: Watcher | null = null;
  #probe: PubSubProbe | null = null;
  #stops: (() => void)[] = [];
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  /** Per refused user: ms until another node's slots can lapse (`connectionRetryAfterMs`). */
  #slotHints = new Map<string, number>();
  /** Channels this node has put in the trim registry. */
  #registered = new Set<string>();
  #epochSeed = crypto.randomUUID().slice(0, 8);
  #epochCount = 0;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** Publishes still waiting for Redis; `close` lets them settle first. */
  #inFlight = new Set<Promise<PublishOutcome[]>>();

  constructor(opts: RedisEngineOptions) {
    for (const [name, v] of Object.entries({ historySize: opts.historySize, historyTtlMs: opts.historyTtlMs, criticalRetentionMs: opts.criticalRetentionMs, idempotencyTtlMs: opts.idempotencyTtlMs })) {
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`Invalid ${name}: ${v}`);
    }
    if (!opts.nodeId) throw new RangeError("Invalid nodeId: empty");
    this.nodeId = opts.nodeId;
    this.#o = {
      ...opts,
      log: opts.log ?? (() => {}),
      commandTimeoutMs: opts.commandTimeoutMs ?? 1_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 2_000,
      heartbeatTtlMs: opts.heartbeatTtlMs ?? 3_000,
      waitReplicas: opts.waitReplicas ?? 0,
      trimSlack: opts.trimSlack ?? 10_000,
      trimLeaseMs: opts.trimLeaseMs ?? 60_000,
    };
    this.#keys = redisKeys(opts.keyPrefix ?? "courier:");
    this.#fence = createDatasetFence({
      key: this.#keys.fence,
      script: (s, keys, args, what) => this.#script(s, keys, args, what),
      candidate: () => this.#candidateEpoch(),
      log: this.#o.log,
    });
    this.#presence = createNodePresence({
      nodeId: opts.nodeId,
      keys: this.#keys,
      heartbeatTtlMs: this.#o.heartbeatTtlMs,
      script: (s, keys, args, what) => this.#script(s, keys, args, what),
      command: (cmd, args, what) => this.#run(this.#client().send(cmd, args), what),
      log: this.#o.log,
    });
    const wiring = { prefix: this.#keys.prefix, member: this.#presence.member, client: () => this.#client(), run: <T>(p: Promise<T>, what: string) => this.#run(p, what) };
    this.presence = new RedisPresence({ ...wiring, nodesKey: this.#keys.nodes, retryMs: Math.max(250, this.#o.commandTimeoutMs) });
    this.control = createRedisControlBus({ ...wiring, url: opts.url, log: this.#o.log, commandTimeoutMs: this.#o.commandTimeoutMs, connectTimeoutMs: this.#o.connectTimeoutMs, retryMs: Math.max(250, this.#o.commandTimeoutMs) });
  }

  async start(deliver: DeliverFn): Promise<void> {
    if (this.#cmd) throw new TypeError("Cannot start: the Redis engine is already started");
    const log = this.#o.log;
    const retryMs = Math.max(250, this.#o.commandTimeoutMs);
    const cmd = (this.#cmd = new RedisClient(this.#o.url, CLIENT_OPTIONS));
    // Each (re)connect checks the dataset against what this node saw before any channel is read,
    // and rewrites this node's presence (a reconnect may follow a lapsed heartbeat, after which
    // reads deleted it).
    const onConnect = () => {
      void this.#fence.check().catch((error: unknown) => log("warn", "redis fence check failed", { error: (error as Error)?.message }));
      this.presence.restore();
    };
    this.#stops.push(keepConnected(cmd, { name: "command", clientName: `courier:${this.nodeId}:cmd`, retryMs, log, onConnect }));
    const controlStarted = this.control.start();
    const up = await connectWithin(cmd, this.#o.connectTimeoutMs);
    if (this.#o.waitReplicas > 0) {
      const pub = (this.#pub = new RedisClient(this.#o.url, CLIENT_OPTIONS));
      this.#stops.push(keepConnected(pub, { name: "publish", clientName: `courier:${this.nodeId}:pub`, retryMs, log }));
      if (up) await connectWithin(pub, this.#o.connectTimeoutMs);
      else void connectWithin(pub, this.#o.connectTimeoutMs);
    } else {
      this.#pub = cmd;
    }
    // Subscriptions take over a connection, so they get their own.
    let sub: RedisClient;
    try {
      sub = up ? await withTimeout(cmd.duplicate(), this.#o.connectTimeoutMs, "duplicate") : new RedisClient(this.#o.url, CLIENT_OPTIONS);
    } catch {
      sub = new RedisClient(this.#o.url, CLIENT_OPTIONS);
    }
    this.#sub = sub;
    const watcher = (this.#watcher = createWatcher({
      sub,
      pubsubName: (channel) => this.#keys.channel(channel).pubsub,
      readTop: (channel) => this.#run(cmd.send("HGET", [this.#keys.channel(channel).meta, "t"]), "read top").then((t) => Number(t ?? 0)),
      history: (channel, after, limit, seen) => this.#history(channel, after, limit, seen),
      observed: (watermark) => this.#fence.observe(watermark),
      regressed: (seen) => this.#fence.check(seen, true),
      deliver,
      log,
      commandTimeoutMs: this.#o.commandTimeoutMs,
      retryMs,
    }));
    const probe = (this.#probe = createPubSubProbe({ sub, channel: this.#keys.probe(this.nodeId), publish: (ch, m) => this.#run(cmd.send("PUBLISH", [ch, m]), "probe publish") }));
    const onSubscriberConnect = () => {
      void watcher.resubscribe();
      probe.resubscribe();
    };
    this.#stops.push(keepConnected(sub, { name: "subscriber", clientName: `courier:${this.nodeId}:sub`, retryMs, log, onConnect: onSubscriberConnect }));
    if (!sub.connected) void connectWithin(sub, this.#o.connectTimeoutMs);
    this.#heartbeat = setInterval(() => void this.#presence.beat(), Math.max(100, Math.floor(this.#o.heartbeatTtlMs / 3)));
    this.#heartbeat.unref?.();
    await controlStarted;
    if (!up) {
      log("warn", "redis unreachable at start; retrying in the background", { url: redactUrl(this.#o.url) });
      return;
    }
    await Promise.all([
      this.#presence.beat(),
      this.#run(cmd.send("ROLE", []), "role")
        .then((reply) => {
          if (Array.isArray(reply) && reply[0] !== "master") log("warn", "redis is a replica: publishes will fail until Courier points at the primary", { role: reply[0] });
        })
        .catch(() => {}),
      ...ALL_SCRIPTS.map((s) => this.#run(cmd.send("SCRIPT", ["LOAD", s.source]), "script load").catch(() => {})),
      this.#run(cmd.send("CONFIG", ["GET", "appendonly"]), "config")
        .then((reply) => {
          const value = Array.isArray(reply) ? reply[1] : (reply as Record<string, string>)?.appendonly;
          if (value === "no") log("warn", "redis appendonly is off: a Redis crash loses acknowledged events", {});
        })
        .catch(() => {}),
    ]);
  }

  publish(items: PublishItem[]): Promise<PublishOutcome[]> {
    const p = this.#publish(items);
    this.#inFlight.add(p);
    const done = () => void this.#inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  async #publish(items: PublishItem[]): Promise<PublishOutcome[]> {
    this.#client(); // rejects before anything is sent when not started or closed
    const ts = this.#o.now();
    const outcomes = new Array<PublishOutcome>(items.length);
    // Idempotency keys are global but the publish script sees only its channel's keys (one
    // cluster slot), so each key is first claimed for a channel. Items whose key another channel
    // owns answer that channel's outcome.
    const owners = items.some((it) => it.idempotencyKey !== undefined)
      ? await Promise.all(items.map((it) => (it.idempotencyKey === undefined ? it.channel : this.#claim(it))))
      : null;
    const elsewhere: { index: number; owner: string }[] = [];
    const groups = new Map<string, number[]>();
    items.forEach((it, index) => {
      const owner = owners ? owners[index]! : it.channel;
      if (owner !== it.channel) elsewhere.push({ index, owner });
      else if (groups.has(owner)) groups.get(owner)!.push(index);
      else groups.set(owner, [index]);
    });
    // Scripts go out synchronously, in item order: publishes of one turn keep their call order.
    const settled = await Promise.allSettled([...groups].map(([channel, indexes]) => this.#publishGroup(channel, indexes, items, ts, outcomes)));
    const failed = settled.filter((r) => r.status === "rejected").map((r) => r.reason as unknown);
    if (failed.length > 0) {
      // One script per channel: when some channel's events were (or may have been) stored, the
      // batch as a whole is not "nothing published", whatever the failing channel's reason.
      const certain = failed.every((e) => e instanceof StoreUnavailableError && !e.outcomeUnknown);
      if (certain && failed.length === settled.length) throw failed[0];
      const first = failed[0] as Error;
      throw new StoreUnavailableError(`Redis publish of ${failed.length} of ${settled.length} channels failed (${first?.message}); ${OUTCOME_UNKNOWN_MESSAGE}`, { cause: first, outcomeUnknown: true });
    }
    try {
      for (const { index, owner } of elsewhere) outcomes[index] = await this.#duplicateOf(owner, items[index]!.idempotencyKey!);
    } catch (error) {
      if (groups.size === 0) throw error;
      throw new StoreUnavailableError(`${(error as Error).message}; ${OUTCOME_UNKNOWN_MESSAGE}`, { cause: error, outcomeUnknown: true });
    }
    return outcomes;
  }

  async #publishGroup(channel: string, indexes: number[], items: PublishItem[], ts: number, outcomes: PublishOutcome[]) {
    const o = this.#o;
    const group = indexes.map((i) => items[i]!);
    const { keys, args } = publishCall(this.#keys, channel, group, ts, {
      candidateEpoch: this.#candidateEpoch(),
      idempotencyTtlMs: o.idempotencyTtlMs,
      historySize: o.historySize,
      trimCap: o.trimSlack > 0 ? o.historySize + o.trimSlack : 0,
      knownWatermark: this.#fence.known,
    });
    const pub = this.#publisher();
    // Not connected: the script is never sent (no offline queue), so nothing was stored.
    if (!pub.connected) throw new StoreUnavailableError("Redis is not connected; nothing was published");
    this.#register(channel);
    const started = performance.now();
    let reply: unknown;
    try {
      reply = await this.#run(evalScript(pub, PUBLISH, keys, args), "publish");
    } catch (error) {
      throw outcomeOf(error);
    }
    const { outcomes: got, watermark } = readPublishReply(channel, reply);
    this.#fence.observe(watermark);
    got.forEach((outcome, j) => (outcomes[indexes[j]!] = outcome));
    if (o.waitReplicas > 0 && got.some((g, j) => !g.duplicate && group[j]!.critical)) await this.#waitReplicas(pub, started);
  }

  /**
   * Waits until `waitReplicas` replicas hold this connection's writes, within what is left of the
   * publish's `commandTimeoutMs`. Fewer: the primary has the events but a failover may lose them,
   * so the caller cannot know whether they will survive: outcome unknown.
   */
  async #waitReplicas(pub: RedisClient, started: number) {
    const want = this.#o.waitReplicas;
    const leftMs = Math.max(1, Math.floor(this.#o.commandTimeoutMs - (performance.now() - started)));
    let acked: number;
    try {
      // Redis answers WAIT at its own timeout with the count so far; the slack lets that answer win.
      acked = Number(await withTimeout(pub.send("WAIT", [String(want), String(leftMs)]), leftMs + 250, "wait replicas"));
    } catch (error) {
      throw new StoreUnavailableError(`Redis replicas did not confirm: ${(error as Error).message}`, { cause: error, outcomeUnknown: true });
    }
    if (acked < want) throw new StoreUnavailableError(`Redis replicas confirmed ${acked} of ${want} within ${leftMs} ms`, { outcomeUnknown: true });
  }

  /** Claims the item's idempotency key for its channel; resolves with the channel owning it. */
  #claim(item: PublishItem): Promise<string> {
    const o = this.#o;
    const args = [String(o.now()), String(o.idempotencyTtlMs), String(o.idempotencyTtlMs + GC_SLACK_MS), item.channel];
    return this.#script(CLAIM, [this.#keys.claim(item.idempotencyKey!)], args, "claim") as Promise<string>;
  }

  async #duplicateOf(owner: string, key: string): Promise<PublishOutcome> {
    const v = (await this.#run(this.#client().send("GET", [this.#keys.idempotency(owner, key)]), "idempotency")) as string | null;
    const m = v ? /^(\d+)\|(\d+)\|(.*)$/.exec(v) : null;
    if (!m || Number(m[1]) <= this.#o.now()) {
      // The first publish with this key is still in flight (or failed): a retry will find its outcome.
      throw new StoreUnavailableError(`Idempotency key in use by a publish on ${owner} that has not completed`);
    }
    return { channel: owner, offset: Number(m[2]), epoch: m[3]!, duplicate: true };
  }

  /** Best effort: a channel missing from the registry only escapes trimming until its next publish. */
  #register(channel: string) {
    if (this.#registered.has(channel)) return;
    // Only a cache of SADDs already made: forgetting it costs one repeated SADD per channel.
    if (this.#registered.size >= 100_000) this.#registered.clear();
    this.#registered.add(channel);
    this.#run(this.#client().send("SADD", [this.#keys.channels, channel]), "register").catch(() => this.#registered.delete(channel));
  }

  async position(channel: string): Promise<Position> {
    const keys = this.#keys.fencedList(this.#keys.channel(channel));
    const reply = (await this.#script(POSITION, keys, [this.#candidateEpoch(), String(this.#fence.known), String(READ_STATE_TTL_MS)], "position")) as [string, number, string];
    this.#fence.observe(Number(reply[2]));
    return { epoch: reply[0], offset: Number(reply[1]) };
  }

  async history(channel: string, after: number, limit: number): Promise<HistoryPage> {
    const { base: _, ...page } = await this.#history(channel, after, limit, null);
    return page;
  }

  /** A history page and its epoch's base; `seen` lets a watch fence the channel (see HISTORY). */
  async #history(channel: string, after: number, limit: number, seen: { epoch: string; top: number } | null): Promise<HistoryPage & { base: number }> {
    if (!Number.isInteger(after) || after < 0) throw new RangeError(`Invalid history offset: ${after}`);
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`Invalid history limit: ${limit}`);
    const keys = this.#keys.fencedList(this.#keys.channel(channel));
    const args = [this.#candidateEpoch(), String(after), String(limit), String(this.#fence.known), seen?.epoch ?? "", String(seen?.top ?? 0), String(READ_STATE_TTL_MS)];
    const reply = (await this.#script(HISTORY, keys, args, "history")) as [string, number, number, unknown, unknown, string, number];
    this.#fence.observe(Number(reply[5]));
    const events = mergeByOffset(streamEntries(channel, false, reply[3]), streamEntries(channel, true, reply[4]), limit);
    return { epoch: reply[0], offset: Number(reply[1]), trimmedThrough: Number(reply[2]), events, base: Number(reply[6]) };
  }

  watch(channel: string): Promise<number> {
    if (!this.#watcher) return Promise.reject(new TypeError("Cannot watch: the Redis engine is not started"));
    return this.#watcher.watch(channel);
  }

  unwatch(channel: string): void {
    this.#watcher?.unwatch(channel);
  }

  async acquireConnection(user: string, max: number): Promise<boolean> {
    const { taken, retryAfterMs } = await this.#presence.acquire(user, max);
    if (taken) this.#slotHints.delete(user);
    else {
      // Only a hint for the refusal being answered now: never let it grow with refused users.
      if (this.#slotHints.size >= 10_000) this.#slotHints.clear();
      this.#slotHints.set(user, retryAfterMs);
    }
    return taken;
  }

  connectionRetryAfterMs(user: string): number | undefined {
    const ms = this.#slotHints.get(user);
    this.#slotHints.delete(user);
    return ms ? ms : undefined;
  }

  releaseConnection(user: string): Promise<void> {
    return this.#presence.release(user);
  }

  async saveSession(id: string, state: SessionState, ttlMs: number): Promise<void> {
    // The expiry is judged by the engine clock; Redis' own TTL (with slack) only collects garbage.
    const value = `${this.#o.now() + ttlMs}|${JSON.stringify(state)}`;
    await this.#run(this.#client().send("SET", [this.#keys.session(id), value, "PX", String(ttlMs + GC_SLACK_MS)]), "save session");
  }

  async loadSession(id: string): Promise<SessionState | null> {
    const v = (await this.#run(this.#client().send("GET", [this.#keys.session(id)]), "load session")) as string | null;
    if (v === null) return null;
    const bar = v.indexOf("|");
    if (Number(v.slice(0, bar)) <= this.#o.now()) return null;
    return JSON.parse(v.slice(bar + 1)) as SessionState;
  }

  async deleteSession(id: string): Promise<void> {
    await this.#run(this.#client().send("DEL", [this.#keys.session(id)]), "delete session");
  }

  async putRecord(key: string, value: string, ttlMs: number): Promise<void> {
    // As with sessions: expiry judged by the engine clock, Redis' TTL only collects garbage.
    const stored = `${this.#o.now() + ttlMs}|${value}`;
    await this.#run(this.#client().send("SET", [this.#keys.record(key), stored, "PX", String(ttlMs + GC_SLACK_MS)]), "store record");
  }

  async getRecord(key: string): Promise<string | null> {
    const v = (await this.#run(this.#client().send("GET", [this.#keys.record(key)]), "read record")) as string | null;
    if (v === null) return null;
    const bar = v.indexOf("|");
    return Number(v.slice(0, bar)) <= this.#o.now() ? null : v.slice(bar + 1);
  }

  async trim(now: number): Promise<{ dropped: number }> {
    const cmd = this.#client();
    const o = this.#o;
    const lease = await this.#script(LEASE, [this.#keys.trimLease], [this.#presence.member, String(o.trimLeaseMs)], "trim lease");
    if (Number(lease) !== 1) return { dropped: 0 };
    const args = [String(o.historySize), String(now - o.historyTtlMs), String(now - o.criticalRetentionMs), "1000"];
    let dropped = 0;
    let cursor = "0";
    do {
      const [next, channels] = (await this.#run(cmd.send("SSCAN", [this.#keys.channels, cursor, "COUNT", "200"]), "scan")) as [string, string[]];
      cursor = next;
      const counts = await Promise.all(
        channels.map(async (channel) => {
          const keys = this.#keys.channelList(this.#keys.channel(channel));
          let n = 0;
          for (;;) {
            const [d, more] = (await this.#script(TRIM, keys, args, "trim")) as [number, number];
            if (d < 0) {
              // Redis no longer has the channel: it leaves the registry.
              await this.#run(cmd.send("SREM", [this.#keys.channels, channel]), "unregister");
              this.#registered.delete(channel);
              return n;
            }
            n += d;
            if (!more) return n;
          }
        }),
      );
      for (const n of counts) dropped += n;
    } while (cursor !== "0");
    return { dropped };
  }

  async check(): Promise<void> {
    const cmd = this.#client();
    const sub = this.#sub!;
    const pub = this.#pub!;
    await Promise.all([
      this.#run(cmd.send("PING", []), "ping"),
      this.#run(sub.ping(), "subscriber ping"),
      pub === cmd ? null : this.#run(pub.send("PING", []), "publisher ping"),
    ]);
  }

  checkDelivery(signal?: AbortSignal): Promise<void> {
    if (!this.#probe) return Promise.reject(new StoreUnavailableError("Redis engine not started"));
    return this.#probe.check(signal);
  }

  reportStats(stats: object, ttlMs: number): Promise<void> {
    return this.#presence.reportStats(stats, ttlMs);
  }

  clusterStats(): Promise<Array<{ node: string; stats: unknown }>> {
    return this.#presence.clusterStats();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // Each publish is bounded by the command timeout, so this wait is too.
    await Promise.allSettled([...this.#inFlight]);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#watcher?.close();
    for (const stop of this.#stops.splice(0)) stop();
    const cmd = this.#cmd;
    if (cmd?.connected) {
      await Promise.all([
        this.#presence.leave().catch(() => {}),
        this.presence.close().catch(() => {}),
        // Hands the trim lease on at once rather than after it lapses.
        this.#script(LEASE_RELEASE, [this.#keys.trimLease], [this.#presence.member], "lease release").catch(() => {}),
      ]);
    }
    this.control.close();
    this.#closed = true;
    for (const client of new Set([this.#sub, this.#pub, cmd])) {
      try {
        client?.close();
      } catch {
        // Already closed.
      }
    }
  }

  #client(): RedisClient {
    if (!this.#cmd || this.#closed) throw new StoreUnavailableError(this.#closed ? "Redis engine is closed" : "Redis engine is not started");
    return this.#cmd;
  }

  #publisher(): RedisClient {
    this.#client();
    return this.#pub!;
  }

  #script(s: Script, keys: string[], args: string[], what: string): Promise<unknown> {
    let cmd: RedisClient;
    try {
      cmd = this.#client();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#run(evalScript(cmd, s, keys, args), what);
  }

  #run<T>(p: Promise<T>, what: string): Promise<T> {
    return withTimeout(p, this.#o.commandTimeoutMs, what);
  }

  /** Unique per node and call, so a channel recreated after a loss never reuses an old epoch. */
  #candidateEpoch(): string {
    return this.#epochSeed + (++this.#epochCount).toString(36);
  }
}

/**
 * A failed publish script: a Redis error reply means the script ran and stopped (our scripts
 * check before they write), anything else (no answer in time, the connection lost after sending)
 * may still have stored it.
 */
function outcomeOf(error: unknown): StoreUnavailableError {
  const cause = (error instanceof StoreUnavailableError ? (error.cause ?? error) : error) as { code?: string; message?: string };
  if (cause?.code === "ERR_REDIS_SERVER_ERROR") {
    return new StoreUnavailableError(`Redis refused the publish: ${cause.message}`, { cause });
  }
  // Bun's answer to a send on a closed connection with the offline queue off: never sent.
  if (cause?.code === "ERR_REDIS_CONNECTION_CLOSED" && /offline queue is disabled/.test(cause.message ?? "")) {
    return new StoreUnavailableError(`Redis is not connected; nothing was published`, { cause });
  }
  return new StoreUnavailableError(`Redis publish: ${(error as Error)?.message ?? error}; ${OUTCOME_UNKNOWN_MESSAGE}`, { cause: error, outcomeUnknown: true });
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@");
}
