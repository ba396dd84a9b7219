/** `CourierClient`'s options: their types, defaults and validation. */
import type { BackoffOptions, ResolvedBackoff } from "./backoff.ts";
import { resolveBackoff } from "./backoff.ts";
import { ACK_FRAMES_PER_SECOND } from "./ack-batcher.ts";
import { memoryOffsetStore, type OffsetStore } from "./offset-store.ts";
import { globalTimers, systemClock } from "./timers.ts";
import type { AgentStream } from "./stream-texts.ts";
import type {
  AnyEvents,
  Clock,
  CourierEvent,
  EventMap,
  FetchLike,
  Position,
  Recovery,
  StatusChange,
  Timers,
  TokenSource,
  TypedEvent,
  WebSocketConstructor,
} from "./types.ts";

/** Options of `CourierClient`; only `url`/`urls` and `token` are required. */
export interface CourierClientOptions {
  /** The WebSocket endpoint, e.g. `wss://rt.example.com/v1/ws`. */
  url?: string;
  /** Endpoints tried in turn: the next one after each failed attempt. */
  urls?: string[];
  /** A token, or a provider called again after a refused connection and after close 4401. */
  token: TokenSource;
  /** A session id persisted from an earlier `client.session`, to resume it. */
  session?: string;
  /**
   * How the token reaches `/v1/ws`. `"subprotocol"` (default): as the WebSocket subprotocol
   * `courier.token.<jwt>` beside `courier.v1`, so it never sits in a URL, a proxy's access log or
   * the browser console (browsers, Bun and Node ≥ 22 all pass protocols). `"query"`: as
   * `?token=`, for a WebSocket implementation or a proxy that cannot carry subprotocols.
   */
  tokenTransport?: "subprotocol" | "query";
  /**
   * After an attempt that got no `welcome`, ask `GET /v1/ws/check` why (with the token in
   * `Authorization`), report it as `status.reason`, honour its `Retry-After`, and stop (offline)
   * on a refusal that cannot heal by itself: a 403 origin, or a 401 with a fixed token. Needs
   * `fetch`. Default `true`.
   */
  checkRefusals?: boolean;
  /** Defaults to `globalThis.WebSocket`; none at all means polling only. */
  WebSocket?: WebSocketConstructor;
  /** Defaults to `globalThis.fetch`; used by the polling fallback. */
  fetch?: FetchLike;
  /** Where positions are kept. Default: in memory. */
  store?: OffsetStore;
  /** Reconnect schedule. Default 100 ms, 500 ms, 1 s, then doubling to 5 s, ±5 %. */
  backoff?: BackoffOptions;
  /** Ack batching interval. Default `100`. */
  ackIntervalMs?: number;
  /** Most `ack` frames per second, all channels together (the rest wait, acks being cumulative). Default `20`. */
  ackFramesPerSecond?: number;
  /** Consecutive failed attempts before polling starts. Default `3`. */
  pollAfterFailures?: number;
  /** First polling interval, doubling while down. Default `2000`. */
  pollIntervalMs?: number;
  /** Polling interval cap. Default `60000`. */
  maxPollIntervalMs?: number;
  /** `limit` of each history request. Default `100`. */
  pollLimit?: number;
  /** Where `/v1/history` lives. Default: derived from the current WebSocket URL. */
  httpBase?: string;
  /** How long an attempt may take to get its `welcome`. Default `10000`. */
  connectTimeoutMs?: number;
  /** Default timeout of `subscribe`, `rpc` and `ping` requests. Default `15000`. */
  requestTimeoutMs?: number;
  timers?: Timers;
  clock?: Clock;
  /** Random source in [0, 1] for jitter. Default `Math.random`. */
  random?: () => number;
  /**
   * After a heartbeat (from `welcome`) without any frame, send a `ping`; no answer within another
   * heartbeat closes the connection as stale and reconnects. Default `true`.
   */
  idleProbe?: boolean;
  /** Shorthand for `on("status", fn)`. */
  onStatus?: (change: StatusChange) => void;
  /** Shorthand for `on("recovery", fn)`. */
  onRecovery?: (recovery: Recovery) => void;
}

/**
 * Events of `client.on()`: `status`, `event` (every delivered event), `error`, `recovery`,
 * `unsubscribed` (the server took a channel away: its handlers are dropped, it is not subscribed
 * again), and `event:<name>` for the delivered events of one name, typed by the client's event map.
 */
export type ClientEvents<E extends EventMap = AnyEvents> = {
  status: StatusChange;
  event: CourierEvent<E>;
  error: Error;
  recovery: Recovery;
  unsubscribed: { channel: string; reason: "server" };
  /** An agent stream's text or status changed (PROTOCOL §8): the whole text so far. */
  stream: AgentStream;
} & { [K in keyof E & string as `event:${K}`]: TypedEvent<K, E[K]> };

/** Options of `subscribe()`. */
export interface SubscribeOptions {
  /** Resume from here instead of the store's position. */
  since?: Position;
}

/** Options of `rpc()` and `ping()`. */
export interface RequestOptions {
  /** Default: the client's `requestTimeoutMs` (15 s). */
  timeoutMs?: number;
}

/** Options with defaults applied. */
export interface ResolvedClientOptions {
  urls: readonly string[];
  token: TokenSource;
  session: string | undefined;
  tokenTransport: "subprotocol" | "query";
  checkRefusals: boolean;
  WebSocket: WebSocketConstructor | undefined;
  fetch: FetchLike | undefined;
  httpBase: string | undefined;
  store: OffsetStore;
  backoff: ResolvedBackoff;
  ackIntervalMs: number;
  ackFramesPerSecond: number;
  pollAfterFailures: number;
  pollIntervalMs: number;
  maxPollIntervalMs: number;
  pollLimit: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  timers: Timers;
  clock: Clock;
  random: () => number;
  idleProbe: boolean;
}

/**
 * Applies defaults; throws `TypeError` for a missing or malformed url or token and `RangeError`
 * for out-of-range numbers.
 *
 * @example
 * resolveClientOptions({ url: "wss://rt.example.com/v1/ws", token: "t" }).ackIntervalMs; // 100
 */
export function resolveClientOptions(options: CourierClientOptions): ResolvedClientOptions {
  const urls = options.urls ?? (options.url === undefined ? [] : [options.url]);
  if (urls.length === 0) throw new TypeError("Cannot create CourierClient: url or urls is required");
  for (const url of urls) new URL(url); // throws TypeError on a malformed URL
  if (typeof options.token !== "string" && typeof options.token !== "function") {
    throw new TypeError("Cannot create CourierClient: token must be a string or a function");
  }
  if (options.tokenTransport !== undefined && options.tokenTransport !== "subprotocol" && options.tokenTransport !== "query") {
    throw new TypeError('Cannot create CourierClient: tokenTransport must be "subprotocol" or "query"');
  }
  const positive = (name: string, value: number, min = Number.MIN_VALUE): number => {
    if (!(value >= min) || !Number.isFinite(value)) throw new RangeError(`${name} must be a finite number >= ${min === Number.MIN_VALUE ? "0 (exclusive)" : min}`);
    return value;
  };
  const pollIntervalMs = positive("pollIntervalMs", options.pollIntervalMs ?? 2000);
  return {
    urls: [...urls],
    token: options.token,
    session: options.session,
    tokenTransport: options.tokenTransport ?? "subprotocol",
    checkRefusals: options.checkRefusals ?? true,
    WebSocket: options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket,
    fetch: options.fetch ?? (globalThis.fetch as FetchLike | undefined)?.bind(globalThis),
    httpBase: options.httpBase?.replace(/\/$/, ""),
    store: options.store ?? memoryOffsetStore(),
    backoff: resolveBackoff(options.backoff),
    ackIntervalMs: positive("ackIntervalMs", options.ackIntervalMs ?? 100),
    ackFramesPerSecond: positive("ackFramesPerSecond", options.ackFramesPerSecond ?? ACK_FRAMES_PER_SECOND),
    pollAfterFailures: positive("pollAfterFailures", options.pollAfterFailures ?? 3, 1),
    pollIntervalMs,
    maxPollIntervalMs: positive("maxPollIntervalMs", options.maxPollIntervalMs ?? 60_000, pollIntervalMs),
    pollLimit: positive("pollLimit", options.pollLimit ?? 100, 1),
    connectTimeoutMs: positive("connectTimeoutMs", options.connectTimeoutMs ?? 10_000),
    requestTimeoutMs: positive("requestTimeoutMs", options.requestTimeoutMs ?? 15_000),
    timers: options.timers ?? globalTimers,
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
    idleProbe: options.idleProbe ?? true,
  };
}
