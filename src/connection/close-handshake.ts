/**
 * The server's side of the closing handshake, as far as Bun allows (PROTOCOL §4 v1.1).
 *
 * Bun's `ws.close()` sends the Close frame and half-closes TCP (FIN) in the same moment, before the
 * client's Close comes back (tests/proxy-nginx.test.ts shows it at the TCP level). A proxy such as
 * nginx takes our FIN as the end of the whole exchange and closes its client side at once; frames
 * the client wrote before it read our Close then meet a closed socket, the proxy answers RST, and
 * the client may lose our Close and the error frames before it (1006, and the SDK reconnects
 * instead of stopping). So the close waits for proof that the client has read everything sent
 * before it: a ping sent after the last frame, and its pong. Since TCP keeps order, when that pong
 * reaches us the proxy has also read, and forwarded, everything the client wrote before it: our FIN
 * then finds the proxy with nothing unread, and the proxy closes cleanly. A client that answers no
 * ping is closed after {@linkcode CLOSE_WAIT_MS}. Frames from a closing connection are ignored.
 *
 * What this cannot fix: a client that keeps writing after the pong (a flood) still races the
 * proxy's close; nginx's `lingering_close always` covers that (README "Behind a proxy").
 */
import type { ServerWebSocket } from "bun";
import type { Scheduler } from "../server/scheduler.ts";
import type { ConnData } from "./conn-data.ts";

/** PROTOCOL §4 v1.1: the server waits up to 1 s for the client before it closes TCP. */
export const CLOSE_WAIT_MS = 1000;

/** The payload of the ping whose pong lets the close go out. */
const CLOSE_PROBE = "courier-close";

/** A close that has been decided and waits for the client's pong. */
export interface Closing {
  code: number;
  reason: string;
  /** Cancels the {@linkcode CLOSE_WAIT_MS} timer. */
  cancel: () => void;
}

/** Options for {@linkcode closeAfterPong}. */
export interface CloseHandshakeOptions {
  scheduler: Scheduler;
  /** @default CLOSE_WAIT_MS */
  waitMs?: number;
}

/**
 * Decides to close `ws` with `code`: pings it, and closes when the pong arrives
 * ({@linkcode closingPong}) or `waitMs` has passed, whichever is first. A second decision on the
 * same connection keeps the first.
 *
 * @example
 * ws.send(errorFrame(ErrorCode.RateLimited, "too many frames"));
 * closeAfterPong(ws, CloseCode.TooManyFrames, "too many frames", { scheduler });
 */
export function closeAfterPong(ws: ServerWebSocket<ConnData>, code: number, reason: string, options: CloseHandshakeOptions): void {
  const data = ws.data;
  if (data.closing || data.closed) return;
  const cancel = options.scheduler.after(options.waitMs ?? CLOSE_WAIT_MS, () => closeNow(ws));
  data.closing = { code, reason, cancel };
  // 0: the socket is already gone or its buffer is over the limit; no pong will come.
  if (ws.ping(CLOSE_PROBE) === 0) closeNow(ws);
}

/**
 * A pong arrived: true when it answers the close probe, and the connection is then closed.
 *
 * @example
 * pong(ws, payload) { if (closingPong(ws, payload)) return; ... }
 */
export function closingPong(ws: ServerWebSocket<ConnData>, payload: Uint8Array | undefined): boolean {
  if (!ws.data.closing || ws.data.closed || !payload || Buffer.from(payload).toString() !== CLOSE_PROBE) return false;
  closeNow(ws);
  return true;
}

/** Sends the decided close at once (the wait is over, or the node is going away). */
export function closeNow(ws: ServerWebSocket<ConnData>): void {
  const closing = ws.data.closing;
  if (!closing || ws.data.closed) return;
  closing.cancel();
  ws.close(closing.code, closing.reason);
}

/** The connection closed (by either side): a pending wait has nothing left to do. */
export function forgetClosing(data: ConnData): void {
  data.closing?.cancel();
}
