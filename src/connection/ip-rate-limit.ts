/**
 * The per-IP upgrade limit (`limits.upgradesPerIpPerSec`): one token bucket per client address
 * (rate-limit.ts's `take`), asked before a token is verified, so a flood of upgrades from one
 * address costs a map lookup each instead of a JWT verification.
 *
 * Memory stays bounded without a timer: the map is kept in least-recently-used order (a touched
 * address moves to the end), every call drops the oldest entries whose bucket has refilled (such
 * an entry means exactly what an absent one does), and past `maxAddresses` the oldest goes anyway.
 */
import { take, type Bucket } from "./rate-limit.ts";

/** Options of {@linkcode IpRateLimiter}. */
export interface IpRateLimiterOptions {
  /** Sustained upgrades per second per address; also the burst. */
  perSecond: number;
  /** Addresses tracked at most. @default 100_000 */
  maxAddresses?: number;
}

/** How many idle entries one call may drop: more than it inserts, and constant per call. */
const SWEEP_PER_CALL = 4;
/** The burst is one second of the rate, so a bucket untouched this long is full again. */
const REFILL_MS = 1000;

/**
 * @example
 * const limiter = new IpRateLimiter({ perSecond: 50 });
 * const waitMs = limiter.take("203.0.113.7", Date.now());
 * if (waitMs > 0) return refuse(429, Math.ceil(waitMs / 1000));
 */
export class IpRateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #perSecond: number;
  readonly #maxAddresses: number;

  constructor(options: IpRateLimiterOptions) {
    if (!(options.perSecond > 0)) throw new RangeError("perSecond must be > 0");
    const maxAddresses = options.maxAddresses ?? 100_000;
    if (!(maxAddresses >= 1)) throw new RangeError("maxAddresses must be >= 1");
    this.#perSecond = options.perSecond;
    this.#maxAddresses = maxAddresses;
  }

  /** Addresses tracked now. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one upgrade for `ip`: 0 when allowed, else the milliseconds until one would be. */
  take(ip: string, now: number): number {
    this.#sweep(now);
    let bucket = this.#buckets.get(ip);
    if (bucket) this.#buckets.delete(ip);
    else bucket = { tokens: this.#perSecond, tokensAt: now };
    this.#buckets.set(ip, bucket);
    if (this.#buckets.size > this.#maxAddresses) this.#buckets.delete(this.#buckets.keys().next().value!);
    if (take(bucket, now, this.#perSecond, this.#perSecond)) return 0;
    // The epsilon keeps float noise (1.0000000000000009) from adding a millisecond.
    return Math.max(1, Math.ceil(((1 - bucket.tokens) * 1000) / this.#perSecond - 1e-9));
  }

  #sweep(now: number): void {
    let n = 0;
    for (const [ip, bucket] of this.#buckets) {
      if (n++ >= SWEEP_PER_CALL || now - bucket.tokensAt < REFILL_MS) return;
      this.#buckets.delete(ip);
    }
  }
}
