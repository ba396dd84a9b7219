/**
 * HS256 user tokens verified synchronously. jose verifies an HMAC through WebCrypto, which Bun
 * completes on its thread pool: about 50 µs of CPU per connection, the largest share of the connect
 * path (bench/PROFILE.md §1.2–1.3, C1). One HMAC here costs about 5 µs.
 *
 * The rules are jose 6.2's for the options tokens.ts gave it (`algorithms: ["HS256"]`,
 * `requiredClaims: ["sub", "exp"]`, `audience`, `issuer`, `clockTolerance`), checked in jose's
 * order so a refusal names the claim jose named; tests/hs256.test.ts holds both to the same verdict.
 * Stricter than jose on purpose, in shapes no conforming signer emits: base64url with padding or
 * whitespace (RFC 7515 §2), any `crit` header (jose accepts `crit: ["b64"]`), `b64: false`.
 */
import { timingSafeEqual } from "node:crypto";
import type { JWTPayload } from "jose";
import { MAX_TOKEN_CHARS, TokenError, tokenExpired } from "./token-rules.ts";

export interface Hs256Options {
  secret: string;
  /** Required `aud`: the claim, or one member of it, must equal it. */
  audience?: string;
  /** Required `iss`, equal. */
  issuer?: string;
  clockToleranceS: number;
}

/** Verifies a token at `nowMs` (ms since epoch) and returns its claims; throws {@linkcode TokenError}. */
export type VerifyHs256 = (token: string, nowMs: number) => JWTPayload;

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const SIGNATURE_BYTES = 32;
/** jose's decoder: invalid UTF-8 is refused, a leading BOM dropped. */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Builds the verifier; the key bytes are prepared once.
 *
 * @example
 * const verify = createHs256Verifier({ secret: "…", clockToleranceS: 5 });
 * const claims = verify(token, Date.now()); // throws TokenError
 */
export function createHs256Verifier(options: Hs256Options): VerifyHs256 {
  const { audience, issuer, clockToleranceS: tolerance } = options;
  if (!Number.isFinite(tolerance) || tolerance < 0) throw new RangeError("clockToleranceS must be a finite number of seconds, at least 0");
  const key = Buffer.from(options.secret);
  // jose's presence order: the first claim missing from this list is the one a refusal names.
  const required = [...(issuer === undefined ? [] : ["iss"]), ...(audience === undefined ? [] : ["aud"]), "exp", "sub"];

  return (token, nowMs) => {
    const [header, payload, signature] = partsOf(token);
    checkHeader(readObject(header));
    const mac = new Bun.CryptoHasher("sha256", key).update(token.slice(0, token.lastIndexOf("."))).digest();
    const given = Buffer.from(signature, "base64url");
    if (given.length !== SIGNATURE_BYTES || !timingSafeEqual(given, mac)) throw unverified();
    const claims = readObject(payload);

    for (const claim of required) if (!Object.hasOwn(claims, claim)) throw badClaim(claim);
    if (issuer !== undefined && claims.iss !== issuer) throw badClaim("iss");
    if (audience !== undefined && !(claims.aud === audience || (Array.isArray(claims.aud) && claims.aud.includes(audience)))) throw badClaim("aud");
    numericDate(claims, "iat");
    const nbf = numericDate(claims, "nbf");
    if (nbf !== undefined && nbf > Math.floor(nowMs / 1000) + tolerance) throw notYetValid();
    // jose's own `exp` rule (exp <= now - tolerance, in whole seconds) refuses a subset of this one.
    if (tokenExpired(numericDate(claims, "exp")!, nowMs, tolerance)) throw new TokenError("expired", "the token has expired");
    return claims as JWTPayload;
  };
}

/** The three base64url parts, each still encoded. */
function partsOf(token: string): [string, string, string] {
  const first = token.indexOf(".");
  const second = token.indexOf(".", first + 1);
  if (token.length > MAX_TOKEN_CHARS || first < 0 || second < 0 || token.includes(".", second + 1)) {
    throw new TokenError("malformed", "the token is not a JWT");
  }
  const parts: [string, string, string] = [token.slice(0, first), token.slice(first + 1, second), token.slice(second + 1)];
  // A length of 4n + 1 encodes no whole byte: jose refuses it, Buffer would drop the last char.
  for (const part of parts) if (part.length % 4 === 1 || !BASE64URL.test(part)) throw unverified();
  return parts;
}

function checkHeader(header: Record<string, unknown>): void {
  if (header.alg !== "HS256" || header.crit !== undefined || header.b64 === false) throw unverified();
}

/** A part's JSON, which must be an object (not an array, not null). */
function readObject(part: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(Buffer.from(part, "base64url")));
  } catch {
    throw unverified();
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw unverified();
  return value as Record<string, unknown>;
}

/**
 * jose's NumericDate rule: any number when present (not only an integer, not only a finite one).
 * jose names `nbf` when its type is wrong too, which has always been answered as "not valid yet".
 */
function numericDate(claims: Record<string, unknown>, claim: "iat" | "nbf" | "exp"): number | undefined {
  const value = claims[claim];
  if (value === undefined) return undefined;
  if (typeof value !== "number") throw claim === "nbf" ? notYetValid() : badClaim(claim);
  return value;
}

function unverified(): TokenError {
  return new TokenError("bad_signature", "the token could not be verified");
}

function notYetValid(): TokenError {
  return new TokenError("not_yet_valid", "the token is not valid yet");
}

function badClaim(claim: string): TokenError {
  return new TokenError("bad_claims", `the token's "${claim}" claim is invalid`);
}
