/**
 * The one error mapper (hono's single `onError`): handlers throw typed errors, and this file alone
 * decides what the caller sees. HTTP gets `toErrorResponse`; the WebSocket handler's error frames
 * get `toErrorFrame`, which maps the same errors the same way.
 */
import { OUTCOME_UNKNOWN_MESSAGE, StoreUnavailableError } from "../engine/types.ts";
import { StreamConflictError } from "../delivery/stream-service.ts";
import { ErrorCode } from "../protocol/codes.ts";
import { errorFrame, type RequestId } from "../protocol/frames.ts";
import { RpcError } from "../protocol/rpc-error.ts";
import { retryAfterS, type CircuitBreaker } from "../resilience/index.ts";
import type { Logger } from "../telemetry/index.ts";
import { AdmissionRefused } from "./admission.ts";
import { HttpError, httpError } from "./http.ts";
import { EventTooLargeError } from "./publisher.ts";

/** What the mappers need: where unknown errors are logged, and the `Retry-After` of a 503. */
export interface ErrorMapping {
  log: Logger;
  /**
   * Read for each store outage answered: {@linkcode errorMapping} makes it a getter on the store
   * breaker, so a 503 never advertises less than the breaker's remaining cooldown.
   */
  readonly retryAfterS: number;
}

/**
 * The mapping `app.ts` uses: a store outage's `Retry-After` is read from the store breaker when the
 * answer is made ({@linkcode retryAfterS}), so it is never shorter than the breaker's cooldown.
 *
 * @example
 * const errors = errorMapping(log, storeBreaker, config.server.retryAfterS);
 */
export function errorMapping(log: Logger, storeBreaker: Pick<CircuitBreaker, "state">, fallbackS: number): ErrorMapping {
  return {
    log,
    get retryAfterS() {
      return retryAfterS(storeBreaker.state, fallbackS);
    },
  };
}

/** Name and message only: a stack or a path never reaches a log line or a body. */
function describe(error: unknown): { name: string; message: string } | string {
  return error instanceof Error ? { name: error.name, message: error.message } : String(error);
}

/**
 * The answer to an error thrown by a route: an `HttpError` as it says, a store outage 503 with
 * `Retry-After`, anything else 500 `internal` (logged, never described in the body).
 *
 * @example
 * const app = Bun.serve({ fetch, error: (error) => toErrorResponse(error, { log, retryAfterS: 2 }) });
 */
export function toErrorResponse(error: unknown, mapping: ErrorMapping): Response {
  if (error instanceof HttpError) return httpError(error.status, error.message, error.options);
  if (error instanceof AdmissionRefused) return httpError(error.status, error.message, { retryAfterS: error.retryAfterS ?? mapping.retryAfterS, extra: { reason: error.reason } });
  if (error instanceof EventTooLargeError) {
    const { index, bytes, limit, batch } = error;
    return httpError(413, `${batch ? `item ${index}: ` : ""}${error.message}`, { extra: batch ? { index, bytes, limit } : { bytes, limit } });
  }
  if (error instanceof StoreUnavailableError) return httpError(503, error.outcomeUnknown ? OUTCOME_UNKNOWN_MESSAGE : "the store is unavailable", { retryAfterS: mapping.retryAfterS });
  if (error instanceof StreamConflictError) return httpError(409, error.message, { extra: { stream: error.stream, reason: error.reason } });
  mapping.log.error("request failed", { error: describe(error) });
  return httpError(500, "internal error");
}

/** Where a frame's error is answered and logged. */
export interface FrameErrorOptions {
  /** The request id of the frame being answered. */
  id: RequestId | undefined;
  /** What the client reads for an outage, and for anything unexpected (the error's own text stays here). */
  unavailable: string;
  internal: string;
  /** Logged as `<what> failed` when the error is unexpected. */
  what: string;
  fields?: Record<string, unknown>;
  log: Logger;
}

/**
 * The error frame for an error thrown while answering a frame: an `RpcError` as it says, a store
 * outage `unavailable`, anything else `internal` (logged, never described to the client).
 *
 * @example
 * send(ws, toErrorFrame(error, { id, unavailable: "history is unavailable, retry", internal: "could not subscribe", what: "join", log }).frame);
 */
export function toErrorFrame(error: unknown, options: FrameErrorOptions): { code: ErrorCode; frame: string } {
  const { id } = options;
  if (error instanceof RpcError) return { code: error.code, frame: errorFrame(error.code, error.message, id) };
  if (error instanceof StoreUnavailableError) return { code: ErrorCode.Unavailable, frame: errorFrame(ErrorCode.Unavailable, options.unavailable, id) };
  options.log.error(`${options.what} failed`, { ...options.fields, error: describe(error) });
  return { code: ErrorCode.Internal, frame: errorFrame(ErrorCode.Internal, options.internal, id) };
}
