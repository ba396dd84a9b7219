/**
 * The per-IP upgrade limit (`limits.upgradesPerIpPerSec`): one token bucket per client address,
 * asked before a token is verified, so a flood of upgrades from one address costs a map lookup
 * each instead of a JWT verification. The buckets are rate-limit.ts's `KeyedRateLimiter` (bounded
 * memory without a timer: two generations), with a burst of one second of the rate.
 */
import { KeyedRateLimiter } from "./rate-limit.ts";

/** Options of {@linkcode IpRateLimiter}. */
export interface IpRateLimiterOptions {
  /** Sustained upgrades per second per address; also the burst. */
  perSecond: number;
  /** Addresses tracked per generation at most. @default 100_000 */
  maxAddresses?: number;
}

/**
 * @example
 * const limiter = new IpRateLimiter({ perSecond: 50 });
 * const waitMs = limiter.take("203.0.113.7", Date.now());
 * if (waitMs > 0) return refuse(429, Math.ceil(waitMs / 1000));
 */
export class IpRateLimiter extends KeyedRateLimiter {
  constructor(options: IpRateLimiterOptions) {
    super({ perSecond: options.perSecond, burst: options.perSecond, maxKeys: options.maxAddresses ?? 100_000 });
  }
}
