/** JSON answers and errors exactly as PROTOCOL.md §2 says: `{"error","message"}`, never a stack. */
import { ErrorCode } from "../protocol/codes.ts";

// Every JSON answer: never sniffed as HTML by a browser, never cached (answers can be per-user).
const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" };

export function json(body: unknown, status = 200, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify(body), { status, headers: headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS });
}

/** A JSON body that is already text (history pages built from stored frames). */
export function rawJson(text: string, status = 200): Response {
  return new Response(text, { status, headers: JSON_HEADERS });
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: ErrorCode.BadRequest,
  401: ErrorCode.Unauthorized,
  403: ErrorCode.Forbidden,
  404: ErrorCode.NotFound,
  405: ErrorCode.BadRequest,
  413: ErrorCode.LimitExceeded,
  429: ErrorCode.RateLimited,
  500: ErrorCode.Internal,
  503: ErrorCode.Unavailable,
  504: ErrorCode.Timeout,
};

/** Statuses that must carry `Retry-After`. */
const RETRY_STATUSES = new Set([429, 503]);

export interface ErrorOptions {
  retryAfterS?: number;
  /** Extra fields, e.g. the validation `issues` of a 400. */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/**
 * An error answer.
 *
 * @example
 * httpError(400, "event is required", { extra: { issues } })
 */
export function httpError(status: number, message: string, options: ErrorOptions = {}): Response {
  const headers: Record<string, string> = { ...options.headers };
  if (RETRY_STATUSES.has(status)) headers["retry-after"] = String(options.retryAfterS ?? 1);
  return json({ error: CODE_BY_STATUS[status] ?? ErrorCode.Internal, message, ...options.extra }, status, headers);
}

/** Thrown inside route handlers; turned into `httpError` at the edge. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    readonly options: ErrorOptions = {},
  ) {
    super(message);
  }
}
