/**
 * User tokens (PROTOCOL.md §3): HS256 with the configured secret, verified synchronously by
 * hs256.ts, or RS256/ES256 through a cached remote JWKS, verified by `jose`. hs256.ts exists for the
 * CPU of each connection (jose's HMAC costs ten times as much, bench/PROFILE.md §1.2) and keeps
 * jose's rules, differential-tested against jose (tests/hs256.test.ts). Both take an explicit
 * algorithm list, so `alg: none` and algorithm confusion are refused.
 */
import { SignJWT, createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from "jose";
import { createHs256Verifier } from "./hs256.ts";
import { MAX_TOKEN_CHARS, TokenError, tokenExpired } from "./token-rules.ts";
import { isTier, TIERS, type Tier } from "../protocol/codes.ts";
import { isUserId, USER_ID_RULE } from "../protocol/user-id.ts";

export { MAX_TOKEN_CHARS, TokenError, tokenExpired };

export interface Principal {
  user: string;
  tier: Tier;
  /** Extra channels the token lets the user join. */
  channels: ReadonlySet<string>;
  /** Expiry, seconds since epoch. */
  exp: number;
  /** Whether the token named a tier itself (otherwise a tier provider may supply one). */
  tierFromToken: boolean;
}

export interface TokenVerifierOptions {
  jwtSecret?: string;
  jwksUrl?: string;
  audience?: string;
  issuer?: string;
  clockToleranceS: number;
  /** Wraps the JWKS fetch (a circuit breaker); defaults to calling it directly. */
  guardJwks?: <T>(fetch: () => Promise<T>) => Promise<T>;
  /** The clock, ms since epoch (the sweep's clock: both apply {@linkcode tokenExpired}). @default Date.now */
  now?: () => number;
}


export type VerifyToken = (token: string | null | undefined) => Promise<Principal>;

/** The verifier, and with a JWKS URL its readiness check. */
export interface TokenVerifier extends VerifyToken {
  /**
   * Present with `jwksUrl`: resolves while tokens signed by the key set can be verified (the cached
   * keys are fresh, or a reload through the breaker succeeds), rejects otherwise. Cheap while the
   * cache is fresh: the identity provider is asked at most once per cache age when healthy.
   */
  checkKeys?: () => Promise<void>;
}

/**
 * Builds the token verifier.
 *
 * @example
 * const verify = createTokenVerifier({ jwtSecret: "…", clockToleranceS: 5 });
 * const principal = await verify(token); // throws TokenError
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const { audience, issuer, clockToleranceS: tolerance } = options;
  const hs256 = options.jwtSecret ? createHs256Verifier({ secret: options.jwtSecret, audience, issuer, clockToleranceS: tolerance }) : null;
  const jwks = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl), { cooldownDuration: 30_000, timeoutDuration: 2_000 }) : null;
  const guard = options.guardJwks ?? ((fetch) => fetch());
  const now = options.now ?? Date.now;
  const common = { audience, issuer, clockTolerance: tolerance, requiredClaims: ["sub", "exp"], algorithms: ["RS256", "ES256"] };

  const viaJwks =
    jwks &&
    (async (token: string, at: number): Promise<JWTPayload> => {
      let payload: JWTPayload;
      try {
        // jose checks `nbf` and `exp` on the same clock; its `exp` check is the same rule as tokenExpired.
        payload = (await guard(() => jwtVerify(token, jwks, { ...common, currentDate: new Date(at) }))).payload;
      } catch (error) {
        throw toTokenError(error);
      }
      // Whatever jose's own rounding, the rule that lets a token in is the one the sweep closes by.
      if (tokenExpired(payload.exp!, at, tolerance)) throw new TokenError("expired", "the token has expired");
      return payload;
    });

  const verify: TokenVerifier = async (token) => {
    if (!token) throw new TokenError("missing", "a token is required");
    if (token.length > MAX_TOKEN_CHARS || token.split(".").length !== 3) throw new TokenError("malformed", "the token is not a JWT");
    const at = now();
    // No await on this path: an HS256 verdict is reached before the function returns.
    if (hs256 && (!viaJwks || headerAlg(token) === "HS256")) return principalOf(hs256(token, at));
    if (viaJwks) return principalOf(await viaJwks(token, at));
    throw new TokenError("unavailable", "no token verification is configured");
  };
  if (jwks) {
    verify.checkKeys = async () => {
      if (!jwks.fresh) await guard(() => jwks.reload());
    };
  }
  return verify;
}

function headerAlg(token: string): string | undefined {
  try {
    return (JSON.parse(Buffer.from(token.slice(0, token.indexOf(".")), "base64url").toString()) as { alg?: string }).alg;
  } catch {
    return undefined;
  }
}

function toTokenError(error: unknown): TokenError {
  if (error instanceof TokenError) return error;
  if (error instanceof errors.JWTExpired) return new TokenError("expired", "the token has expired");
  if (error instanceof errors.JWTClaimValidationFailed) {
    return error.claim === "nbf"
      ? new TokenError("not_yet_valid", "the token is not valid yet")
      : new TokenError("bad_claims", `the token's "${error.claim}" claim is invalid`);
  }
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) return new TokenError("unavailable", "the key set could not be fetched");
  if (error instanceof Error && error.name === "BreakerOpenError") return new TokenError("unavailable", "the key set is unavailable");
  if (error instanceof errors.JOSEError) return new TokenError("bad_signature", "the token could not be verified");
  return new TokenError("malformed", "the token could not be read");
}

/** Most tokens carry no `channels` claim: they share one empty set instead of one per connection. */
const NO_CHANNELS: ReadonlySet<string> = new Set<string>();

function principalOf(payload: JWTPayload): Principal {
  const sub = payload.sub;
  if (!isUserId(sub)) {
    throw new TokenError("bad_claims", `the token's "sub" claim must be ${USER_ID_RULE}`);
  }
  const rawTier = payload.tier;
  if (rawTier !== undefined && !isTier(rawTier)) {
    throw new TokenError("bad_claims", `the token's "tier" claim must be one of ${TIERS.join(", ")}`);
  }
  const rawChannels = payload.channels;
  if (rawChannels !== undefined && (!Array.isArray(rawChannels) || rawChannels.length > 100 || !rawChannels.every((c) => typeof c === "string"))) {
    throw new TokenError("bad_claims", 'the token\'s "channels" claim must be an array of at most 100 channel names');
  }
  return {
    user: sub,
    tier: (rawTier as Tier | undefined) ?? "starter",
    tierFromToken: rawTier !== undefined,
    channels: rawChannels === undefined || (rawChannels as string[]).length === 0 ? NO_CHANNELS : new Set(rawChannels as string[]),
    exp: payload.exp!,
  };
}

/**
 * Signs an HS256 user token (development tokens, tests, `bun run token`).
 *
 * @example
 * const token = await signToken("secret…", { sub: "alice", tier: "pro" }, 3600);
 */
export async function signToken(
  secret: string,
  claims: { sub: string; tier?: Tier; channels?: string[]; [claim: string]: unknown },
  ttlS: number,
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlS)
    .sign(new TextEncoder().encode(secret));
}
