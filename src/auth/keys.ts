/** API and admin keys: compared in constant time, read only from `Authorization: Bearer`. */
import { timingSafeEqual } from "node:crypto";

/** The bearer credential of a request, or null. */
export function bearer(req: Request): string | null {
  const header = req.headers.get("authorization");
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}

/** One-shot: ~0.14 µs against ~0.38 for `createHash().update().digest()`, which builds a hasher object per call. */
const digest = (key: string) => Bun.CryptoHasher.hash("sha256", key);

/** Digests of the configured keys (one or two per process), so a request hashes only its own. */
const expectedDigests = new Map<string, Uint8Array>();

/**
 * Constant-time key comparison. Hashing both sides first makes the comparison length-independent.
 *
 * @example
 * keyMatches(bearer(req), config.auth.apiKey) // boolean
 */
export function keyMatches(given: string | null, expected: string | undefined): boolean {
  if (!given || !expected) return false;
  let b = expectedDigests.get(expected);
  if (!b) {
    if (expectedDigests.size > 16) expectedDigests.clear();
    expectedDigests.set(expected, (b = digest(expected)));
  }
  return timingSafeEqual(digest(given), b);
}
