/**
 * The client SDK's public types. Wire frames are plain types in `./protocol/frames.ts`, shared
 * with the server, so the SDK stays free of runtime dependencies.
 */
import type { EventFrame, ServerFrame, SubscribedFrame, WelcomeFrame } from "./protocol/frames.ts";

export type { EventFrame, ServerFrame, SubscribedFrame, WelcomeFrame };

/** Connection state: `live` only between a `welcome` and the next close. */
export type Status = "connecting" | "live" | "offline";

/** What `on("status")` and `onStatus` receive. */
export interface StatusChange {
  status: Status;
  /**
   * Why: a close advice reason (`server_restart`, `protocol_errors`…), `closed`, `no_websocket`,
   * `connect_failed`, or after a refused connect what `/v1/ws/check` said (`token_expired`,
   * `unauthorized`, `forbidden_origin`, `too_many_connections`, `rate_limited`, `unavailable`).
   */
  reason?: string;
  /** The close code that caused the change, when there was one. */
  code?: number;
  /** Whether events are being fetched over HTTP while the WebSocket is down. */
  polling: boolean;
}

/** Where a channel's stream was last read: the `since` of the next subscribe. */
export interface Position {
  epoch: string;
  offset: number;
}

/**
 * Event names mapped to the type of their `data`, for typed clients:
 * `new CourierClient<{ job_progress: { percent: number } }>(…)`. Default: any name, `data: unknown`.
 */
export type EventMap = object;

/** The default event map: any event name, `data: unknown`. */
export type AnyEvents = Record<string, unknown>;

/** One event named `K` with data `D`, as handed to channel handlers and `on("event")`. */
export interface TypedEvent<K extends string = string, D = unknown> {
  channel: string;
  epoch: string | undefined;
  offset: number;
  event: K;
  data: D;
  critical: boolean;
  ts: number;
}

/**
 * An event of a client typed by `E`: a union over its names, so checking `event` narrows `data`.
 *
 * @example
 * client.subscribe("job:42", (e) => { if (e.event === "job_progress") bar.value = e.data.percent; });
 */
export type CourierEvent<E extends EventMap = AnyEvents> = { [K in keyof E & string]: TypedEvent<K, E[K]> }[keyof E & string];

/** Whether a (re)subscription resumed without a gap; `recovered: false` means: refetch state. */
export interface Recovery {
  channel: string;
  recovered: boolean;
  /** `history_trimmed`, `epoch_changed` or `offset_ahead` when not recovered. */
  reason?: string;
}

/** A channel handler. */
export type EventHandler<E extends EventMap = AnyEvents> = (event: CourierEvent<E>) => void;

/** A fixed token, or a provider called for the first connection and again after a refusal or 4401. */
export type TokenSource = string | (() => string | Promise<string>);

/** Timer functions, injectable for tests; defaults read `globalThis` at call time. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Milliseconds since an arbitrary origin, injectable for tests. */
export interface Clock {
  now(): number;
}

/** The part of the WHATWG WebSocket the client uses (browsers, Bun, Node ≥ 22). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // `any` keeps the DOM WebSocket assignable: its handlers take MessageEvent/CloseEvent.
  onopen: ((ev: any) => unknown) | null;
  onmessage: ((ev: any) => unknown) | null;
  onclose: ((ev: any) => unknown) | null;
  onerror: ((ev: any) => unknown) | null;
}

/** A WebSocket constructor such as `globalThis.WebSocket` (the `protocols` carry the token by default). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The part of the Fetch API response the polling fallback reads. */
export interface FetchResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  json(): Promise<unknown>;
}

/** A fetch function such as `globalThis.fetch`. */
export type FetchLike = (url: string, init: { headers: Record<string, string> }) => Promise<FetchResponseLike>;
