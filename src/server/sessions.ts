/**
 * Sessions, PROTOCOL.md §6, in one file: the resume lookup at upgrade (a hit resumes, a miss starts
 * fresh, another user's session id reveals nothing), takeover of a session still open on this node
 * (the old connection closes with 1000 and hands its per-user slot over) or on another node (asked
 * over the control bus: that node closes it with 1000, frees its slot and answers with the
 * session's live state), saving the state (on close; as it changes too where another node may
 * resume it), and restoring its subscriptions.
 */
import { randomUUID } from "node:crypto";
import type { ServerWebSocket } from "bun";
import type { ConnData } from "../connection/conn-data.ts";
import type { ConnectionManager } from "../connection/manager.ts";
import { subCount, subsOf } from "../connection/subs.ts";
import type { ConnectionSlots, ControlBus, SessionState, SessionStore } from "../engine/types.ts";
import { parseChannel, type ChannelName } from "../protocol/channel.ts";
import { CloseCode, ErrorCode } from "../protocol/codes.ts";
import { errorFrame } from "../protocol/frames.ts";
import type { Logger } from "../telemetry/index.ts";
import type { ServerEvents } from "./server-events.ts";

type WS = ServerWebSocket<ConnData>;

const SESSION_ID = /^[A-Za-z0-9-]{8,64}$/;

/** What the upgrade learns from a `session` parameter. */
export interface Resumption {
  /** The asked id on a hit, else a new one. */
  sessionId: string;
  /** The state to restore once open, or null. */
  state: SessionState | null;
  /** The open local connection to take over once this upgrade goes through. */
  takeover: WS | undefined;
}

/** Options for {@linkcode Sessions}. */
export interface SessionsOptions {
  store: SessionStore;
  /** Where a session still open on this node is found. */
  manager: Pick<ConnectionManager, "session">;
  /** How long a closed session can be resumed. */
  resumeWindowMs: number;
  events: Pick<ServerEvents, "resumed">;
  log: Logger;
  /**
   * Where a session open on another node is asked for (`Control` serves `handOver` on each node);
   * only consulted when the store is shared across nodes.
   */
  control?: Pick<ControlBus, "broadcast">;
  /** Frees the slot of a connection handed over to another node (which takes its own). */
  slots?: Pick<ConnectionSlots, "releaseConnection">;
  /** How long a resume waits for another node to hand its connection over. @default 1000 */
  handOverWaitMs?: number;
}

/**
 * The sessions of one node.
 *
 * @example
 * const { sessionId, state, takeover } = await sessions.resume(url.searchParams.get("session"), user);
 */
export class Sessions {
  readonly #o: SessionsOptions;
  /**
   * Saves a session whose state changed, when another node may resume it; undefined when only
   * this node can (then saving on close is enough). Called by the sweep, never per message.
   */
  readonly onDirty: ((data: ConnData) => void) | undefined;

  constructor(options: SessionsOptions) {
    this.#o = options;
    this.onDirty = options.store.sharedAcrossNodes
      ? (data) => {
          options.store.saveSession(data.sessionId, sessionStateOf(data), options.resumeWindowMs).catch(() => {});
        }
      : undefined;
  }

  /**
   * Looks up the session `asked` for `user`: the open local connection's state when there is one
   * (fresher than the stored one), else the stored state. A session of another user is a miss,
   * exactly like an unknown one.
   */
  async resume(asked: string | null, user: string): Promise<Resumption> {
    const fresh: Resumption = { sessionId: randomUUID(), state: null, takeover: undefined };
    if (asked === null) return fresh;
    let state: SessionState | null = null;
    let takeover: WS | undefined;
    if (SESSION_ID.test(asked)) state = await this.#o.store.loadSession(asked).catch(() => null);
    const local = this.#o.manager.session(asked, user);
    if (local && !local.data.closed && local.data.user === user) {
      state = sessionStateOf(local.data);
      takeover = local;
    } else if (this.#o.control && this.#o.store.sharedAcrossNodes && SESSION_ID.test(asked)) {
      // Asked even when the store has nothing yet: an open session is saved only as it changes.
      state = (await this.#handOverElsewhere(asked, user)) ?? state;
    }
    const hit = state !== null && state.user === user;
    this.#o.events.resumed(hit);
    return hit ? { sessionId: asked, state, takeover } : fresh;
  }

  /**
   * Asks every node to close the session's open connection, if it has one: it answers once its
   * slot is free, so the upgrade can take its own. An unreachable cluster leaves it open (a miss
   * of the takeover, never of the resume).
   */
  async #handOverElsewhere(session: string, user: string): Promise<SessionState | undefined> {
    try {
      const { replies } = await this.#o.control!.broadcast({ kind: "takeover", session, user }, this.#o.handOverWaitMs ?? 1_000);
      for (const reply of replies as Array<{ state?: SessionState } | undefined>) if (reply?.state?.user === user) return reply.state;
    } catch (error) {
      this.#o.log.warn("session takeover not sent to other nodes", { error: (error as Error).message });
    }
    return undefined;
  }

  /**
   * Another node resumed session `id`: its open connection here, if any (and `user`'s), closes
   * with 1000 without saving (the new connection owns the session) and frees its slot before the
   * answer, which carries the session's state.
   */
  async handOver(id: string, user: string): Promise<{ count: number; state?: SessionState }> {
    const ws = this.#o.manager.session(String(id), user);
    if (!ws || ws.data.closed || ws.data.user !== user || ws.data.slotTransferred) return { count: 0 };
    const state = sessionStateOf(ws.data);
    this.takeOver(ws);
    await this.#o.slots?.releaseConnection(user).catch(() => {});
    return { count: 1, state };
  }

  /** Closes the connection whose session was resumed elsewhere; its per-user slot goes with the session. */
  takeOver(old: WS): void {
    old.data.slotTransferred = true;
    old.close(CloseCode.Normal, "session taken over");
  }

  /** Saves a closing connection's session, unless it was taken over (the new connection owns it). */
  closed(data: ConnData): void {
    if (data.slotTransferred || subCount(data) === 0) return;
    this.#o.store.saveSession(data.sessionId, sessionStateOf(data), this.#o.resumeWindowMs).catch((error) => {
      this.#o.log.warn("session not saved", { error: (error as Error).message });
    });
  }
}

/** The session state to save for `data`: every joined channel with where it started and its ack. */
export function sessionStateOf(data: ConnData): SessionState {
  const channels: SessionState["channels"] = {};
  for (const sub of subsOf(data)) {
    if (sub.ready) channels[sub.channel] = { epoch: sub.epoch, from: sub.from, acked: sub.acked };
  }
  return { user: data.user, channels };
}

/** How a restored channel is checked and joined (the WebSocket handler's own join). */
export interface RestoreOptions {
  mayJoin(channel: ChannelName): Promise<boolean>;
  join(channel: string, since: { offset: number; epoch: string }): void;
}

/**
 * Re-joins a resumed session's channels, replaying after the last ack (or, never acknowledged,
 * after where the subscription started). Permissions are checked again: the new token may grant less.
 */
export async function restoreSubscriptions(ws: WS, resume: SessionState, options: RestoreOptions): Promise<void> {
  for (const [name, s] of Object.entries(resume.channels)) {
    const channel = parseChannel(name);
    const allowed = channel !== null && (await options.mayJoin(channel).catch(() => false));
    if (ws.data.closed) return;
    if (!allowed) {
      ws.send(errorFrame(ErrorCode.Forbidden, `not allowed to join ${name}`));
      continue;
    }
    options.join(name, { offset: s.acked > 0 ? s.acked : s.from, epoch: s.epoch });
  }
}
