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
 */
import { eventFrame } from "../protocol/serializer.ts";
import { CLIENT_OPTIONS, connectWithin, keepConnected, RedisClient, withTimeout, type LogFn } from "./redis-client.ts";
import { redisKeys, type ChannelKeys } from "./redis-keys.ts";
import {
  ACQUIRE,
  ALL_SCRIPTS,
  CLAIM,
  CLUSTER_STATS,
  evalScript,
  HEARTBEAT,
  HISTORY,
  POSITION,
  PUBLISH,
  REPORT_STATS,
  SET_SLOTS,
  TRIM,
  type Script,
} from "./redis-scripts.ts";
import { createWatcher, type Watcher } from "./redis-watcher.ts";
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
  /** A node whose heartbeat is older than this stops counting toward connection limits. Default 15000. */
  heartbeatTtlMs?: number;
  /**
   * Non-critical events a channel may hold beyond `historySize` before a publish trims it back
   * (between `trim` passes). Default 10000; 0 leaves count trimming to `trim` alone.
   */
  trimSlack?: number;
}

/** The Redis engine with the cluster-wide extras. */
export interface RedisEngine extends Engine {
  readonly kind: "redis";
  readonly nodeId: string;
  /** Stores this node's stats for `clusterStats`, visible for `ttlMs` (server time). */
  reportStats(stats: object, ttlMs: number): Promise<void>;
  /** The live stats reports of every node, this one included. */
  clusterStats(): Promise<Array<{ node: string; stats: unknown }>>;
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

/** Splits `eventFrame`'s output around the offset, so Lua can insert it and stay byte-identical. */
function frameHalves(item: PublishItem, ts: number): [string, string] {
  const frame = eventFrame({ channel: item.channel, offset: 0, event: item.event, dataJson: item.dataJson, critical: item.critical, ts });
  // The channel grammar has no quote, so the first `","offset":` is the real one.
  const at = frame.indexOf('","offset":') + 11;
  if (at < 11 || frame.charCodeAt(at) !== 48) throw new TypeError("eventFrame no longer has a bare numeric offset");
  return [frame.slice(0, at), frame.slice(at + 1)];
}

/** Turns stream entries `[id, [t, ts, e, event, f, frame, k?, coalesce?]]` into events. */
function entries(channel: string, critical: boolean, raw: unknown): StoredEvent[] {
  return (raw as [string, string[]][]).map(([id, f]) => ({
    channel,
    offset: parseInt(id, 10),
    event: f[3]!,
    critical,
    coalesce: f[6] === "k" ? f[7]! : null,
    ts: Number(f[1]),
    frame: f[5]!,
  }));
}

class RedisEngineImpl implements RedisEngine {
  readonly kind = "redis";
  readonly nodeId: string;
  #o: Required<Omit<RedisEngineOptions, "log" | "keyPrefix">> & { log: LogFn };
  #keys: ReturnType<typeof redisKeys>;
  /** This process's slot owner: a restarted node with the same id never inherits a dead one's counts. */
  #member: string;
  #cmd: RedisClient | null = null;
  #sub: RedisClient | null = null;
  #watcher: Watcher | null = null;
  #stops: (() => void)[] = [];
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  /** Channels this node has put in the trim registry. */
  #registered = new Set<string>();
  #epochSeed = crypto.randomUUID().slice(0, 8);
  #epochCount = 0;
  #closed = false;
  /** This node's connection slots per user: the truth for its own field in each user hash. */
  #slots = new Map<string, number>();
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
      heartbeatTtlMs: opts.heartbeatTtlMs ?? 15_000,
      trimSlack: opts.trimSlack ?? 10_000,
    };
    this.#keys = redisKeys(opts.keyPrefix ?? "courier:");
    this.#member = `${opts.nodeId}#${crypto.randomUUID().slice(0, 8)}`;
  }

  async start(deliver: DeliverFn): Promise<void> {
    if (this.#cmd) throw new TypeError("Cannot start: the Redis engine is already started");
    const log = this.#o.log;
    const retryMs = Math.max(250, this.#o.commandTimeoutMs);
    const cmd = (this.#cmd = new RedisClient(this.#o.url, CLIENT_OPTIONS));
    this.#stops.push(keepConnected(cmd, { name: "command", clientName: `courier:${this.nodeId}:cmd`, retryMs, log }));
    const up = await connectWithin(cmd, this.#o.connectTimeoutMs);
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
      history: (channel, after, limit) => this.history(channel, after, limit),
      deliver,
      log,
      commandTimeoutMs: this.#o.commandTimeoutMs,
      retryMs,
    }));
    this.#stops.push(keepConnected(sub, { name: "subscriber", clientName: `courier:${this.nodeId}:sub`, retryMs, log, onConnect: () => void watcher.resubscribe() }));
    if (!sub.connected) void connectWithin(sub, this.#o.connectTimeoutMs);
    this.#heartbeat = setInterval(() => void this.#beat(), Math.max(100, Math.floor(this.#o.heartbeatTtlMs / 3)));
    this.#heartbeat.unref?.();
    if (!up) {
      log("warn", "redis unreachable at start; retrying in the background", { url: redactUrl(this.#o.url) });
      return;
    }
    await Promise.all([
      this.#beat(),
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
    const cmd = this.#client();
    const ts = this.#o.now();
    const outcomes = new Array<PublishOutcome>(items.length);
    // Items whose idempotency key another channel owns answer that channel's outcome.
    const elsewhere: { index: number; owner: string }[] = [];
    let groups: Map<string, number[]>;
    if (items.some((it) => it.idempotencyKey !== undefined)) {
      const owners = await Promise.all(items.map((it) => (it.idempotencyKey === undefined ? it.channel : this.#claim(it))));
      groups = new Map();
      items.forEach((it, index) => {
        if (owners[index] === it.channel) push(groups, it.channel, index);
        else elsewhere.push({ index, owner: owners[index]! });
      });
    } else {
      groups = new Map();
      for (let i = 0; i < items.length; i++) push(groups, items[i]!.channel, i);
    }
    // Scripts go out synchronously, in item order: publishes of one turn keep their call order.
    await Promise.all([...groups].map(([channel, indexes]) => this.#publishGroup(cmd, channel, indexes, items, ts, outcomes)));
    for (const { index, owner } of elsewhere) outcomes[index] = await this.#duplicateOf(cmd, owner, items[index]!.idempotencyKey!);
    return outcomes;
  }

  async #publishGroup(cmd: RedisClient, channel: string, indexes: number[], items: PublishItem[], ts: number, outcomes: PublishOutcome[]) {
    const k = this.#keys.channel(channel);
    const keys = this.#keys.channelList(k);
    const o = this.#o;
    const args = [
      this.#candidateEpoch(),
      String(ts),
      String(o.idempotencyTtlMs),
      String(o.idempotencyTtlMs + 60_000),
      String(o.historySize),
      String(o.trimSlack > 0 ? o.historySize + o.trimSlack : 0),
      k.pubsub,
      String(indexes.length),
    ];
    const tsText = String(ts);
    for (const i of indexes) {
      const it = items[i]!;
      let idem = "0";
      if (it.idempotencyKey !== undefined) {
        keys.push(this.#keys.idempotency(channel, it.idempotencyKey));
        idem = String(keys.length);
      }
      const [prefix, suffix] = frameHalves(it, ts);
      const co = it.coalesce ?? "";
      args.push(idem, it.event, it.critical ? "1" : "0", co, co === "" ? "" : JSON.stringify(co), tsText, prefix, suffix, String(prefix.length + suffix.length));
    }
    this.#register(cmd, channel);
    const reply = (await this.#script(PUBLISH, keys, args, "publish")) as string[];
    const epoch = reply[0]!;
    indexes.forEach((index, j) => {
      const dup = reply[2 + j * 2]!;
      outcomes[index] = { channel, offset: Number(reply[1 + j * 2]), epoch: dup === "" ? epoch : dup, duplicate: dup !== "" };
    });
  }

  /** Claims the item's idempotency key for its channel; resolves with the channel owning it. */
  #claim(item: PublishItem): Promise<string> {
    const o = this.#o;
    const args = [String(o.now()), String(o.idempotencyTtlMs), String(o.idempotencyTtlMs + 60_000), item.channel];
    return this.#script(CLAIM, [this.#keys.claim(item.idempotencyKey!)], args, "claim") as Promise<string>;
  }

  async #duplicateOf(cmd: RedisClient, owner: string, key: string): Promise<PublishOutcome> {
    const v = (await this.#run(cmd.send("GET", [this.#keys.idempotency(owner, key)]), "idempotency")) as string | null;
    const m = v ? /^(\d+)\|(\d+)\|(.*)$/.exec(v) : null;
    if (!m || Number(m[1]) <= this.#o.now()) {
      // The first publish with this key is still in flight (or failed): a retry will find its outcome.
      throw new StoreUnavailableError(`Idempotency key in use by a publish on ${owner} that has not completed`);
    }
    return { channel: owner, offset: Number(m[2]), epoch: m[3]!, duplicate: true };
  }

  /** Best effort: a channel missing from the registry only escapes trimming until its next publish. */
  #register(cmd: RedisClient, channel: string) {
    if (this.#registered.has(channel)) return;
    // Only a cache of SADDs already made: forgetting it costs one repeated SADD per channel.
    if (this.#registered.size >= 100_000) this.#registered.clear();
    this.#registered.add(channel);
    this.#run(cmd.send("SADD", [this.#keys.channels, channel]), "register").catch(() => this.#registered.delete(channel));
  }

  async position(channel: string): Promise<Position> {
    const reply = (await this.#script(POSITION, this.#keys.channelList(this.#keys.channel(channel)), [this.#candidateEpoch()], "position")) as [string, number];
    return { epoch: reply[0], offset: Number(reply[1]) };
  }

  async history(channel: string, after: number, limit: number): Promise<HistoryPage> {
    if (!Number.isInteger(after) || after < 0) throw new RangeError(`Invalid history offset: ${after}`);
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`Invalid history limit: ${limit}`);
    const keys = this.#keys.channelList(this.#keys.channel(channel));
    const reply = (await this.#script(HISTORY, keys, [this.#candidateEpoch(), String(after), String(limit)], "history")) as [string, number, number, unknown, unknown];
    const plain = entries(channel, false, reply[3]);
    const critical = entries(channel, true, reply[4]);
    const events = critical.length === 0 ? plain : plain.length === 0 ? critical : merge(plain, critical, limit);
    return { epoch: reply[0], offset: Number(reply[1]), trimmedThrough: Number(reply[2]), events };
  }

  watch(channel: string): Promise<number> {
    if (!this.#watcher) return Promise.reject(new TypeError("Cannot watch: the Redis engine is not started"));
    return this.#watcher.watch(channel);
  }

  unwatch(channel: string): void {
    this.#watcher?.unwatch(channel);
  }

  async acquireConnection(user: string, max: number): Promise<boolean> {
    // Counted locally first, so concurrent acquires of one user each ask for their own slot.
    const want = (this.#slots.get(user) ?? 0) + 1;
    this.#slots.set(user, want);
    const keys = [this.#keys.userSlots(user), this.#keys.nodes];
    let taken = false;
    try {
      taken = Number(await this.#script(ACQUIRE, keys, [this.#member, String(max), String(this.#o.heartbeatTtlMs), String(want)], "acquire")) === 1;
    } finally {
      if (!taken) this.#setLocalSlots(user, (this.#slots.get(user) ?? 1) - 1);
    }
    return taken;
  }

  async releaseConnection(user: string): Promise<void> {
    const count = this.#slots.get(user) ?? 0;
    if (count === 0) return;
    this.#setLocalSlots(user, count - 1);
    await this.#script(SET_SLOTS, [this.#keys.userSlots(user)], [this.#member, String(count - 1)], "release");
  }

  #setLocalSlots(user: string, count: number) {
    if (count > 0) this.#slots.set(user, count);
    else this.#slots.delete(user);
  }

  async saveSession(id: string, state: SessionState, ttlMs: number): Promise<void> {
    // The expiry is judged by the engine clock; Redis' own TTL (with slack) only collects garbage.
    const value = `${this.#o.now() + ttlMs}|${JSON.stringify(state)}`;
    await this.#run(this.#client().send("SET", [this.#keys.session(id), value, "PX", String(ttlMs + 60_000)]), "save session");
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

  async trim(now: number): Promise<{ dropped: number }> {
    const cmd = this.#client();
    const o = this.#o;
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
    await Promise.all([this.#run(cmd.send("PING", []), "ping"), this.#run(sub.ping(), "subscriber ping")]);
  }

  async reportStats(stats: object, ttlMs: number): Promise<void> {
    await this.#script(REPORT_STATS, [this.#keys.stats], [this.nodeId, String(ttlMs), JSON.stringify(stats)], "report stats");
  }

  async clusterStats(): Promise<Array<{ node: string; stats: unknown }>> {
    const flat = (await this.#script(CLUSTER_STATS, [this.#keys.stats], [], "cluster stats")) as string[];
    const out: Array<{ node: string; stats: unknown }> = [];
    for (let i = 0; i < flat.length; i += 2) out.push({ node: flat[i]!, stats: JSON.parse(flat[i + 1]!) });
    return out.sort((a, b) => a.node.localeCompare(b.node));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Each publish is bounded by the command timeout, so this wait is too.
    await Promise.allSettled([...this.#inFlight]);
    this.#closed = true;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#watcher?.close();
    for (const stop of this.#stops.splice(0)) stop();
    const cmd = this.#cmd;
    if (cmd?.connected) {
      // A clean shutdown frees this node's connection slots at once instead of after the heartbeat TTL.
      await this.#run(cmd.send("ZREM", [this.#keys.nodes, this.#member]), "leave").catch(() => {});
    }
    for (const client of [this.#sub, cmd]) {
      try {
        client?.close();
      } catch {
        // Already closed.
      }
    }
  }

  async #beat(): Promise<void> {
    try {
      const alive = await this.#script(HEARTBEAT, [this.#keys.nodes], [this.#member, String(this.#o.heartbeatTtlMs)], "heartbeat");
      if (Number(alive) === 1 || this.#slots.size === 0) return;
      // Other nodes judged this one dead (a partition, a long stall) and may have dropped its
      // counts: write them back, or its users could exceed their limit.
      this.#o.log("warn", "node heartbeat had lapsed; restoring connection counts", { users: this.#slots.size });
      await Promise.all(
        [...this.#slots].map(([user, count]) => this.#script(SET_SLOTS, [this.#keys.userSlots(user)], [this.#member, String(count)], "restore slots")),
      );
    } catch (error) {
      this.#o.log("warn", "redis heartbeat failed", { error: (error as Error).message });
    }
  }

  #client(): RedisClient {
    if (!this.#cmd || this.#closed) throw new StoreUnavailableError(this.#closed ? "Redis engine is closed" : "Redis engine is not started");
    return this.#cmd;
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

function push(groups: Map<string, number[]>, channel: string, index: number) {
  const g = groups.get(channel);
  if (g) g.push(index);
  else groups.set(channel, [index]);
}

/** Merges two offset-sorted lists, keeping the first `limit`. */
function merge(a: StoredEvent[], b: StoredEvent[], limit: number): StoredEvent[] {
  const out: StoredEvent[] = [];
  let i = 0;
  let j = 0;
  while (out.length < limit && (i < a.length || j < b.length)) {
    if (j >= b.length || (i < a.length && a[i]!.offset < b[j]!.offset)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@");
}
