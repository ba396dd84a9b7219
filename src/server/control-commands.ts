/**
 * Commands every node runs against its own connections, carried by the engine's `ControlBus`
 * (this node alone when embedded, a Redis pub/sub channel in a cluster): close a user's
 * connections with 4403 (`/v1/disconnect`), take a user off a channel (`/v1/unsubscribe`), and
 * hand a session still open here over to the node where it was resumed (PROTOCOL §6).
 */
import type { ServerWebSocket } from "bun";
import type { ConnData } from "../connection/conn-data.ts";
import type { ConnectionManager } from "../connection/manager.ts";
import { deleteSub, subOf } from "../connection/subs.ts";
import type { BunSocket } from "../delivery/bun-transport.ts";
import type { Hub } from "../delivery/hub.ts";
import type { ControlBus, SessionState } from "../engine/types.ts";
import { CloseCode } from "../protocol/codes.ts";
import type { Sessions } from "./sessions.ts";

type WS = ServerWebSocket<ConnData>;

export type ControlCommand =
  | { kind: "disconnect"; user: string; reason?: string }
  | { kind: "unsubscribe"; user: string; channel: string }
  | { kind: "takeover"; user: string; session: string };

/** One node's answer: how many of its connections the command acted on. */
export interface ControlAnswer {
  count: number;
  /** `takeover` only: the session's state as its open connection had it (fresher than the store's). */
  state?: SessionState;
}

/** A command's outcome over the cluster. */
export interface ControlResult {
  /** Connections acted on, summed over the nodes that answered. */
  count: number;
  /** Nodes that got the command but did not answer in time (their connections are not counted). */
  missing: number;
  /** `takeover`: the session state a node answered with, if any. */
  state?: SessionState;
}

/**
 * How long a command waits for the other nodes' answers. Each answers as soon as it has acted
 * (one pub/sub round trip, about a millisecond): this bound matters only when a node stalls.
 */
export const CONTROL_WAIT_MS = 1_000;

/** The WebSocket close reason holds 123 bytes: longer reasons are cut at a character boundary. */
function closeReason(text: string): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= 123) return text;
  return new TextDecoder().decode(bytes.subarray(0, 123)).replace(/\uFFFD+$/, "");
}

export interface ControlOptions {
  bus: ControlBus;
  manager: Pick<ConnectionManager, "ofUser" | "closeGracefully">;
  hub: Pick<Hub<BunSocket>, "leave">;
  sessions: Pick<Sessions, "handOver" | "onDirty">;
  waitMs?: number;
}

/**
 * This node's side of the control bus: serves commands from every node, and sends them.
 *
 * @example
 * const control = new Control({ bus: engine.control ?? localControlBus(), manager, hub, sessions });
 * const { count } = await control.run({ kind: "disconnect", user: "alice" });
 */
export class Control {
  readonly #o: ControlOptions;

  constructor(options: ControlOptions) {
    this.#o = options;
    options.bus.serve((command) => this.#handle(command as ControlCommand));
  }

  /** Runs `command` on every node; rejects with `StoreUnavailableError` when other nodes cannot be reached. */
  async run(command: ControlCommand): Promise<ControlResult> {
    const { replies, missing } = await this.#o.bus.broadcast(command, this.#o.waitMs ?? CONTROL_WAIT_MS);
    const result: ControlResult = { count: 0, missing };
    for (const reply of replies as Array<ControlAnswer | undefined>) {
      result.count += Number(reply?.count) || 0;
      if (reply?.state) result.state = reply.state;
    }
    return result;
  }

  #handle(command: ControlCommand): ControlAnswer | Promise<ControlAnswer> {
    switch (command?.kind) {
      case "disconnect":
        return this.#disconnect(command.user, command.reason);
      case "unsubscribe":
        return this.#unsubscribe(command.user, command.channel);
      case "takeover":
        return this.#o.sessions.handOver(command.session, command.user);
      default:
        return { count: 0 };
    }
  }

  #disconnect(user: string, reason = "disconnected"): ControlAnswer {
    let count = 0;
    for (const ws of this.#o.manager.ofUser(String(user))) {
      if (ws.data.closed) continue;
      // After the client's pong (close-handshake.ts): a 4403 lost behind a proxy is a reconnect.
      this.#o.manager.closeGracefully(ws, CloseCode.Disconnected, closeReason(reason));
      count++;
    }
    return { count };
  }

  #unsubscribe(user: string, channel: string): ControlAnswer {
    let count = 0;
    for (const ws of this.#o.manager.ofUser(String(user))) {
      if (ws.data.closed) continue;
      if (!leave(ws, String(channel), this.#o.hub)) continue;
      ws.send(JSON.stringify({ type: "unsubscribed", channel, reason: "server" }));
      // Saved now where another node may resume the session, so a resume cannot restore the channel.
      this.#o.sessions.onDirty?.(ws.data);
      count++;
    }
    return { count };
  }
}

/** Takes `ws` off `channel` (a join still reading history gives up on its own); false when not on it. */
function leave(ws: WS, channel: string, hub: ControlOptions["hub"]): boolean {
  const sub = subOf(ws.data, channel);
  if (!sub) return false;
  deleteSub(ws.data, channel);
  if (sub.ready) hub.leave(ws, channel);
  ws.data.dirty = true;
  return true;
}
