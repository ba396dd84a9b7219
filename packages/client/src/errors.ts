/** The SDK's one domain error: an error frame, a timeout or a lost connection, with its data. */
import type { ErrorCode } from "./protocol/codes.ts";

/** Extra data a `CourierError` may carry. */
export interface CourierErrorDetails {
  /** The request id the server echoed, when the error answers a request. */
  requestId?: string | number;
  /** The channel concerned, for subscribe failures. */
  channel?: string;
  cause?: unknown;
}

/**
 * An error frame from the server (`code` as in PROTOCOL.md §4), or one the client makes for a
 * request that timed out (`timeout`) or lost its connection (`unavailable`).
 *
 * @example
 * try { await client.rpc("agent.run", {}); } catch (e) {
 *   if (e instanceof CourierError && e.code === "rate_limited") backOff();
 * }
 */
export class CourierError extends Error {
  override readonly name = "CourierError";
  readonly code: ErrorCode;
  readonly requestId: string | number | undefined;
  readonly channel: string | undefined;

  /**
   * @example
   * new CourierError("timeout", "rpc timed out after 15000 ms", { requestId: 3 });
   */
  constructor(code: ErrorCode, message: string, details: CourierErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.requestId = details.requestId;
    this.channel = details.channel;
  }

  /**
   * The error an `{"type":"error"}` frame carries, with its request id when it echoes one.
   *
   * @example
   * CourierError.fromFrame({ type: "error", id: 3, code: "forbidden", message: "not yours" }).requestId; // 3
   */
  static fromFrame(frame: Record<string, unknown>): CourierError {
    const requestId = typeof frame.id === "number" || typeof frame.id === "string" ? frame.id : undefined;
    return new CourierError(frame.code as ErrorCode, String(frame.message), { requestId });
  }
}
