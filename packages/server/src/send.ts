/**
 * One HTTP call to Courier with retries: 429/502/503/504, network errors and per-attempt
 * timeouts are retried, honouring `Retry-After`, until the call's deadline; the same
 * idempotency key travels on every attempt, so a retried publish is stored once.
 */
import { CourierApiError } from "./errors.js";

/** The slice of `fetch` the client uses (injectable for tests). */
export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body?: string; signal: AbortSignal }) => Promise<Response>;

/** Time, injectable so the retry schedule is tested with a fake clock. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface SendOptions {
  fetch: FetchLike;
  clock: Clock;
  /** The whole call's budget, retries included. */
  deadlineMs: number;
  /** One attempt's budget (capped by what is left of the deadline). */
  attemptTimeoutMs: number;
  /** First backoff when the server names no `Retry-After`; doubled per attempt up to `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs: number;
  signal?: AbortSignal;
}

export interface SendRequest {
  method: "GET" | "POST";
  url: string;
  headers: Record<string, string>;
  body?: unknown;
  idempotencyKey?: string;
}

const RETRY_STATUSES = new Set([429, 502, 503, 504]);
/** Statuses after which a mutating call may or may not have happened. */
const UNKNOWN_STATUSES = new Set([502, 504]);

/**
 * Sends `request` until it succeeds, fails for good, or its deadline leaves no room for the next
 * attempt; rejects with {@linkcode CourierApiError}.
 *
 * @example
 * const answer = await send({ method: "POST", url, headers, body, idempotencyKey: crypto.randomUUID() }, options);
 */
export async function send<T>(request: SendRequest, options: SendOptions): Promise<T> {
  const { clock } = options;
  const deadline = clock.now() + options.deadlineMs;
  const headers = { ...request.headers };
  if (request.idempotencyKey !== undefined) headers["idempotency-key"] = request.idempotencyKey;
  const body = request.body === undefined ? undefined : JSON.stringify(request.body);
  if (body !== undefined) headers["content-type"] = "application/json";
  const mutating = request.method !== "GET";
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    const timeoutMs = Math.max(1, Math.min(options.attemptTimeoutMs, deadline - clock.now()));
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let error: CourierApiError;
    try {
      const response = await options.fetch(request.url, { method: request.method, headers, body, signal });
      if (response.ok) return (await response.json()) as T;
      error = await errorOf(response, { attempt, mutating, idempotencyKey: request.idempotencyKey, now: clock.now() });
    } catch (thrown) {
      if (options.signal?.aborted) throw options.signal.reason;
      const timedOut = timeout.aborted || (thrown as Error)?.name === "TimeoutError";
      error = new CourierApiError({
        status: 0,
        code: timedOut ? "timeout" : "network",
        message: timedOut ? `no answer within ${timeoutMs} ms` : `request failed: ${(thrown as Error)?.message ?? String(thrown)}`,
        outcomeUnknown: mutating,
        idempotencyKey: request.idempotencyKey,
        attempts: attempt,
        cause: thrown,
      });
    }
    if (error.status !== 0 && !RETRY_STATUSES.has(error.status)) throw error;
    const delayMs = error.retryAfterMs ?? Math.min(options.maxBackoffMs, options.backoffMs * 2 ** (attempt - 1));
    // Waiting past the deadline only to be cut short helps nobody: give the caller the error now.
    if (clock.now() + delayMs >= deadline) throw error;
    await untilAborted(clock.sleep(delayMs), options.signal);
  }
}

/** `sleep`, cut short by the caller's abort. */
function untilAborted(sleep: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return sleep;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    sleep.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

async function errorOf(response: Response, at: { attempt: number; mutating: boolean; idempotencyKey?: string; now: number }): Promise<CourierApiError> {
  // Not Courier's JSON (a proxy's page): the status says enough.
  const body = (await response.json().catch(() => null)) as { error?: unknown; message?: unknown; issues?: unknown } | null;
  const fromCourier = typeof body?.error === "string";
  return new CourierApiError({
    status: response.status,
    code: fromCourier ? (body!.error as string) : codeOf(response.status),
    message: typeof body?.message === "string" ? body.message : `HTTP ${response.status}`,
    retryAfterMs: retryAfterMs(response.headers.get("retry-after"), at.now),
    // Courier's own 503 means nothing was stored (PROTOCOL §5); a proxy's 502/503/504 means nothing.
    outcomeUnknown: at.mutating && (UNKNOWN_STATUSES.has(response.status) || (response.status === 503 && !fromCourier)),
    idempotencyKey: at.idempotencyKey,
    attempts: at.attempt,
    issues: Array.isArray(body?.issues) ? (body!.issues as { path: string; message: string }[]) : undefined,
  });
}

function codeOf(status: number): string {
  if (status === 429) return "rate_limited";
  if (status === 504) return "timeout";
  if (status >= 500) return "unavailable";
  return "bad_request";
}

/** `Retry-After` as seconds (Courier) or an HTTP date, in ms. */
function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
