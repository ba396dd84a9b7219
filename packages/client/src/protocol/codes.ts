/**
 * Every close code and error code of PROTOCOL.md §4, named once and imported by server and SDK.
 * The `reconnect` column is what a client should do after the close: this table is the one place
 * that decides it.
 */

/** WebSocket close codes Courier uses, with whether a client should reconnect after each. */
export const CloseCode = {
  /** Normal close, e.g. a session taken over by a newer connection. */
  Normal: 1000,
  /** Server shutting down without drain (`server.stop(true)`). */
  GoingAway: 1001,
  /** A binary frame arrived; Courier speaks JSON text frames only. */
  UnsupportedData: 1003,
  /** A frame over the configured maximum. */
  MessageTooBig: 1009,
  /** Planned restart, announced by a `reconnect` frame. */
  ServiceRestart: 1012,
  /** Repeated protocol errors. */
  ProtocolErrors: 4400,
  /** The token expired on an open connection: refresh it, then resume. */
  TokenExpired: 4401,
  /** Disconnected by the server (`POST /v1/disconnect`): do not reconnect with the same token. */
  Disconnected: 4403,
  /** No pong / no acks in time: the connection looked half-open. */
  Stale: 4408,
  /** The client could not keep up: resume from history. */
  SlowConsumer: 4409,
  /** Too many frames. */
  TooManyFrames: 4429,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** How a client should react to each close code. */
export const closeAdvice: Record<CloseCode, { reconnect: boolean; refreshToken: boolean; reason: string }> = {
  1000: { reconnect: false, refreshToken: false, reason: "normal" },
  1001: { reconnect: true, refreshToken: false, reason: "going_away" },
  1003: { reconnect: false, refreshToken: false, reason: "unsupported_data" },
  1009: { reconnect: false, refreshToken: false, reason: "message_too_big" },
  1012: { reconnect: true, refreshToken: false, reason: "server_restart" },
  4400: { reconnect: false, refreshToken: false, reason: "protocol_errors" },
  4401: { reconnect: true, refreshToken: true, reason: "token_expired" },
  4403: { reconnect: false, refreshToken: false, reason: "disconnected" },
  4408: { reconnect: true, refreshToken: false, reason: "stale" },
  4409: { reconnect: true, refreshToken: false, reason: "slow_consumer" },
  4429: { reconnect: true, refreshToken: false, reason: "too_many_frames" },
};

/** Error codes carried by `{"type":"error"}` frames and HTTP error bodies. */
export const ErrorCode = {
  BadRequest: "bad_request",
  Unauthorized: "unauthorized",
  Forbidden: "forbidden",
  NotFound: "not_found",
  /** HTTP only: a known route asked with another method (405, `Allow` lists the methods). */
  MethodNotAllowed: "method_not_allowed",
  /** HTTP only: the request conflicts with the state (an append or end to an unknown or ended agent stream, 409). */
  Conflict: "conflict",
  LimitExceeded: "limit_exceeded",
  RateLimited: "rate_limited",
  Timeout: "timeout",
  Unavailable: "unavailable",
  Internal: "internal",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Why an upgrade was refused (PROTOCOL §3, v1.1): the `reason` of the refusal's JSON body, which
 * `GET /v1/ws/check` answers too, and the SDK's `status.reason` after a refused connect. `heals`:
 * whether retrying the same token later can succeed (a 403 or a bad token never does by itself).
 */
export const RefusalReason = {
  /** 401: the token's `exp` passed: refresh it. */
  TokenExpired: "token_expired",
  /** 401: missing, malformed, badly signed token or bad claims. */
  Unauthorized: "unauthorized",
  /** 403: the page's `Origin` is not in the allowlist. */
  ForbiddenOrigin: "forbidden_origin",
  /** 429: the user already has the maximum connections. */
  TooManyConnections: "too_many_connections",
  /** 429: too many upgrades from this IP address. */
  RateLimited: "rate_limited",
  /** 503: not ready, draining, node full or a dependency down. */
  Unavailable: "unavailable",
} as const;
export type RefusalReason = (typeof RefusalReason)[keyof typeof RefusalReason];

/** The WebSocket subprotocol of protocol v1 (PROTOCOL §3 v1.1), selected by the server in the 101. */
export const SUBPROTOCOL = "courier.v1";
/** Prefix of the subprotocol that carries the token: `courier.token.<jwt>`, offered beside `courier.v1`. */
export const TOKEN_SUBPROTOCOL_PREFIX = "courier.token.";

/** Why a `subscribed` frame says `recovered:false`. */
export const NotRecoveredReason = {
  HistoryTrimmed: "history_trimmed",
  EpochChanged: "epoch_changed",
  OffsetAhead: "offset_ahead",
} as const;
export type NotRecoveredReason = (typeof NotRecoveredReason)[keyof typeof NotRecoveredReason];

/** User tiers in ascending order: a user of a tier may join the signals of every tier up to it. */
export const TIERS = ["starter", "pro", "enterprise"] as const;
export type Tier = (typeof TIERS)[number];

/** Whether `value` names a tier. */
export function isTier(value: unknown): value is Tier {
  return (TIERS as readonly unknown[]).includes(value);
}

/** Whether `tier` reaches `required` (`enterprise` reaches `pro`, `starter` does not). */
export function tierReaches(tier: Tier, required: Tier): boolean {
  return TIERS.indexOf(tier) >= TIERS.indexOf(required);
}
