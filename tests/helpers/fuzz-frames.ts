/**
 * Hostile WebSocket frames, each with what PROTOCOL.md §4 says the server must answer: the fuzz
 * suite's oracle. Frames are built invalid (or valid) by construction, never by asking the server's
 * own schemas, so the oracle is independent of the code under test.
 */
import type { Random } from "./fuzz-random.ts";

export type RequestId = string | number;

/** What the server must do with one frame. */
export type Expectation =
  /** Close the connection with this code (binary 1003, oversize 1009). */
  | { kind: "close"; code: number }
  /** A protocol error: one `bad_request` error frame (echoing `id` when valid), or 4400 past the strikes. */
  | { kind: "strike"; id?: RequestId }
  /** An answer echoing `id`, of one of `types` (`error:<code>` for error frames). */
  | { kind: "answer"; id: RequestId; types: string[] }
  /** An error frame with this code and no strike, echoing `id` when given. */
  | { kind: "error"; code: string; id?: RequestId }
  /** Nothing at all (a valid ack). */
  | { kind: "silent" };

export interface HostileFrame {
  label: string;
  payload: string | Uint8Array;
  expect: Expectation;
  /** For subscribe frames the driver tracks: the channel joined on success. */
  joins?: string;
  /** For unsubscribe frames: the channel left. */
  leaves?: string;
}

/** What the driver knows about one hostile connection. */
export interface ConnState {
  user: string;
  /** Channels the connection has joined (a `subscribed` came back). */
  subscribed: Set<string>;
  nextId: number;
}

export interface FrameLimits {
  maxFrameBytes: number;
  maxJsonDepth: number;
}

/** Channels that break the grammar of §4: `bad_request` whatever else the frame says. */
export const BAD_CHANNELS: readonly string[] = [
  "public:*",
  "public:a..b",
  "public:..",
  "public:a\u0000b",
  "public:a\nb",
  "public:a\u001fb",
  "public:a\u007fb",
  "public:caf\u00e9",
  "public:\u202egnp",
  "public:a\u200bb",
  "public:\ud83d\ude00",
  "public:\ud800",
  "public:a b",
  "public:a/b",
  "public:../../etc/passwd",
  "public:a%2e%2eb",
  "Public:x",
  "1public:x",
  "_kind:x",
  "public:",
  ":name",
  "nokind",
  "public:a:b",
  "public:x*",
  "public:" + "x".repeat(129),
  "k".repeat(33) + ":x",
  "public:a\\b",
  'public:a"b',
  "public:<script>",
  "__proto__:x",
  "public:x\u0000",
];

/** Request ids that are not valid (§4: string ≤ 64 or a safe non-negative integer): never echoed. */
const BAD_IDS: readonly unknown[] = [-1, 1.5, 2 ** 53, 1e300, true, null, {}, [], { __proto__: 1 }, "x".repeat(65), "i".repeat(4096)];

/** Offsets that are not safe non-negative integers. */
const BAD_OFFSETS: readonly string[] = ["-1", "1.5", "9007199254740993", "1e400", "-1e400", '"5"', "null", "true", "[]", "{}", '"NaN"', '"Infinity"', "1e21", "-0.5"];

const GARBAGE: readonly string[] = [
  "",
  " ",
  "{",
  "}",
  "{'type':'ping'}",
  '{"type":"ping"',
  '{"type":"ping",}',
  '{"type":"ping"} {"type":"ping"}',
  "undefined",
  "NaN",
  "\u0000",
  "\ufeff{}",
  '{"type":"ping","id":01}',
  '{"type":"ping","id":0x10}',
  '{"type":"ping","x":"\\u12"}',
  '{"type":"ping","x":"' + "\\".repeat(5) + '"}',
  '{"type":"ping","x":"unterminated',
  "[".repeat(10),
  '{"a":' + "[".repeat(20),
  "\"\\ud800\"x",
];

const NOT_OBJECTS: readonly string[] = ["1", "-0", "[]", "null", "true", '"ping"', '[{"type":"ping"}]', '"\\ud800"', "1e400"];

const UNKNOWN_TYPES: readonly unknown[] = ["teleport", "", "PING", "ping ", "subscribe\u0000", "__proto__", "constructor", "toString", "event", "welcome", "error", 1, null, true, [], { type: "ping" }];

function nested(depth: number, inner: string, rng: Random): string {
  let out = inner;
  for (let i = 0; i < depth; i++) out = rng.chance(0.5) ? `[${out}]` : `{"k":${out}}`;
  return out;
}

/**
 * The next hostile frame for a connection in `state`.
 *
 * @example
 * const frame = hostileFrame(rng, state, { maxFrameBytes: 65536, maxJsonDepth: 32 }, ["public:healthy-0"]);
 */
export function hostileFrame(rng: Random, state: ConnState, limits: FrameLimits, liveChannels: readonly string[]): HostileFrame {
  const id = (): RequestId => (rng.chance(0.5) ? `r${state.nextId++}` : state.nextId++);
  const maybeId = () => (rng.chance(0.7) ? id() : undefined);
  const withId = (frame: Record<string, unknown>, requestId: RequestId | undefined) => JSON.stringify(requestId === undefined ? frame : { ...frame, id: requestId });
  const roll = rng.int(0, 99);

  if (roll < 8) {
    return { label: "garbage", payload: rng.chance(0.6) ? rng.pick(GARBAGE) : rng.string(rng.int(1, 200), '{}[]":,0123456789.eE-+truefalsn \\u\u0000\u00e9'), expect: { kind: "strike" } };
  }
  if (roll < 12) {
    return { label: "not an object", payload: rng.pick(NOT_OBJECTS), expect: { kind: "strike" } };
  }
  if (roll < 17) {
    // Deeper than allowed: refused before JSON.parse ever recurses.
    const depth = limits.maxJsonDepth + rng.int(0, rng.chance(0.2) ? 5000 : 40);
    const body = nested(depth, "1", rng);
    return { label: `too deep (${depth + 1})`, payload: `{"type":"ping","id":"${state.nextId++}","x":${body}}`, expect: { kind: "strike" } };
  }
  if (roll < 20) {
    // Nesting right at the limit is accepted: the frame object is level 1.
    const requestId = id();
    const body = nested(limits.maxJsonDepth - 1, "0", rng);
    return { label: "deep but within the limit", payload: withId({ type: "ping", x: JSON.parse(body) }, requestId), expect: { kind: "answer", id: requestId, types: ["pong"] } };
  }
  if (roll < 26) {
    const requestId = maybeId();
    const channel = rng.pick(BAD_CHANNELS);
    const type = rng.pick(["subscribe", "unsubscribe", "ack"] as const);
    if (type === "unsubscribe") {
      // Unsubscribing a channel never joined is not_found (no strike), whatever its name.
      return { label: `unsubscribe bad channel ${JSON.stringify(channel)}`, payload: withId({ type, channel }, requestId), expect: channel.length >= 3 && channel.length <= 161 ? { kind: "error", code: "not_found", id: requestId } : { kind: "strike", id: requestId } };
    }
    const frame = type === "ack" ? { type, channel, offset: 1 } : { type, channel };
    return { label: `${type} bad channel ${JSON.stringify(channel)}`, payload: withId(frame, requestId), expect: { kind: "strike", id: requestId } };
  }
  if (roll < 32) {
    // Offsets that are not safe non-negative integers, in `since` or in an ack.
    const requestId = maybeId();
    const bad = rng.pick(BAD_OFFSETS);
    const idPart = requestId === undefined ? "" : `,"id":${JSON.stringify(requestId)}`;
    const payload = rng.chance(0.5)
      ? `{"type":"subscribe"${idPart},"channel":"public:fz-${rng.int(0, 9)}","since":{"offset":${bad},"epoch":"e"}}`
      : `{"type":"ack"${idPart},"channel":"public:fz-${rng.int(0, 9)}","offset":${bad}}`;
    return { label: `bad offset ${bad}`, payload, expect: { kind: "strike", id: requestId } };
  }
  if (roll < 37) {
    const badId = rng.pick(BAD_IDS);
    const type = rng.pick(["ping", "subscribe", "rpc", "unsubscribe"]);
    return { label: `bad id ${JSON.stringify(badId)?.slice(0, 20)} on ${type}`, payload: JSON.stringify({ type, id: badId, channel: "public:fz-ids", method: "m" }), expect: { kind: "strike" } };
  }
  if (roll < 43) {
    // Wrong types for known fields.
    const requestId = maybeId();
    const frames: Record<string, unknown>[] = [
      { type: "subscribe", channel: rng.pick([1, null, [], {}, true, "ab", "x".repeat(162)]) },
      { type: "subscribe", channel: "public:fz-types", since: rng.pick([1, "s", [], null, { offset: 1 }, { epoch: "e" }, { offset: 1, epoch: "" }, { offset: 1, epoch: 5 }, { offset: 1, epoch: "x".repeat(65) }]) },
      { type: "unsubscribe" },
      { type: "ack", channel: "public:fz-types" },
      { type: "rpc", method: rng.pick(["", 5, null, "m".repeat(65)]) },
      { type: "rpc" },
    ];
    const frame = rng.pick(frames);
    // An rpc needs a valid id; without one it is invalid whatever else it carries.
    return { label: `wrong types ${JSON.stringify(frame).slice(0, 60)}`, payload: withId(frame, requestId), expect: { kind: "strike", id: requestId } };
  }
  if (roll < 48) {
    const type = rng.pick(UNKNOWN_TYPES);
    const requestId = maybeId();
    return { label: `unknown type ${JSON.stringify(type)}`, payload: withId({ type, channel: "public:x" }, requestId), expect: { kind: "strike", id: requestId } };
  }
  if (roll < 53) {
    // Prototype-pollution keys: parsed as plain own properties, never merged into anything.
    const requestId = id();
    const variants: [string, Expectation][] = [
      [`{"type":"ping","id":${JSON.stringify(requestId)},"__proto__":{"type":"subscribe","admin":true}}`, { kind: "answer", id: requestId, types: ["pong"] }],
      [`{"__proto__":{"type":"ping"},"id":${JSON.stringify(requestId)}}`, { kind: "strike", id: requestId }],
      [`{"type":"subscribe","id":${JSON.stringify(requestId)},"channel":"public:fz-proto","since":{"__proto__":{"offset":1,"epoch":"e"}}}`, { kind: "strike", id: requestId }],
      [`{"type":"rpc","id":${JSON.stringify(requestId)},"method":"__proto__","data":{"constructor":{"prototype":{"polluted":1}}}}`, { kind: "answer", id: requestId, types: ["error:not_found"] }],
      [`{"type":"subscribe","id":${JSON.stringify(requestId)},"channel":"constructor:prototype"}`, { kind: "answer", id: requestId, types: ["error:forbidden"] }],
    ];
    const [payload, expect] = rng.pick(variants);
    return { label: "prototype keys", payload, expect };
  }
  if (roll < 54) {
    const bytes = new Uint8Array(rng.int(0, 64));
    for (let i = 0; i < bytes.length; i++) bytes[i] = rng.int(0, 255);
    return { label: "binary frame", payload: bytes, expect: { kind: "close", code: 1003 } };
  }
  if (roll < 56) {
    // Near the frame limit: at it passes, past it closes 1009 (bytes, not characters).
    const requestId = `n${state.nextId++}`;
    const frame = (pad: number) => `{"type":"ping","id":"${requestId}","pad":"${"x".repeat(pad)}"}`;
    const base = frame(0).length;
    if (rng.chance(0.5)) {
      const pad = limits.maxFrameBytes - base - rng.int(0, 16);
      return { label: "frame at the limit", payload: frame(pad), expect: { kind: "answer", id: requestId, types: ["pong"] } };
    }
    const pad = limits.maxFrameBytes - base + rng.int(1, 64);
    return { label: "frame past the limit", payload: frame(pad), expect: { kind: "close", code: 1009 } };
  }
  if (roll < 59) {
    const requestId = id();
    const text = `{"type":"ping","id":${JSON.stringify(requestId)},"n":${rng.pick(["1e400", "-1e400", "123456789012345678901234567890", "5e-324", "-0"])}}`;
    return { label: "huge numbers in a ping", payload: text, expect: { kind: "answer", id: requestId, types: ["pong"] } };
  }
  // Valid frames, so a connection also has state to abuse.
  const requestId = id();
  const valid = rng.int(0, 9);
  if (valid <= 3) {
    const channel = rng.chance(0.4) ? rng.pick(liveChannels) : rng.pick([`public:fz-${rng.int(0, 20)}`, `user:${state.user}`, "public:__proto__", "public:constructor", "public:a.b-c_d@e=f"]);
    const since = rng.chance(0.3) ? { offset: rng.pick([0, 1, 5, Number.MAX_SAFE_INTEGER]), epoch: rng.pick(["e", "x".repeat(64)]) } : undefined;
    const frame = since ? { type: "subscribe", channel, since } : { type: "subscribe", channel };
    if (state.subscribed.has(channel)) return { label: "subscribe again", payload: withId(frame, requestId), expect: { kind: "error", code: "bad_request", id: requestId } };
    return { label: `subscribe ${channel}`, payload: withId(frame, requestId), expect: { kind: "answer", id: requestId, types: ["subscribed"] }, joins: channel };
  }
  if (valid <= 4) {
    const channel = rng.pick(["user:someone-else", "signals:enterprise", "signals:pro", "job:nope", "team:red", "signals:platinum"]);
    return { label: `subscribe forbidden ${channel}`, payload: withId({ type: "subscribe", channel }, requestId), expect: { kind: "answer", id: requestId, types: ["error:forbidden"] } };
  }
  if (valid <= 5) {
    const joined = [...state.subscribed];
    if (joined.length > 0 && rng.chance(0.7)) {
      const channel = rng.pick(joined);
      return { label: `unsubscribe ${channel}`, payload: withId({ type: "unsubscribe", channel }, requestId), expect: { kind: "answer", id: requestId, types: ["unsubscribed"] }, leaves: channel };
    }
    return { label: "unsubscribe not joined", payload: withId({ type: "unsubscribe", channel: "public:never-joined" }, requestId), expect: { kind: "answer", id: requestId, types: ["error:not_found"] } };
  }
  if (valid <= 7) {
    const joined = [...state.subscribed];
    const offset = rng.pick([0, 1, 2, 1000, Number.MAX_SAFE_INTEGER]);
    if (joined.length > 0 && rng.chance(0.7)) return { label: "ack joined", payload: JSON.stringify({ type: "ack", channel: rng.pick(joined), offset }), expect: { kind: "silent" } };
    return { label: "ack not joined", payload: JSON.stringify({ type: "ack", channel: "public:never-joined", offset }), expect: { kind: "strike" } };
  }
  if (valid <= 8) return { label: "rpc", payload: withId({ type: "rpc", method: "echo", data: { a: [1, "two", null] } }, requestId), expect: { kind: "answer", id: requestId, types: ["error:not_found"] } };
  return { label: "ping", payload: withId({ type: "ping" }, requestId), expect: { kind: "answer", id: requestId, types: ["pong"] } };
}
