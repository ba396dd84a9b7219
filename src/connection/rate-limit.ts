/**
 * Token buckets: one per connection kept in `ws.data` (no timers, no allocation per frame), and
 * {@linkcode KeyedRateLimiter}, one bucket per key (a user) in a map of bounded size.
 */

export interface Bucket {
  tokens: number;
  tokensAt: number;
}

/**
 * Takes one token; false when the bucket is empty.
 *
 * @example
 * if (!take(ws.data, now, 50, 100)) reject();
 */
export function take(bucket: Bucket, now: number, perSecond: number, burst: number): boolean {
  const refill = ((now - bucket.tokensAt) * perSecond) / 1000;
  bucket.tokens = Math.min(burst, bucket.tokens + refill);
  bucket.tokensAt = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

/** Options of {@linkcode KeyedRateLimiter}. */
export interface KeyedRateLimiterOptions {
  /** Sustained takes per second per key. */
  perSecond: number;
  /** Takes allowed at once above the rate. @default perSecond */
  burst?: number;
  /** Keys tracked at most; past it the least recently used goes (it starts full again). @default 100_000 */
  maxKeys?: number;
}

/** Idle entries one call may drop: more than it inserts, and constant per call. */
const SWEEP_PER_CALL = 4;

/**
 * A token bucket per key. Memory stays bounded without a timer: the map is kept in
 * least-recently-used order (a touched key moves to the end), every call drops the oldest entries
 * whose bucket has refilled (such an entry means exactly what an absent one does), and past
 * `maxKeys` the oldest goes anyway.
 *
 * @example
 * const limiter = new KeyedRateLimiter({ perSecond: 5, burst: 20 });
 * const waitMs = limiter.take("alice", Date.now());
 * if (waitMs > 0) throw new HttpError(429, "slow down", { retryAfterS: Math.ceil(waitMs / 1000) });
 */
export class KeyedRateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #maxKeys: number;
  /** A bucket untouched this long is full again. */
  readonly #refillMs: number;

  constructor(options: KeyedRateLimiterOptions) {
    const { perSecond, burst = perSecond, maxKeys = 100_000 } = options;
    if (!(perSecond > 0) || !Number.isFinite(perSecond)) throw new RangeError(`Cannot create rate limiter: perSecond must be finite and > 0, got ${perSecond}`);
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError(`Cannot create rate limiter: burst must be finite and >= 1, got ${burst}`);
    if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new RangeError(`Cannot create rate limiter: maxKeys must be an integer >= 1, got ${maxKeys}`);
    this.#perSecond = perSecond;
    this.#burst = burst;
    this.#maxKeys = maxKeys;
    this.#refillMs = (burst * 1000) / perSecond;
  }

  /** Keys tracked now. */
  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Takes one token for `key`: 0 when allowed, else the milliseconds until one would be.
   *
   * @example
   * limiter.take("alice", now) // 0
   */
  take(key: string, now: number): number {
    this.#sweep(now);
    let bucket = this.#buckets.get(key);
    if (bucket) this.#buckets.delete(key);
    else bucket = { tokens: this.#burst, tokensAt: now };
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
    if (take(bucket, now, this.#perSecond, this.#burst)) return 0;
    return Math.ceil(((1 - bucket.tokens) * 1000) / this.#perSecond);
  }

  #sweep(now: number): void {
    let n = 0;
    for (const [key, bucket] of this.#buckets) {
      if (n++ >= SWEEP_PER_CALL || now - bucket.tokensAt < this.#refillMs) return;
      this.#buckets.delete(key);
    }
  }
}
