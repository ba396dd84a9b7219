/**
 * The connection manager: who is connected, per-node limits, local sessions (for takeover), and
 * one periodic sweep over all connections for what must not run per message: heartbeats, token
 * expiry, slow consumers and confirmation probes. The sweep is aggregate work, off the hot path.
 */
import type { ServerWebSocket } from "bun";
import { tokenExpired } from "../auth/tokens.ts";
import { CloseCode } from "../protocol/codes.ts";
import { TIERS, type Tier } from "../protocol/codes.ts";
import type { LocalSlotsAbility } from "../engine/types.ts";
import type { Scheduler } from "../server/scheduler.ts";
import { closeAfterPong, closeNow } from "./close-handshake.ts";
import type { ConnData, Subscription } from "./conn-data.ts";
import { subsOf } from "./subs.ts";

export interface SweepOptions {
  heartbeatMs: number;
  confirmTimeoutMs: number;
  probeTimeoutMs: number;
  slowConsumerBytes: number;
  /** `auth.clockToleranceS`: the sweep closes 4401 by the upgrade's rule ({@linkcode tokenExpired}). */
  clockToleranceS: number;
}

export interface SweepHooks {
  /** Earliest unacknowledged critical event the connection can have received on `channel`. */
  oldestUnacked(channel: string, after: number): { ts: number; count: number } | null;
  /** Critical events after `after` the connection can have received on `channel`, published before `before`. */
  overdue?(channel: string, after: number, before: number): { count: number; through: number } | null;
  /** Critical events newly past the confirmation timeout without an ack: each is reported once. */
  onTimedOut?(events: number): void;
  onClose?(code: CloseCode, data: ConnData, detail?: { unconfirmed?: number }): void;
  /** Session state changed; persist it (cluster engines). */
  onDirty?(data: ConnData): void;
}

/** Options for {@linkcode ConnectionManager}. */
export interface ConnectionManagerOptions {
  /**
   * Runs the closing handshake's wait (close-handshake.ts). Without one, closes go out at once
   * (unit tests with fake sockets).
   */
  scheduler?: Scheduler;
  /**
   * A single-node engine's slots, told as connections open and close: they count a user's slots
   * with `countOf` and keep none for an open connection.
   */
  slots?: Pick<LocalSlotsAbility, "opened" | "closed">;
}

export class ConnectionManager {
  readonly #scheduler: Scheduler | undefined;
  readonly #slots: Pick<LocalSlotsAbility, "opened" | "closed"> | undefined;
  /**
   * Open connections per user, the manager's only table (one per connection or per session id
   * would cost ≈ 230 B of RSS per connection each): what `/v1/disconnect` and `/v1/unsubscribe`
   * act on, where a session still open here is found, and what the sweep walks. Most users have
   * one connection: it is stored as itself, and a Set (≈ 250 B) only from a user's second.
   */
  readonly #users = new Map<string, ServerWebSocket<ConnData> | Set<ServerWebSocket<ConnData>>>();
  /** Connections in `#users`. */
  #open = 0;
  /** Upgrades accepted but not yet open, so the node limit holds during a connect storm. */
  #pending = 0;

  constructor(options: ConnectionManagerOptions = {}) {
    this.#scheduler = options.scheduler;
    this.#slots = options.slots;
  }

  get size(): number {
    return this.#open + this.#pending;
  }

  get users(): number {
    return this.#users.size;
  }

  reserve(): void {
    this.#pending++;
  }

  unreserve(): void {
    if (this.#pending > 0) this.#pending--;
  }

  add(ws: ServerWebSocket<ConnData>): void {
    this.unreserve();
    const user = ws.data.user;
    const mine = this.#users.get(user);
    if (mine === ws || (mine instanceof Set && mine.has(ws))) return;
    if (mine === undefined) this.#users.set(user, ws);
    else if (mine instanceof Set) mine.add(ws);
    else this.#users.set(user, new Set([mine, ws]));
    this.#open++;
    this.#slots?.opened(user);
  }

  remove(ws: ServerWebSocket<ConnData>): void {
    const user = ws.data.user;
    const mine = this.#users.get(user);
    if (mine === ws) this.#users.delete(user);
    else if (mine instanceof Set && mine.delete(ws)) {
      if (mine.size === 1) this.#users.set(user, mine.values().next().value!);
    } else return;
    this.#open--;
    this.#slots?.closed(user);
  }

  /**
   * The open local connection of `user` holding session `id`, if any: another user's session id
   * never matches. During a takeover the session has two connections until the old one's close;
   * the one opened last holds it.
   */
  session(id: string, user: string): ServerWebSocket<ConnData> | undefined {
    const mine = this.#users.get(user);
    if (!(mine instanceof Set)) return mine?.data.sessionId === id ? mine : undefined;
    let holder: ServerWebSocket<ConnData> | undefined;
    for (const ws of mine) if (ws.data.sessionId === id) holder = ws;
    return holder;
  }

  /** How many connections `user` has open here, without listing them. */
  countOf(user: string): number {
    const mine = this.#users.get(user);
    if (mine === undefined) return 0;
    return mine instanceof Set ? mine.size : 1;
  }

  /** The open local connections of `user`, snapshotted (closing them changes the live set). */
  ofUser(user: string): ServerWebSocket<ConnData>[] {
    const mine = this.#users.get(user);
    if (mine === undefined) return [];
    return mine instanceof Set ? [...mine] : [mine];
  }

  /**
   * Every open connection, user by user (a user's in the order they opened), not in the order
   * they opened across users: nothing reads that order. Walks the live table without a copy;
   * connections may close (be removed) meanwhile: every one still open is visited once.
   */
  *connections(): Generator<ServerWebSocket<ConnData>, void, undefined> {
    for (const mine of this.#users.values()) {
      if (mine instanceof Set) yield* mine;
      else yield mine;
    }
  }

  byTier(): Record<Tier, number> {
    const counts = Object.fromEntries(TIERS.map((tier) => [tier, 0])) as Record<Tier, number>;
    for (const ws of this.connections()) counts[ws.data.tier]++;
    return counts;
  }

  /**
   * Closes `ws` with `code` once the client has read what was sent before (the closing handshake,
   * close-handshake.ts). For clients that still answer: a silent or slow one is closed at once.
   */
  closeGracefully(ws: ServerWebSocket<ConnData>, code: CloseCode, reason: string): void {
    if (this.#scheduler) closeAfterPong(ws, code, reason, { scheduler: this.#scheduler });
    else ws.close(code, reason);
  }

  /** Sends every close still waiting for its pong now (the listener is about to stop). */
  closeWaiting(): void {
    for (const ws of this.connections()) closeNow(ws);
  }

  /**
   * One pass over every connection. Closes expired-token (4401), silent (4408), slow (4409) and
   * unconfirming (4408) connections; sends heartbeat and confirmation pings.
   */
  sweep(now: number, options: SweepOptions, hooks: SweepHooks): void {
    // The table walked by hand, here and in `sweepSlow` (run every second / after backpressure):
    // `connections()`, a generator, doubled a 100k-connection sweep; a callback shared by both
    // passes added 30–50 %.
    for (const mine of this.#users.values()) {
      if (!(mine instanceof Set)) this.#sweepOne(mine, now, options, hooks);
      else for (const ws of mine) this.#sweepOne(ws, now, options, hooks);
    }
  }

  #sweepOne(ws: ServerWebSocket<ConnData>, now: number, options: SweepOptions, hooks: SweepHooks): void {
    const data = ws.data;
    if (data.closed || data.closing) return;
    if (tokenExpired(data.exp, now, options.clockToleranceS)) {
      hooks.onClose?.(CloseCode.TokenExpired, data);
      this.closeGracefully(ws, CloseCode.TokenExpired, "token expired");
      return;
    }
    if (now - data.lastSeen > 2 * options.heartbeatMs + 1000) {
      close(ws, CloseCode.Stale, "no pong in time", hooks);
      return;
    }
    if (closeIfSlow(ws, options.slowConsumerBytes, hooks)) return;
    // Counted whether or not the client still answers pings: a live client that never acks
    // must show in the confirmation rate.
    const timedOut = countTimedOut(data, now - options.confirmTimeoutMs, hooks);
    if (timedOut > 0) hooks.onTimedOut?.(timedOut);
    if (data.probeAt > 0) {
      if (now - data.probeAt > options.probeTimeoutMs) {
        close(ws, CloseCode.Stale, "critical events unconfirmed", hooks, unconfirmed(data, hooks));
        return;
      }
    } else if (now - data.lastProbeOk > options.confirmTimeoutMs && overdue(data, now, options.confirmTimeoutMs, hooks)) {
      data.probeAt = now;
      data.lastPingAt = now;
      ws.ping();
    }
    if (data.probeAt === 0 && now - data.lastSeen > options.heartbeatMs && now - data.lastPingAt > options.heartbeatMs) {
      data.lastPingAt = now;
      ws.ping();
    }
    if (data.dirty) {
      data.dirty = false;
      hooks.onDirty?.(data);
    }
  }

  /**
   * Drain: tells every open connection to reconnect (`after` spread over `spreadMs`, so they do
   * not all come back at the same moment) and closes it with 1012 (after the client's pong, so the
   * `reconnect` frame survives proxies). Returns how many were told.
   */
  reconnectAll(spreadMs: number): number {
    const connections = [...this.connections()].filter((ws) => !ws.data.closing);
    connections.forEach((ws, i) => {
      const after = Math.round((spreadMs * i) / Math.max(1, connections.length));
      ws.send(JSON.stringify({ type: "reconnect", reason: "restart", after }));
      this.closeGracefully(ws, CloseCode.ServiceRestart, "server restart");
    });
    return connections.length;
  }

  /** Slow-consumer check alone, run when a publish reports backpressure. */
  sweepSlow(slowConsumerBytes: number, hooks: SweepHooks): void {
    for (const mine of this.#users.values()) {
      if (!(mine instanceof Set)) closeIfSlow(mine, slowConsumerBytes, hooks);
      else for (const ws of mine) closeIfSlow(ws, slowConsumerBytes, hooks);
    }
  }
}

/*
 * `overdue` and `countTimedOut` run for every connection at every sweep: they read `data.subs` as
 * held (none, the one, or a Map) instead of through `subsOf`, whose array for the one subscription
 * cost a 100k-connection sweep ~30 % (3.3 → 2.3 ms median, scratch bench, 3 alternations).
 */
function overdue(data: ConnData, now: number, confirmTimeoutMs: number, hooks: SweepHooks): boolean {
  const subs = data.subs;
  if (subs === null) return false;
  if (!(subs instanceof Map)) return subOverdue(subs, now, confirmTimeoutMs, hooks);
  for (const sub of subs.values()) if (subOverdue(sub, now, confirmTimeoutMs, hooks)) return true;
  return false;
}

function subOverdue(sub: Subscription, now: number, confirmTimeoutMs: number, hooks: SweepHooks): boolean {
  if (!sub.ready) return false;
  const oldest = hooks.oldestUnacked(sub.channel, Math.max(sub.acked, sub.from));
  return !!oldest && now - Math.max(oldest.ts, sub.joinedAt) > confirmTimeoutMs;
}

/** Unacknowledged critical events not yet counted as timed out. */
function unconfirmed(data: ConnData, hooks: SweepHooks): { unconfirmed: number } {
  let count = 0;
  for (const sub of subsOf(data)) count += hooks.oldestUnacked(sub.channel, Math.max(sub.acked, sub.from, sub.timedOut))?.count ?? 0;
  return { unconfirmed: count };
}

/** Counts the events that passed `cutoff` unacknowledged since the last sweep and moves each subscription's watermark. */
function countTimedOut(data: ConnData, cutoff: number, hooks: SweepHooks): number {
  const subs = data.subs;
  if (!hooks.overdue || subs === null) return 0;
  if (!(subs instanceof Map)) return subTimedOut(subs, cutoff, hooks);
  let count = 0;
  for (const sub of subs.values()) count += subTimedOut(sub, cutoff, hooks);
  return count;
}

function subTimedOut(sub: Subscription, cutoff: number, hooks: SweepHooks): number {
  // A subscription younger than the timeout has had less than the timeout to ack anything.
  if (!sub.ready || sub.joinedAt > cutoff) return 0;
  const late = hooks.overdue!(sub.channel, Math.max(sub.acked, sub.from, sub.timedOut), cutoff);
  if (!late) return 0;
  sub.timedOut = late.through;
  return late.count;
}

/** The one slow-consumer rule (4409), for the sweep and for `sweepSlow`; true when it closed `ws`. */
function closeIfSlow(ws: ServerWebSocket<ConnData>, slowConsumerBytes: number, hooks: SweepHooks): boolean {
  if (ws.data.closed || ws.data.closing || ws.getBufferedAmount() <= slowConsumerBytes) return false;
  close(ws, CloseCode.SlowConsumer, "slow consumer", hooks);
  return true;
}

function close(ws: ServerWebSocket<ConnData>, code: CloseCode, reason: string, hooks: SweepHooks, detail?: { unconfirmed?: number }): void {
  hooks.onClose?.(code, ws.data, detail);
  ws.close(code, reason);
}
