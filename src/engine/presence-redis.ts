/**
 * Presence across the cluster. Each node counts its own subscriptions in memory (the truth for its
 * own entries) and mirrors each change with one Redis write: in the channel's hash
 * `<prefix>{conn}:p:<channel>`, field `<member>|<user>` holds this node's connection count for that
 * user (HSET, or HDEL at zero). A read sums the fields of live nodes only, judged by the same
 * heartbeats as the connection slots (`{conn}:nodes`, server time), so a dead node's entries stop
 * counting once its heartbeat lapses, and a node that stops cleanly removes its own.
 *
 * Hash-tagged `{conn}` like the slots: the read script sees the hash and the heartbeats together.
 * A field left by a crashed node is invisible to reads and deleted by the next read of its channel.
 * A write that fails is written again (the absolute count) once Redis answers, so counts heal
 * after an outage; a node whose heartbeat lapsed writes all of its entries back (`restore`).
 */
import { evalScript, NOW, script } from "./redis-scripts.ts";
import type { RedisClient } from "./redis-client.ts";
import { MemoryPresence } from "./presence-memory.ts";
import { redisKeys, type RedisKeys } from "./redis-keys.ts";
import type { Presence, PresencePage } from "./types.ts";

/** KEYS: presence hash, nodes. ARGV: maxUsers. Returns {total, user1, n1, …} (users sorted, capped). */
const READ = script(
  "presenceRead",
  NOW +
    `
local f = redis.call('HGETALL', KEYS[1])
local alive = {}
local counts = {}
local names = {}
local total = 0
for i = 1, #f, 2 do
  local member, user = string.match(f[i], '^(.*)|([^|]*)$')
  if member then
    local live = alive[member]
    if live == nil then
      local exp = redis.call('ZSCORE', KEYS[2], member)
      live = (exp and tonumber(exp) > now) or false
      alive[member] = live
    end
    if live then
      local n = tonumber(f[i + 1])
      total = total + n
      if not counts[user] then
        counts[user] = 0
        names[#names + 1] = user
      end
      counts[user] = counts[user] + n
    else
      redis.call('HDEL', KEYS[1], f[i])
    end
  end
end
table.sort(names)
local out = {total}
for i = 1, math.min(#names, tonumber(ARGV[1])) do
  out[#out + 1] = names[i]
  out[#out + 1] = counts[names[i]]
end
return out
`,
);

/** What the Redis engine lends its presence and its control bus. */
export interface RedisWiring {
  /** The engine's key prefix (`courier:`). */
  prefix: string;
  /** This process's heartbeat member (`<nodeId>#<random>`), as in `{conn}:nodes`. */
  member: string;
  /** The command connection, or a throw when the engine is not started or closed. */
  client: () => RedisClient;
  /** Bounds a command by the engine's timeout. */
  run: <T>(p: Promise<T>, what: string) => Promise<T>;
}

export interface RedisPresenceOptions extends RedisWiring {
  /** The engine's heartbeat sorted set. */
  nodesKey: string;
  /** Delay before failed writes are tried again. */
  retryMs: number;
}

/**
 * Creates the cluster presence.
 *
 * @example
 * const presence = new RedisPresence({ prefix: "courier:", member, nodesKey, client: () => cmd, run, retryMs: 1000 });
 * presence.change("public:lobby", "alice", 1); // one HSET in the background
 * await presence.read("public:lobby", 1000);
 */
export class RedisPresence implements Presence {
  readonly #o: RedisPresenceOptions;
  readonly #keys: RedisKeys;
  readonly #local = new MemoryPresence();
  /** `channel\n user` pairs whose last write failed: their absolute count is written again. */
  readonly #unsynced = new Set<string>();
  #retry: ReturnType<typeof setTimeout> | null = null;

  constructor(options: RedisPresenceOptions) {
    this.#o = options;
    this.#keys = redisKeys(options.prefix);
  }

  change(channel: string, user: string, delta: 1 | -1): void {
    this.#local.change(channel, user, delta);
    this.#write(channel, user);
  }

  /** Writes the node's current count of (channel, user); one command, whatever the count. */
  #write(channel: string, user: string): void {
    const n = this.#local.connections(channel, user);
    const field = `${this.#o.member}|${user}`;
    let sent: Promise<unknown>;
    try {
      const client = this.#o.client();
      sent = this.#o.run(n > 0 ? client.send("HSET", [this.#keys.presence(channel), field, String(n)]) : client.send("HDEL", [this.#keys.presence(channel), field]), "presence");
    } catch (error) {
      sent = Promise.reject(error);
    }
    const pair = `${channel}\n${user}`;
    sent.then(
      () => this.#unsynced.delete(pair),
      () => {
        this.#unsynced.add(pair);
        this.#scheduleRetry();
      },
    );
  }

  #scheduleRetry(): void {
    if (this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      const pairs = [...this.#unsynced];
      this.#unsynced.clear();
      for (const pair of pairs) {
        const cut = pair.indexOf("\n");
        this.#write(pair.slice(0, cut), pair.slice(cut + 1));
      }
    }, this.#o.retryMs);
    this.#retry.unref?.();
  }

  /** Writes every local entry again: after this node's heartbeat lapsed, reads may have deleted them. */
  restore(): void {
    for (const { channel, user } of this.#local.entries()) this.#write(channel, user);
  }

  async read(channel: string, maxUsers: number): Promise<PresencePage> {
    const flat = (await this.#o.run(evalScript(this.#o.client(), READ, [this.#keys.presence(channel), this.#o.nodesKey], [String(maxUsers)]), "presence read")) as Array<string | number>;
    const users: PresencePage["users"] = [];
    for (let i = 1; i < flat.length; i += 2) users.push({ user: String(flat[i]), connections: Number(flat[i + 1]) });
    return { subscribers: Number(flat[0] ?? 0), users };
  }

  /** A clean stop: this node's entries are removed at once instead of waiting for a read. */
  async close(): Promise<void> {
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    const client = this.#o.client();
    const removals = [...this.#local.entries()].map(({ channel, user }) => this.#o.run(client.send("HDEL", [this.#keys.presence(channel), `${this.#o.member}|${user}`]), "presence leave"));
    await Promise.allSettled(removals);
  }
}
