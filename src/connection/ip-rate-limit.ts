/**
 * The per-IP upgrade limit (`limits.upgradesPerIpPerSec`): one token bucket per client address
 * (rate-limit.ts's `take`), asked before a token is verified, so a flood of upgrades from one
 * address costs a map lookup each instead of a JWT verification.
 *
 * Memory stays bounded without a timer and without walking the map: buckets live in two
 * generations. Every second the older one is dropped whole and the current one becomes the older;
 * a bucket touched again moves to the current one. A dropped bucket went untouched for at least a
 * second, so it was full again: dropping it is exactly what keeping it would mean. Past
 * `maxAddresses` in the current generation the generations turn early (a flood of distinct
 * addresses may then reset some buckets: bounded memory comes first).
 */
import { take, type Bucket } from "./rate-limit.ts";

/** Options of {@linkcode IpRateLimiter}. */
export interface IpRateLimiterOptions {
  /** Sustained upgrades per second per address; also the burst. */
  perSecond: number;
  /** Addresses tracked per generation at most. @default 100_000 */
  maxAddresses?: number;
}

/** The burst is one second of the rate, so a bucket untouched this long is full again. */
const REFILL_MS = 1000;

/**
 * @example
 * const limiter = new IpRateLimiter({ perSecond: 50 });
 * const waitMs = limiter.take("203.0.113.7", Date.now());
 * if (waitMs > 0) return refuse(429, Math.ceil(waitMs / 1000));
 */
export class IpRateLimiter {
  #current = new Map<string, Bucket>();
  #previous = new Map<string, Bucket>();
  #turnedAt = -Infinity;
  readonly #perSecond: number;
  readonly #maxAddresses: number;

  constructor(options: IpRateLimiterOptions) {
    if (!(options.perSecond > 0)) throw new RangeError("perSecond must be > 0");
    const maxAddresses = options.maxAddresses ?? 100_000;
    if (!(maxAddresses >= 1)) throw new RangeError("maxAddresses must be >= 1");
    this.#perSecond = options.perSecond;
    this.#maxAddresses = maxAddresses;
  }

  /** Addresses tracked now (both generations). */
  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  /** Takes one upgrade for `ip`: 0 when allowed, else the milliseconds until one would be. */
  take(ip: string, now: number): number {
    if (now - this.#turnedAt >= REFILL_MS) this.#turn(now);
    let bucket = this.#current.get(ip);
    if (!bucket) {
      bucket = this.#previous.get(ip);
      if (bucket) this.#previous.delete(ip);
      else bucket = { tokens: this.#perSecond, tokensAt: now };
      if (this.#current.size >= this.#maxAddresses) this.#turn(now);
      this.#current.set(ip, bucket);
    }
    if (take(bucket, now, this.#perSecond, this.#perSecond)) return 0;
    // The epsilon keeps float noise (1.0000000000000009) from adding a millisecond.
    return Math.max(1, Math.ceil(((1 - bucket.tokens) * 1000) / this.#perSecond - 1e-9));
  }

  #turn(now: number): void {
    this.#previous = this.#current;
    this.#current = new Map();
    this.#turnedAt = now;
  }
}
