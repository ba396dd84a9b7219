/**
 * What both token verifiers share (tokens.ts for jose's JWKS path, hs256.ts for HS256): the
 * refusal type, the one expiry rule and the length cap. A file of its own so the two do not import
 * each other.
 */

/** Why a token was refused; `reason` is safe to log and to answer with (it never holds the token). */
export class TokenError extends Error {
  override name = "TokenError";
  constructor(
    readonly reason: "missing" | "malformed" | "expired" | "not_yet_valid" | "bad_signature" | "bad_claims" | "unavailable",
    message: string,
  ) {
    super(message);
  }
}

/**
 * The one expiry rule, applied by the upgrade (through the verifier) and by the connection sweep
 * (4401): a token is expired from `exp + clockToleranceS`. One rule, so a token accepted at the
 * upgrade is never closed as expired a moment later.
 *
 * @example
 * tokenExpired(1_000, 1_003_000, 5) // false: 3 s past exp, within the tolerance
 * tokenExpired(1_000, 1_005_000, 5) // true
 */
export function tokenExpired(expS: number, nowMs: number, clockToleranceS: number): boolean {
  return nowMs >= (expS + clockToleranceS) * 1000;
}

/** Longer tokens are refused before anything is decoded. */
export const MAX_TOKEN_CHARS = 8192;
