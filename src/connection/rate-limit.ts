/** A token bucket per connection, kept in `ws.data` (no timers, no allocation per frame). */

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
