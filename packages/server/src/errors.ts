/**
 * The one error every `@courier/server` call rejects with: Courier's JSON error body
 * (`{"error","message"}`, PROTOCOL §2) plus what the retry loop learned.
 */

/** Error codes of Courier's HTTP error bodies, plus the two the client itself reports. */
export type CourierErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "limit_exceeded"
  | "rate_limited"
  | "timeout"
  | "unavailable"
  | "internal"
  /** No answer reached the client: refused connection, reset, DNS. */
  | "network";

/** What {@linkcode CourierApiError} carries. */
export interface CourierApiErrorInit {
  /** The HTTP status, or 0 when no answer arrived (network error, timeout). */
  status: number;
  code: CourierErrorCode | (string & {});
  message: string;
  /** The server's `Retry-After`, in ms, when it sent one. */
  retryAfterMs?: number;
  /**
   * True when the call may have taken effect although it failed (a timeout, a lost connection, a
   * 502/503/504 from a proxy): retry with the same idempotency key, never with a new one.
   */
  outcomeUnknown: boolean;
  /** The key the call carried (a batch: none; each item has its own). */
  idempotencyKey?: string;
  /** How many requests were sent. */
  attempts: number;
  /** Validation issues of a 400, as the server listed them. */
  issues?: { path: string; message: string }[];
  cause?: unknown;
}

/**
 * A Courier call that failed after its retries.
 *
 * @example
 * try {
 *   await courier.publish({ channel: "user:alice", event: "note", data: {} });
 * } catch (error) {
 *   if (error instanceof CourierApiError && error.outcomeUnknown) retryLater(error.idempotencyKey);
 * }
 */
export class CourierApiError extends Error {
  override name = "CourierApiError";
  readonly status: number;
  readonly code: CourierErrorCode | (string & {});
  readonly retryAfterMs: number | undefined;
  readonly outcomeUnknown: boolean;
  readonly idempotencyKey: string | undefined;
  readonly attempts: number;
  readonly issues: { path: string; message: string }[] | undefined;

  constructor(init: CourierApiErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.retryAfterMs = init.retryAfterMs;
    this.outcomeUnknown = init.outcomeUnknown;
    this.idempotencyKey = init.idempotencyKey;
    this.attempts = init.attempts;
    this.issues = init.issues;
  }
}
