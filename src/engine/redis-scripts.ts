/**
 * The Lua scripts of the Redis engine. Each runs atomically on the shard that owns its keys: channel
 * scripts touch only `{channel}`-tagged keys, so Redis Cluster can place every channel on its own
 * shard. Every age is judged by the engine clock passed in `ARGV` (the contract forbids the store's
 * own clock), except node liveness, which uses the server's `TIME` so nodes with skewed clocks agree.
 *
 * Channel keys (see `redis-keys.ts`): `m` meta hash (`e` epoch, `t` top, `x` trimmedThrough),
 * `n` stream of non-critical events, `c` stream of critical events, `k` coalesce hash
 * (key → `<offset><n|c>`). Stream entry ids are `<offset>-0`, so offsets are range queries.
 * Entry fields: `t` ts (first, so trimming by age reads `fields[2]`), `e` event, `f` frame, `k` coalesce.
 *
 * Why one file over 300 lines: the Lua scripts share their helper functions (fence, ensure) as text
 * and must be loaded together; splitting them would scatter one atomic protocol over files.
 */
import type { RedisClient } from "bun";

/** A script with its SHA1, loaded on first NOSCRIPT. */
export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

/** A script and its SHA, for `evalScript`. */
export function script(name: string, source: string): Script {
  return { name, source, sha: new Bun.CryptoHasher("sha1").update(source).digest("hex") };
}

const HELPERS = `
local function fmt(x) return string.format('%d', x) end
local function offsetOf(id) return tonumber(string.match(id, '^(%d+)')) end
`;

/**
 * The dataset fence (`fence` hash: `w` watermark, `g` generation, `a` 1 when channels written before
 * fences existed may join the generation as they are). Every publish raises the
 * watermark and every node remembers the highest one it has seen, so a stored watermark below the
 * caller's `known` proves Redis lost acknowledged writes (a restart from an older snapshot, a
 * failover to a lagging replica, AOF loss): the generation is rotated, and every channel takes a
 * new epoch the next time a script touches it. Run inside each channel script, so the check and
 * the write it guards are one atomic step, whatever Bun's client replays after a reconnect.
 */
const FENCE_FN = `
local function fence(f, known, candidate, force)
  local v = redis.call('HMGET', f, 'w', 'g', 'a')
  local w, g, adopt = tonumber(v[1] or '0'), v[2], v[3] == '1'
  local lost = 0
  if not g or w < known or force then
    if w < known or force then lost = 1 end
    -- A first generation on a dataset nobody saw more of lets channels from before fences join it
    -- as they are; one born of a loss does not (they may be older than what was acknowledged).
    adopt = lost == 0
    g = candidate
    if known > w then w = known end
    redis.call('HSET', f, 'w', fmt(w), 'g', g, 'a', adopt and '1' or '0')
  end
  return g, w, lost, adopt
end
`;

/**
 * Creates the channel's epoch on first sight. A new epoch means the history is new, so any stream
 * or coalesce state left from a lost meta hash (eviction) is dropped rather than mixed in.
 * A channel last used under another generation (`g`), or whose top is below what a node saw under
 * the same epoch (`seenEpoch`, `seenTop`), lost acknowledged events: it takes a new epoch whose
 * offsets continue from the surviving top, recorded as its base `b` (live delivery resumes above
 * it), so no offset is ever handed out twice under one epoch.
 * A read (`readTtlMs` > 0) of an unknown channel stores nothing for good: the meta hash it creates
 * (so the epoch it answered holds for the next read and the first publish) is marked `r` and
 * expires after `readTtlMs`, renewed by each read; the first publish makes it persistent. So reads
 * of names that never see an event (any user token can ask for `public:<random>`) leave no state.
 */
const ENSURE =
  HELPERS +
  FENCE_FN +
  `
local function ensure(m, n, c, k, candidate, g, adopt, seenEpoch, seenTop, readTtlMs)
  local v = redis.call('HMGET', m, 'e', 't', 'x', 'g', 'b', 'r')
  if v[1] and v[6] then
    if readTtlMs > 0 then
      redis.call('PEXPIRE', m, readTtlMs)
    else
      redis.call('HDEL', m, 'r')
      redis.call('PERSIST', m)
    end
  end
  if v[1] then
    local top = tonumber(v[2])
    local regressed = v[1] == seenEpoch and top < seenTop
    if v[4] == g and not regressed then return v[1], top, tonumber(v[3]), tonumber(v[5] or '0') end
    if not v[4] and adopt and not regressed then
      -- Written before fences existed: the channel joins the current generation as it is.
      redis.call('HSET', m, 'g', g)
      return v[1], top, tonumber(v[3]), tonumber(v[5] or '0')
    end
    redis.call('HSET', m, 'e', candidate, 'g', g, 'b', fmt(top))
    return candidate, top, tonumber(v[3]), top
  end
  redis.call('DEL', n, c, k)
  redis.call('HSET', m, 'e', candidate, 't', 0, 'x', 0, 'g', g, 'b', 0)
  if readTtlMs > 0 then
    redis.call('HSET', m, 'r', 1)
    redis.call('PEXPIRE', m, readTtlMs)
  end
  return candidate, 0, 0, 0
end
`;

/**
 * Publishes the items of one channel. KEYS: m n c k fence, then the channel-local idempotency
 * keys. ARGV: candidateEpoch now idemTtlMs idemGcMs historySize trimCap pubsubChannel count
 * knownWatermark, then 9 per item: idemKeyIndex (0 = none) event critical(0|1) coalesce coalesceJson ts framePrefix
 * frameSuffix frameLengthWithoutOffset (UTF-16 units, so JS can slice the pub/sub message).
 * The frame is `prefix .. offset .. suffix`, both halves cut from `eventFrame`, so it is
 * byte-identical to the JS serializer's output. Returns {epoch, watermark, offset1, dupEpoch1, ...},
 * where `dupEpoch` is "" for a new event and the first outcome's epoch for a duplicate.
 * One PUBLISH carries every new event of the call: one `deliver` per channel per publish. The
 * message starts with `<epoch> <watermark>`, so a watcher notices a channel recreated under it and
 * a dataset that went back in time (a node of the previous version reads the line as another epoch
 * and re-reads the stream: slower, still correct, during a rolling upgrade).
 */
export const PUBLISH = script(
  "publish",
  ENSURE +
    `
local m, n, c, k = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local g, w, _, adopt = fence(KEYS[5], tonumber(ARGV[9]), ARGV[1], false)
local epoch, top, trimmed = ensure(m, n, c, k, ARGV[1], g, adopt, '', 0, 0)
local now, idemTtl, idemGc = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local out, msg = {epoch, ''}, {}
local plain = false
for i = 0, tonumber(ARGV[8]) - 1 do
  local a = 10 + i * 9
  local ik = tonumber(ARGV[a])
  local hit = false
  if ik > 0 then
    local v = redis.call('GET', KEYS[ik])
    if v then
      local exp, off, ep = string.match(v, '^(%d+)|(%d+)|(.*)$')
      if tonumber(exp) > now then
        out[#out + 1] = off
        out[#out + 1] = ep
        hit = true
      end
    end
  end
  if not hit then
    top = top + 1
    local off = fmt(top)
    local critical = ARGV[a + 2] == '1'
    local stream = critical and c or n
    local co = ARGV[a + 3]
    local frame = ARGV[a + 6] .. off .. ARGV[a + 7]
    if co ~= '' then
      local prev = redis.call('HGET', k, co)
      if prev then
        redis.call('XDEL', string.sub(prev, -1) == 'c' and c or n, string.sub(prev, 1, -2) .. '-0')
      end
      redis.call('HSET', k, co, off .. (critical and 'c' or 'n'))
      redis.call('XADD', stream, off .. '-0', 't', ARGV[a + 5], 'e', ARGV[a + 1], 'f', frame, 'k', co)
    else
      redis.call('XADD', stream, off .. '-0', 't', ARGV[a + 5], 'e', ARGV[a + 1], 'f', frame)
    end
    if not critical then plain = true end
    if ik > 0 then
      redis.call('SET', KEYS[ik], fmt(now + idemTtl) .. '|' .. off .. '|' .. epoch, 'PX', idemGc)
    end
    msg[#msg + 1] = off .. '\\n' .. ARGV[a + 2] .. '\\n' .. ARGV[a + 5] .. '\\n' .. ARGV[a + 1] .. '\\n' ..
      ARGV[a + 4] .. '\\n' .. fmt(tonumber(ARGV[a + 8]) + #off) .. '\\n'
    msg[#msg + 1] = frame
    out[#out + 1] = off
    out[#out + 1] = ''
  end
end
if #msg > 0 then
  w = w + 1
  redis.call('HSET', KEYS[5], 'w', fmt(w))
  redis.call('HSET', m, 't', fmt(top))
  -- A safety bound between trim() passes: far past historySize, drop the oldest non-critical
  -- events down to historySize. Critical events live in their own stream and are never touched.
  local cap = tonumber(ARGV[6])
  if plain and cap > 0 then
    local len = redis.call('XLEN', n)
    if len > cap then
      local old = redis.call('XRANGE', n, '-', '+', 'COUNT', len - tonumber(ARGV[5]))
      local last = offsetOf(old[#old][1])
      redis.call('XTRIM', n, 'MINID', fmt(last + 1) .. '-0')
      if last > trimmed then redis.call('HSET', m, 'x', fmt(last)) end
    end
  end
  redis.call('PUBLISH', ARGV[7], epoch .. ' ' .. fmt(w) .. '\\n' .. table.concat(msg))
end
out[2] = fmt(w)
return out
`,
);

/** KEYS: m n c k fence. ARGV: candidateEpoch knownWatermark readTtlMs. Returns {epoch, top, watermark}. */
export const POSITION = script(
  "position",
  ENSURE +
    `
local g, w, _, adopt = fence(KEYS[5], tonumber(ARGV[2]), ARGV[1], false)
local epoch, top = ensure(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], g, adopt, '', 0, tonumber(ARGV[3]))
return {epoch, top, fmt(w)}
`,
);

/**
 * KEYS: m n c k fence. ARGV: candidateEpoch after limit knownWatermark seenEpoch seenTop readTtlMs.
 * Returns {epoch, top, trimmedThrough, nonCriticalEntries, criticalEntries, watermark, base},
 * each list at most `limit` long; the caller merges them. One script so the page, top and
 * trimmedThrough are one consistent snapshot. `seenEpoch`/`seenTop`: the newest offset a watching
 * node delivered, so a channel that went back below it takes a new epoch ("" and 0 otherwise).
 */
export const HISTORY = script(
  "history",
  ENSURE +
    `
local g, w, _, adopt = fence(KEYS[5], tonumber(ARGV[4]), ARGV[1], false)
local epoch, top, trimmed, base = ensure(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], g, adopt, ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]))
local from = fmt(tonumber(ARGV[2]) + 1) .. '-0'
return {epoch, top, trimmed,
  redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', ARGV[3]),
  redis.call('XRANGE', KEYS[3], from, '+', 'COUNT', ARGV[3]), fmt(w), base}
`,
);

/**
 * Trims one channel. KEYS: m n c k. ARGV: historySize nonCriticalBefore criticalBefore budget.
 * Non-critical: all but the newest `historySize`, then those with ts < nonCriticalBefore.
 * Critical: only those with ts < criticalBefore. Ages are walked from the oldest entry and stop at
 * the first young one, so a ts out of order (publishers with skewed clocks) only keeps events
 * longer, never drops a critical one early. Returns {dropped, more}; {-1, 0} when the channel is
 * gone. `budget` bounds the entries removed per call so one call never blocks Redis for long.
 */
export const TRIM = script(
  "trim",
  HELPERS +
    `
local m, n, c, k = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local x = redis.call('HGET', m, 'x')
if not x then return {-1, 0} end
local trimmed = tonumber(x)
local historySize = tonumber(ARGV[1])
local budget = tonumber(ARGV[4])
local dropped = 0
local function cut(stream, last)
  local removed = redis.call('XTRIM', stream, 'MINID', fmt(last + 1) .. '-0')
  dropped = dropped + removed
  budget = budget - removed
  if last > trimmed then trimmed = last end
end
local len = redis.call('XLEN', n)
if len > historySize and budget > 0 then
  local old = redis.call('XRANGE', n, '-', '+', 'COUNT', math.min(len - historySize, budget))
  cut(n, offsetOf(old[#old][1]))
end
local function age(stream, before)
  while budget > 0 do
    local batch = redis.call('XRANGE', stream, '-', '+', 'COUNT', math.min(100, budget))
    local last, young = nil, false
    for _, entry in ipairs(batch) do
      if tonumber(entry[2][2]) < before then last = offsetOf(entry[1]) else young = true break end
    end
    if last then cut(stream, last) end
    if young or #batch < 100 then return end
  end
end
age(n, tonumber(ARGV[2]))
age(c, tonumber(ARGV[3]))
if dropped > 0 then
  redis.call('HSET', m, 'x', fmt(trimmed))
  -- Coalesce entries pointing below the oldest retained offset are stale; drop them.
  local low = math.huge
  for _, s in ipairs({n, c}) do
    local first = redis.call('XRANGE', s, '-', '+', 'COUNT', 1)[1]
    if first then low = math.min(low, offsetOf(first[1])) end
  end
  local co = redis.call('HGETALL', k)
  for i = 1, #co, 2 do
    if tonumber(string.sub(co[i + 1], 1, -2)) < low then redis.call('HDEL', k, co[i]) end
  end
end
return {dropped, budget <= 0 and 1 or 0}
`,
);

/**
 * Checks the dataset against what this node has seen. KEYS: fence. ARGV: knownWatermark
 * candidateGeneration force(0|1). Returns {generation, watermark, lost}, `lost` 1 when this call
 * found the dataset behind and rotated the generation; run on every (re)connect, and with `force`
 * when a watcher saw a watermark come round again (proof of a loss even once later publishes have
 * raised the stored watermark past what the node knew).
 */
export const FENCE = script(
  "fence",
  HELPERS +
    FENCE_FN +
    `
local g, w, lost = fence(KEYS[1], tonumber(ARGV[1]), ARGV[2], ARGV[3] == '1')
return {g, fmt(w), lost}
`,
);

/**
 * Claims a global idempotency key for a channel. KEYS: claim. ARGV: now ttlMs gcMs channel.
 * Returns the channel owning the key: this one when newly claimed or claimed before by it.
 */
export const CLAIM = script(
  "claim",
  `
local v = redis.call('GET', KEYS[1])
if v then
  local exp, ch = string.match(v, '^(%d+)|(.*)$')
  if tonumber(exp) > tonumber(ARGV[1]) then return ch end
end
redis.call('SET', KEYS[1], string.format('%d', tonumber(ARGV[1]) + tonumber(ARGV[2])) .. '|' .. ARGV[4], 'PX', ARGV[3])
return ARGV[4]
`,
);

/**
 * Takes or renews a lease. KEYS: lease. ARGV: holder ttlMs. Returns 1 when `holder` holds it.
 * Lets one node at a time do cluster-wide chores (trim) instead of every node repeating them.
 */
export const LEASE = script(
  "lease",
  `
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`,
);

/** Gives a lease up if `holder` has it. KEYS: lease. ARGV: holder. */
export const LEASE_RELEASE = script(
  "leaseRelease",
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`,
);

/** Server time in ms; node liveness is judged by it so skewed node clocks agree. */
export const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * Takes a connection slot. KEYS: userHash nodes. ARGV: member max heartbeatTtlMs want.
 * `want` is this node's own count for the user including the slot asked for: the node's local
 * count is the truth for its own field, so a field lost while the node looked dead heals on the
 * next call. Counts only fields of nodes whose heartbeat is alive and deletes the fields of dead
 * ones. Returns {1, 0} when taken (the field is set to `want`), {0, retryMs} when full, `retryMs`
 * the time until the first other node's heartbeat lapses (when its slots stop counting unless it
 * beats again; 0 when only this node holds slots).
 */
export const ACQUIRE = script(
  "acquire",
  NOW +
    `
redis.call('ZADD', KEYS[2], string.format('%d', now + tonumber(ARGV[3])), ARGV[1])
local f = redis.call('HGETALL', KEYS[1])
local others, soonest = 0, 0
for i = 1, #f, 2 do
  if f[i] ~= ARGV[1] then
    local exp = redis.call('ZSCORE', KEYS[2], f[i])
    if exp and tonumber(exp) > now then
      others = others + tonumber(f[i + 1])
      local left = tonumber(exp) - now
      if soonest == 0 or left < soonest then soonest = left end
    else
      redis.call('HDEL', KEYS[1], f[i])
    end
  end
end
if others + tonumber(ARGV[4]) > tonumber(ARGV[2]) then return {0, soonest} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
return {1, 0}
`,
);

/** Sets this node's count for a user (0 deletes the field). KEYS: userHash. ARGV: member count. */
export const SET_SLOTS = script(
  "setSlots",
  `
if tonumber(ARGV[2]) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
`,
);

/**
 * Refreshes this node's heartbeat and forgets dead nodes. KEYS: nodes. ARGV: member ttlMs.
 * Returns 1 if the node was alive until now, 0 if others may have dropped its counts.
 */
export const HEARTBEAT = script(
  "heartbeat",
  NOW +
    `
local prev = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
if prev and tonumber(prev) > now then return 1 end
return 0
`,
);

/** KEYS: stats hash. ARGV: node ttlMs json. Stores `<expiresAt>|<json>` by server time. */
export const REPORT_STATS = script(
  "reportStats",
  NOW +
    `
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', now + tonumber(ARGV[2])) .. '|' .. ARGV[3])
return 1
`,
);

/** KEYS: stats hash. Returns {node1, json1, ...} of live reports; deletes expired ones. */
export const CLUSTER_STATS = script(
  "clusterStats",
  NOW +
    `
local f = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #f, 2 do
  local exp, json = string.match(f[i + 1], '^(%d+)|(.*)$')
  if exp and tonumber(exp) > now then
    out[#out + 1] = f[i]
    out[#out + 1] = json
  else
    redis.call('HDEL', KEYS[1], f[i])
  end
end
return out
`,
);

export const ALL_SCRIPTS: readonly Script[] = [
  PUBLISH, POSITION, HISTORY, TRIM, FENCE, LEASE, LEASE_RELEASE, CLAIM, ACQUIRE, SET_SLOTS, HEARTBEAT, REPORT_STATS, CLUSTER_STATS,
];

/**
 * Runs a script by SHA; on NOSCRIPT (first use, Redis restart, SCRIPT FLUSH) loads it and retries.
 * The EVALSHA is sent synchronously, so calls made in one turn run in call order.
 *
 * @example
 * const [epoch, top] = await evalScript(client, POSITION, [m, n, c, k], ["candidate"]);
 */
export function evalScript(client: RedisClient, s: Script, keys: string[], args: string[]): Promise<unknown> {
  const argv = [s.sha, String(keys.length), ...keys, ...args];
  return client.send("EVALSHA", argv).catch(async (error: unknown) => {
    if (!String((error as Error)?.message).includes("NOSCRIPT")) throw error;
    await client.send("SCRIPT", ["LOAD", s.source]);
    return client.send("EVALSHA", argv);
  });
}
