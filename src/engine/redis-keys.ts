/**
 * The Redis key layout, in one place. Channel keys share the hash tag `{<channel>}` so one Lua
 * script can touch all of them on one Redis Cluster shard; other families have their own tags.
 *
 * | key | type | holds |
 * |---|---|---|
 * | `P{ch}:m` | hash | `e` epoch, `t` top offset, `x` trimmedThrough, `g` generation, `b` epoch base |
 * | `P{ch}:n` / `P{ch}:c` | stream | non-critical / critical events, id `<offset>-0` |
 * | `P{ch}:k` | hash | coalesce key → `<offset><n|c>` of its latest event |
 * | `P{ch}:i:<key>` | string | idempotency outcome `<expiresAt>|<offset>|<epoch>` |
 * | `P{ch}:ps` | pub/sub channel | committed events of the channel |
 * | `P{i:<key>}` | string | global idempotency claim `<expiresAt>|<channel>` |
 * | `Pfence` | hash | `w` dataset watermark (raised by every publish), `g` dataset generation, `a` adopt pre-fence channels |
 * | `Pchannels` | set | channels to visit in `trim` |
 * | `Ptrim-lease` | string | the node member currently trimming |
 * | `P{conn}:u:<user>` | hash | node member → connection count |
 * | `P{conn}:nodes` | sorted set | node member → heartbeat expiry (server ms) |
 * | `P{conn}:p:<channel>` | hash | `<member>|<user>` → that node's connection count (presence) |
 * | `P{ctl}` | pub/sub channel | control bus commands, heard by every node |
 * | `P{ctl}:r:<member>` | pub/sub channel | control bus replies to one node |
 * | `Pprobe:<node>` | pub/sub channel | the readiness probe's messages, one channel per node |
 * | `Psess:<id>` | string | `<expiresAt>|<session json>` |
 * | `P{stats}` | hash | node → `<expiresAt>|<stats json>` |
 */

/** The keys of one channel, in the order the channel scripts take them. */
export interface ChannelKeys {
  meta: string;
  nonCritical: string;
  critical: string;
  coalesce: string;
  pubsub: string;
}

/**
 * Builds every key name from one prefix.
 *
 * @example
 * const keys = redisKeys("courier:");
 * keys.channel("user:a").meta; // "courier:{user:a}:m"
 */
export function redisKeys(prefix: string) {
  if (/[{}]/.test(prefix)) throw new RangeError(`Invalid Redis key prefix ${JSON.stringify(prefix)}: braces would change hash tags`);
  const fence = `${prefix}fence`;
  return {
    prefix,
    channel(channel: string): ChannelKeys {
      const base = `${prefix}{${channel}}:`;
      return { meta: base + "m", nonCritical: base + "n", critical: base + "c", coalesce: base + "k", pubsub: base + "ps" };
    },
    /** The script KEYS of a channel: m n c k. */
    channelList(k: ChannelKeys): string[] {
      return [k.meta, k.nonCritical, k.critical, k.coalesce];
    },
    /** The script KEYS of a channel script that checks the dataset fence: m n c k fence. */
    fencedList(k: ChannelKeys): string[] {
      return [k.meta, k.nonCritical, k.critical, k.coalesce, fence];
    },
    idempotency: (channel: string, key: string) => `${prefix}{${channel}}:i:${key}`,
    claim: (key: string) => `${prefix}{i:${key}}`,
    /**
     * One key for the whole dataset, touched by every channel script: a multi-shard Redis Cluster
     * would need one fence per shard (the scripts would otherwise be CROSSSLOT).
     */
    fence,
    channels: `${prefix}channels`,
    trimLease: `${prefix}trim-lease`,
    userSlots: (user: string) => `${prefix}{conn}:u:${user}`,
    nodes: `${prefix}{conn}:nodes`,
    presence: (channel: string) => `${prefix}{conn}:p:${channel}`,
    control: `${prefix}{ctl}`,
    controlReply: (member: string) => `${prefix}{ctl}:r:${member}`,
    probe: (nodeId: string) => `${prefix}probe:${nodeId}`,
    session: (id: string) => `${prefix}sess:${id}`,
    record: (key: string) => `${prefix}rec:${key}`,
    stats: `${prefix}{stats}`,
  };
}

export type RedisKeys = ReturnType<typeof redisKeys>;
