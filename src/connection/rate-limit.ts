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
  const tokens = refilled(bucket.tokens, bucket.tokensAt, now, perSecond, burst);
  bucket.tokensAt = now;
  bucket.tokens = tokens >= 1 ? tokens - 1 : tokens;
  return tokens >= 1;
}

/**
 * The tokens at `now` of a bucket that held `tokens` at `tokensAt`: for a bucket kept in fields of
 * another object (the connection's ack bucket), which {@linkcode take} cannot be handed.
 */
export function refilled(tokens: number, tokensAt: number, now: number, perSecond: number, burst: number): number {
  return Math.min(burst, tokens + ((now - tokensAt) * perSecond) / 1000);
}

/** Options of {@linkcode KeyedRateLimiter}. */
export interface KeyedRateLimiterOptions {
  /** Sustained takes per second per key. */
  perSecond: number;
  /** Takes allowed at once above the rate. @default perSecond */
  burst?: number;
  /** Keys tracked per generation at most. @default 100_000 */
  maxKeys?: number;
}

/**
 * A token bucket per key (a user, a client address). Memory stays bounded without a timer and
 * without walking the map: buckets live in two generations. Every refill period (the time an
 * untouched bucket takes to be full again: `burst / perSecond` seconds) the older one is dropped
 * whole and the current one becomes the older; a bucket touched again moves to the current one. A
 * dropped bucket went untouched for at least that long, so it was full again: dropping it is
 * exactly what keeping it would mean. Past `maxKeys` in the current generation the generations
 * turn early (a flood of distinct keys may then reset some buckets: bounded memory comes first).
 *
 * @example
 * const limiter = new KeyedRateLimiter({ perSecond: 20, burst: 100 });
 * const waitMs = limiter.take("alice", Date.now());
 * if (waitMs > 0) throw new HttpError(429, "slow down", { retryAfterS: Math.ceil(waitMs / 1000) });
 */
export class KeyedRateLimiter {
  #current = new Map<string, Bucket>();
  #previous = new Map<string, Bucket>();
  #turnedAt = Number.NEGATIVE_INFINITY;
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #maxKeys: number;
  readonly #refillMs: number;

  constructor(options: KeyedRateLimiterOptions) {
    const { perSecond, burst = perSecond, maxKeys = 100_000 } = options;
    if (!(perSecond > 0) || !Number.isFinite(perSecond)) throw new RangeError(`perSecond must be finite and > 0, got ${perSecond}`);
    if (!(burst >= 1) || !Number.isFinite(burst)) throw new RangeError(`burst must be finite and >= 1, got ${burst}`);
    if (!(maxKeys >= 1)) throw new RangeError(`maxKeys must be >= 1, got ${maxKeys}`);
    this.#perSecond = perSecond;
    this.#burst = burst;
    this.#maxKeys = maxKeys;
    this.#refillMs = (burst * 1000) / perSecond;
  }

  /** Keys tracked now (both generations). */
  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  /**
   * Takes one token for `key`: 0 when allowed, else the milliseconds until one would be.
   *
   * @example
   * limiter.take("alice", now) // 0
   */
  take(key: string, now: number): number {
    if (now - this.#turnedAt >= this.#refillMs) this.#turn(now);
    let bucket = this.#current.get(key);
    if (!bucket) {
      bucket = this.#previous.get(key);
      if (bucket) this.#previous.delete(key);
      else bucket = { tokens: this.#burst, tokensAt: now };
      if (this.#current.size >= this.#maxKeys) this.#turn(now);
      this.#current.set(key, bucket);
    }
    if (take(bucket, now, this.#perSecond, this.#burst)) return 0;
    // The epsilon keeps float noise (1.0000000000000009) from adding a millisecond.
    return Math.max(1, Math.ceil(((1 - bucket.tokens) * 1000) / this.#perSecond - 1e-9));
  }

  #turn(now: number): void {
    this.#previous = this.#current;
    this.#current = new Map();
    this.#turnedAt = now;
  }
}
