/** Per-connection state, typed `ws.data`: owned by the connection, read by manager and hub. */
import type { Principal } from "../auth/tokens.ts";
import type { SessionState } from "../engine/types.ts";
import type { Closing } from "./close-handshake.ts";
import type { Subs } from "./subs.ts";

/** One joined channel (made by `newSubscription`, subs.ts, so every one has the same shape). */
export interface Subscription {
  readonly channel: string;
  epoch: string;
  /** Offset the subscription started after (since.offset, or the top at subscribe). */
  from: number;
  /** Highest acknowledged offset, cumulative. */
  acked: number;
  /** Highest offset already counted as a confirmation time-out (0: none), so each event is counted once. */
  timedOut: number;
  /** When the join completed (ms). */
  joinedAt: number;
  /** False while the join is reading history. */
  ready: boolean;
}

/**
 * One object of one shape per connection. The principal's fields are its own (`data.user`,
 * `data.tier`…; `mayJoin(data, …)`) instead of a Principal object of their own. An object literal
 * of 19 to 26 fields takes 224 B on Bun 1.4.4 (measured): a field past the 26th costs every
 * connection 32 B more.
 */
export interface ConnData extends Principal {
  sessionId: string;
  /** Session state to restore in `open` (a resume hit), or null. */
  resume: SessionState | null;
  /** Written only through subs.ts; read through it too, but by the sweep (manager.ts), which reads it as held. */
  subs: Subs;
  /** `performance.now()` when the upgrade request arrived (before token verification): the connect-duration start. */
  upgradeStartedMs: number;
  lastSeen: number;
  lastPingAt: number;
  /** When a confirmation probe (ping) went out and no pong has come back yet; 0 if none. */
  probeAt: number;
  lastProbeOk: number;
  tokens: number;
  tokensAt: number;
  /**
   * Ack frames have their own bucket (`tokens`, `tokensAt` above are the frames'): acking is how
   * clients keep the promise, never "too many frames". Two fields, not an object of their own.
   */
  ackTokens: number;
  ackTokensAt: number;
  rateStrikes: number;
  protocolErrors: number;
  closed: boolean;
  /** The close decided and waiting for the client's pong (close-handshake.ts); null while open. */
  closing: Closing | null;
  /** Session changed since it was last saved (acks, joins). */
  dirty: boolean;
  /** The per-user slot was handed to the connection that took this session over. */
  slotTransferred: boolean;
}

export function newConnData(principal: Principal, sessionId: string, resume: SessionState | null, now: number, burst: number): ConnData {
  return {
    user: principal.user,
    tier: principal.tier,
    channels: principal.channels,
    exp: principal.exp,
    tierFromToken: principal.tierFromToken,
    sessionId,
    resume,
    subs: null,
    upgradeStartedMs: performance.now(),
    lastSeen: now,
    lastPingAt: now,
    probeAt: 0,
    lastProbeOk: 0,
    tokens: burst,
    tokensAt: now,
    // Starts full: the first ack caps the tokens at the ack burst.
    ackTokens: Number.POSITIVE_INFINITY,
    ackTokensAt: now,
    rateStrikes: 0,
    protocolErrors: 0,
    closed: false,
    closing: null,
    dirty: false,
    slotTransferred: false,
  };
}
