/**
 * One WebSocket from dial to close, as engine.io keeps its transport apart from the protocol:
 * JSON text frames in and out, the connect timeout, and one `lost` however the socket ends
 * (browsers follow an error with a close; Bun may not).
 */
import type { Timers, WebSocketConstructor, WebSocketLike } from "./types.ts";

const OPEN = 1;

/** Options of `SocketConnection`. */
export interface SocketConnectionOptions {
  WebSocket: WebSocketConstructor;
  url: string;
  /** Subprotocols to offer (`courier.v1` and the token's); none: the constructor gets the URL only. */
  protocols?: string[];
  timers: Timers;
  /** How long until `welcomed()` before the attempt counts as lost (`connect_timeout`). */
  connectTimeoutMs: number;
  /** Each JSON object frame; anything else is ignored. */
  frame(frame: Record<string, unknown>): void;
  /** The socket closed or failed, or the connect timeout passed; called once, never after `close()`. */
  lost(code: number | undefined, reason?: string): void;
}

/**
 * Dials at construction (throws what the WebSocket constructor throws).
 *
 * @example
 * const conn = new SocketConnection({ WebSocket, url, timers, connectTimeoutMs: 10_000, frame: onFrame, lost: onLost });
 * conn.send({ type: "ping", id: 1 });
 * conn.close();
 */
export class SocketConnection {
  #socket: WebSocketLike;
  #o: SocketConnectionOptions;
  #connectTimer: unknown;
  #closed = false;

  /** @example new SocketConnection(options); */
  constructor(options: SocketConnectionOptions) {
    this.#o = options;
    const socket = options.protocols ? new options.WebSocket(options.url, options.protocols) : new options.WebSocket(options.url);
    this.#socket = socket;
    socket.onmessage = (ev: { data: unknown }) => this.#onMessage(ev.data);
    socket.onclose = (ev: { code?: number } | undefined) => this.#lose(ev?.code);
    socket.onerror = () => this.#lose(undefined);
    this.#connectTimer = options.timers.setTimeout(() => this.#lose(undefined, "connect_timeout"), options.connectTimeoutMs);
  }

  /** The server's welcome arrived: the connect timeout no longer applies. @example conn.welcomed(); */
  welcomed(): void {
    this.#clearConnectTimer();
  }

  /**
   * Sends a frame; false when the socket is not open.
   *
   * @example
   * conn.send({ type: "ack", channel: "user:a", offset: 3 });
   */
  send(frame: Record<string, unknown>): boolean {
    if (this.#closed || this.#socket.readyState !== OPEN) return false;
    try {
      this.#socket.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Closes with 1000 and goes quiet: no `frame` or `lost` after this. Idempotent. @example conn.close(); */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearConnectTimer();
    const socket = this.#socket;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    try {
      if (socket.readyState <= OPEN) socket.close(1000);
    } catch {
      // Already closing.
    }
  }

  #onMessage(data: unknown): void {
    if (this.#closed || typeof data !== "string") return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof parsed === "object" && parsed !== null) this.#o.frame(parsed as Record<string, unknown>);
  }

  #lose(code: number | undefined, reason?: string): void {
    if (this.#closed) return;
    this.close();
    this.#o.lost(code, reason);
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== undefined) this.#o.timers.clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
  }
}
