/**
 * The reconnect schedule: fixed first steps (100 ms, 500 ms, 1 s), then doubling to a cap, with
 * ±jitter so that a restarted server is not hit by every client in the same millisecond.
 */

/** Reconnect schedule options; every field has a default. */
export interface BackoffOptions {
  /** The first delays, in order. Default `[100, 500, 1000]`. */
  stepsMs?: readonly number[];
  /** Upper bound before jitter. Default `5000`. */
  maxDelayMs?: number;
  /** Relative jitter: `0.05` spreads each delay over ±5 %. Default `0.05`. */
  jitter?: number;
}

/** Backoff options with defaults applied and checked. */
export type ResolvedBackoff = Required<BackoffOptions>;

/**
 * Applies defaults and validates, throwing `RangeError` on nonsense.
 *
 * @example
 * resolveBackoff({ maxDelayMs: 10_000 }); // { stepsMs: [100, 500, 1000], maxDelayMs: 10000, jitter: 0.05 }
 */
export function resolveBackoff(options: BackoffOptions = {}): ResolvedBackoff {
  const { stepsMs = [100, 500, 1000], maxDelayMs = 5000, jitter = 0.05 } = options;
  if (stepsMs.length === 0 || stepsMs.some((ms) => !(ms >= 0) || !Number.isFinite(ms))) {
    throw new RangeError("backoff.stepsMs must be a non-empty list of finite delays >= 0");
  }
  if (!(maxDelayMs > 0) || !Number.isFinite(maxDelayMs)) throw new RangeError("backoff.maxDelayMs must be > 0");
  if (!(jitter >= 0 && jitter < 1)) throw new RangeError("backoff.jitter must be in [0, 1)");
  return { stepsMs, maxDelayMs, jitter };
}

/**
 * The delay before reconnect attempt `attempt` (0-based), jittered by `random()` in [0, 1]:
 * 0 gives −jitter, 0.5 the exact delay, 1 gives +jitter.
 *
 * @example
 * const b = resolveBackoff();
 * [0, 1, 2, 3, 4, 5].map((i) => backoffDelay(i, b, () => 0.5)); // [100, 500, 1000, 2000, 4000, 5000]
 */
export function backoffDelay(attempt: number, backoff: ResolvedBackoff, random: () => number = Math.random): number {
  const { stepsMs, maxDelayMs, jitter } = backoff;
  const last = stepsMs.length - 1;
  const base = attempt <= last ? stepsMs[attempt]! : stepsMs[last]! * 2 ** Math.min(attempt - last, 52);
  const capped = Math.min(base, maxDelayMs);
  return Math.round(capped * (1 + jitter * (2 * random() - 1)));
}
