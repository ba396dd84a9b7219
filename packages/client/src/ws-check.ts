/**
 * Why a connection was refused, as far as a browser can learn it: a refused WebSocket shows only
 * 1006, so after an attempt that got no `welcome` the client asks `GET /v1/ws/check` (PROTOCOL.md
 * §2 v1.1), which answers the refusal an upgrade with this token would get now.
 */
import { parseRetryAfter } from "./history.ts";
import { RefusalReason } from "./protocol/codes.ts";
import type { FetchLike } from "./types.ts";

/** A refusal the check reported. */
export interface Refusal {
  /** HTTP status: 401, 403, 429 or 503. */
  status: number;
  reason: RefusalReason;
  /** The server's `Retry-After`, in ms. */
  retryAfterMs?: number;
}

/** Inputs of {@linkcode checkConnection}. */
export interface CheckRequest {
  fetch: FetchLike;
  httpBase: string;
  token: string;
  nowMs: number;
}

/** The reason of a status, for a server that sends none in the body. */
const BY_STATUS: Record<number, RefusalReason> = {
  401: RefusalReason.Unauthorized,
  403: RefusalReason.ForbiddenOrigin,
  429: RefusalReason.TooManyConnections,
  503: RefusalReason.Unavailable,
};
const REASONS = new Set<string>(Object.values(RefusalReason));

/**
 * Asks the server whether this token could connect now, with the token in `Authorization` (never
 * in the URL). `null` when it could, or when the answer says nothing usable (network down, an
 * older server without the route).
 *
 * @example
 * const refusal = await checkConnection({ fetch, httpBase: "https://rt.example.com", token, nowMs: Date.now() });
 * if (refusal?.reason === "token_expired") refreshToken();
 */
export async function checkConnection(req: CheckRequest): Promise<Refusal | null> {
  let response;
  try {
    response = await req.fetch(`${req.httpBase}/v1/ws/check`, { headers: { Authorization: `Bearer ${req.token}` } });
  } catch {
    return null;
  }
  const fallback = BY_STATUS[response.status];
  if (response.ok || fallback === undefined) return null;
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const named = (body as { reason?: unknown } | null)?.reason;
  const refusal: Refusal = { status: response.status, reason: typeof named === "string" && REASONS.has(named) ? (named as RefusalReason) : fallback };
  const retryAfterMs = parseRetryAfter(response.headers.get("Retry-After"), req.nowMs);
  if (retryAfterMs !== undefined) refusal.retryAfterMs = retryAfterMs;
  return refusal;
}

/**
 * Whether retrying can succeed without anyone acting: a 429 or 503 passes; a foreign origin never
 * does; a bad or expired token only when a token provider can be asked for another.
 *
 * @example
 * if (!refusalHeals(refusal, typeof options.token === "function")) stop(refusal.reason);
 */
export function refusalHeals(refusal: Refusal, hasTokenProvider: boolean): boolean {
  if (refusal.status === 429 || refusal.status === 503) return true;
  if (refusal.status === 401) return hasTokenProvider;
  return false;
}
