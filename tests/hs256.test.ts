/**
 * The synchronous HS256 verifier (src/auth/hs256.ts) against jose, which verified these tokens
 * before it: for every token of a table built by hand (any header can be crafted, then signed with
 * node:crypto) and under three option sets, `createTokenVerifier` gives the verdict the jose path
 * gave, down to the refusal reason and message, and accepted tokens decode to jose's claims. A few
 * shapes no conforming signer emits are refused on purpose where jose accepts them: asserted apart.
 */
import { describe, expect, test } from "bun:test";
import { errors, jwtVerify, type JWTPayload } from "jose";
import { createHmac } from "node:crypto";
import { createHs256Verifier } from "../src/auth/hs256.ts";
import { createTokenVerifier, MAX_TOKEN_CHARS, TokenError, tokenExpired } from "../src/auth/tokens.ts";
import { isUserId, USER_ID_RULE } from "../src/protocol/user-id.ts";

const SECRET = "hs256-differential-secret-0123456789";
/** A quarter second past a whole second: jose rounds `now` down, tokenExpired works in ms. */
const NOW_MS = 1_700_000_000_250;
const NOW_S = Math.floor(NOW_MS / 1000);

interface Options {
  audience?: string;
  issuer?: string;
  clockToleranceS: number;
}
const OPTION_SETS: Record<string, Options> = {
  plain: { clockToleranceS: 5 },
  strict: { audience: "courier", issuer: "https://auth.example", clockToleranceS: 5 },
  exact: { clockToleranceS: 0 },
};

type Verdict = { user: string; exp: number } | { reason: TokenError["reason"]; message: string };

/** The verdict of the code this replaced: jose, its error mapping, the one expiry rule, then the `sub` grammar. */
async function viaJose(token: string, options: Options): Promise<Verdict> {
  if (!token) return { reason: "missing", message: "a token is required" };
  if (token.length > 8192 || token.split(".").length !== 3) return { reason: "malformed", message: "the token is not a JWT" };
  let payload: JWTPayload;
  try {
    payload = (await jwtVerify(token, new TextEncoder().encode(SECRET), joseOptions(options))).payload;
  } catch (error) {
    return oldMapping(error);
  }
  if (tokenExpired(payload.exp!, NOW_MS, options.clockToleranceS)) return { reason: "expired", message: "the token has expired" };
  if (!isUserId(payload.sub)) return { reason: "bad_claims", message: `the token's "sub" claim must be ${USER_ID_RULE}` };
  return { user: payload.sub, exp: payload.exp! };
}

function joseOptions(options: Options) {
  const { audience, issuer, clockToleranceS } = options;
  return { audience, issuer, clockTolerance: clockToleranceS, requiredClaims: ["sub", "exp"], algorithms: ["HS256"], currentDate: new Date(NOW_MS) };
}

function oldMapping(error: unknown): Verdict {
  if (error instanceof errors.JWTExpired) return { reason: "expired", message: "the token has expired" };
  if (error instanceof errors.JWTClaimValidationFailed) {
    return error.claim === "nbf"
      ? { reason: "not_yet_valid", message: "the token is not valid yet" }
      : { reason: "bad_claims", message: `the token's "${error.claim}" claim is invalid` };
  }
  if (error instanceof errors.JOSEError) return { reason: "bad_signature", message: "the token could not be verified" };
  return { reason: "malformed", message: "the token could not be read" };
}

async function viaCourier(token: string, options: Options): Promise<Verdict> {
  const verify = createTokenVerifier({ jwtSecret: SECRET, ...options, now: () => NOW_MS });
  try {
    const principal = await verify(token);
    return { user: principal.user, exp: principal.exp };
  } catch (error) {
    if (!(error instanceof TokenError)) throw error;
    return { reason: error.reason, message: error.message };
  }
}

const b64 = (bytes: string | Uint8Array) => Buffer.from(bytes).toString("base64url");
/** A header or payload part: a string is taken as JSON text as it stands, anything else is stringified. */
const part = (value: unknown) => b64(typeof value === "string" ? value : JSON.stringify(value));
const mac = (input: string, secret = SECRET, hash = "sha256") => createHmac(hash, secret).update(input).digest();
/** `input` (header.payload, already encoded) with its HMAC-SHA256 signature. */
const signInput = (input: string) => `${input}.${b64(mac(input))}`;
const sign = (header: unknown, payload: unknown) => signInput(`${part(header)}.${part(payload)}`);
/** The token with its signature replaced by `change(signature bytes)`. */
function resign(token: string, change: (signature: Buffer) => Uint8Array): string {
  const cut = token.lastIndexOf(".");
  return `${token.slice(0, cut)}.${b64(change(Buffer.from(token.slice(cut + 1), "base64url")))}`;
}
function flipBit(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy[7]! ^= 0x10;
  return copy;
}

const HS = { alg: "HS256", typ: "JWT" };
/** Valid under every option set. */
const VALID = { sub: "alice", exp: NOW_S + 600, aud: "courier", iss: "https://auth.example" };
const claims = (extra: Record<string, unknown>) => sign(HS, { ...VALID, ...extra });
const valid = sign(HS, VALID);
const [validHeader, validPayload, validSignature] = valid.split(".") as [string, string, string];

/** A valid token of exactly `length` characters (a filler claim; the header varies when base64url cannot land on it). */
function validOfLength(length: number): string {
  for (const header of [HS, { alg: "HS256" }, { alg: "HS256", typ: "jwt" }]) {
    for (let n = 0; n < length; n++) {
      const token = sign(header, { ...VALID, pad: "x".repeat(n) });
      if (token.length === length) return token;
      if (token.length > length) break;
    }
  }
  throw new Error(`no token of ${length} characters`);
}

/** The payload's base64url text with an alphabet character swapped, signed again so only the encoding is wrong. */
function payloadWith(from: string, to: string): string {
  for (const x of ["~~~???", " ~~~???", "  ~~~???"]) {
    const payload = part({ ...VALID, x });
    if (payload.includes(from)) return signInput(`${validHeader}.${payload.replaceAll(from, to)}`);
  }
  throw new Error(`no "${from}" to swap`);
}

/** A valid payload part whose length is a multiple of 4 (no partial last group). */
function payloadOf4nChars(): string {
  for (let n = 0; ; n++) {
    const payload = part({ ...VALID, pad: "x".repeat(n) });
    if (payload.length % 4 === 0) return payload;
  }
}

const BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** The same 32 signature bytes spelled differently: the last character's two unused bits set. */
function nonCanonicalSignature(token: string): string {
  const last = BASE64URL_ALPHABET.indexOf(token.at(-1)!);
  return `${token.slice(0, -1)}${BASE64URL_ALPHABET[last ^ 1]}`;
}

const CASES: [string, string][] = [
  // Shape and encoding.
  ["valid", valid],
  ["valid, minimal header", sign({ alg: "HS256" }, VALID)],
  ["valid, header with kid and unknown members", sign({ ...HS, kid: "k1", x5u: 1, extra: { a: [1] } }, VALID)],
  ["duplicate alg, HS256 last", sign('{"alg":"none","alg":"HS256"}', VALID)],
  ["duplicate alg, none last", sign('{"alg":"HS256","alg":"none"}', VALID)],
  ["unicode in the payload", claims({ name: "Zoë 日本語 🎉", emoji: "\u{1F600}" })],
  ["payload JSON with a leading BOM", signInput(`${validHeader}.${b64(`\uFEFF${JSON.stringify(VALID)}`)}`)],
  ["payload JSON with surrounding whitespace", sign(HS, `\n ${JSON.stringify(VALID)} \t`)],
  ["payload of invalid UTF-8", signInput(`${validHeader}.${b64(Buffer.concat([Buffer.from(`{"sub":"alice","exp":${NOW_S + 600},"n":"`), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]))}`)],
  ["header of invalid UTF-8", signInput(`${b64(Buffer.concat([Buffer.from('{"alg":"HS256","n":"'), Buffer.from([0xff]), Buffer.from('"}')]))}.${validPayload}`)],
  ["empty token", ""],
  ["two parts", `${validHeader}.${validPayload}`],
  ["four parts", `${valid}.${validSignature}`],
  ["four parts, last empty", `${valid}.`],
  ["only dots", ".."],
  ["empty header", signInput(`.${validPayload}`)],
  ["empty payload", signInput(`${validHeader}.`)],
  ["empty signature", `${validHeader}.${validPayload}.`],
  ["exactly the maximum length", validOfLength(MAX_TOKEN_CHARS)],
  ["one character over the maximum length", validOfLength(MAX_TOKEN_CHARS + 1)],
  ["far over the maximum length", claims({ pad: "x".repeat(MAX_TOKEN_CHARS) })],
  ["'+' in the payload (base64, not base64url)", payloadWith("-", "+")],
  ["'/' in the payload (base64, not base64url)", payloadWith("_", "/")],
  ["'*' in the header", signInput(`${validHeader.slice(0, 4)}*${validHeader.slice(5)}.${validPayload}`)],
  ["non-ASCII in the payload part", signInput(`${validHeader}.${validPayload.slice(0, 8)}é${validPayload.slice(9)}`)],
  ["a payload part of 4n + 1 characters, the first 4n a valid payload", signInput(`${validHeader}.${payloadOf4nChars()}A`)],
  ["signature spelled with its unused bits set", nonCanonicalSignature(valid)],
  // Signatures.
  ["signature with one bit flipped", resign(valid, flipBit)],
  ["signature of 31 bytes", resign(valid, (s) => s.subarray(0, 31))],
  ["signature of 33 bytes", resign(valid, (s) => Buffer.concat([s, Buffer.from([0])]))],
  ["HMAC-SHA512 of the input as the signature", resign(valid, () => mac(`${validHeader}.${validPayload}`, SECRET, "sha512"))],
  ["signature from another secret", resign(valid, () => mac(`${validHeader}.${validPayload}`, "another-secret-0123456789abcdef"))],
  ["signature of another payload", `${validHeader}.${part({ ...VALID, sub: "admin" })}.${validSignature}`],
  ["signature base64-decoded from garbage", `${validHeader}.${validPayload}.c2lnbmF0dXJl`],
  // Header.
  ["alg none, empty signature", `${part({ alg: "none" })}.${validPayload}.`],
  ["alg none, HMAC signature", sign({ alg: "none", typ: "JWT" }, VALID)],
  ["alg HS384 signed with HMAC-SHA384", (() => {
    const input = `${part({ alg: "HS384" })}.${validPayload}`;
    return `${input}.${b64(mac(input, SECRET, "sha384"))}`;
  })()],
  ["alg HS512 over an HMAC-SHA256 signature", sign({ alg: "HS512" }, VALID)],
  ["alg RS256 over an HMAC-SHA256 signature (confusion)", sign({ alg: "RS256", typ: "JWT" }, VALID)],
  ["alg ES256 over an HMAC-SHA256 signature (confusion)", sign({ alg: "ES256" }, VALID)],
  ["alg lowercase hs256", sign({ alg: "hs256" }, VALID)],
  ["alg with a trailing space", sign({ alg: "HS256 " }, VALID)],
  ["alg missing", sign({ typ: "JWT" }, VALID)],
  ["alg null", sign({ alg: null }, VALID)],
  ["alg a number", sign({ alg: 256 }, VALID)],
  ["alg an array", sign({ alg: ["HS256"] }, VALID)],
  ["crit naming a claim", sign({ ...HS, crit: ["exp"] }, VALID)],
  ["crit naming an unknown extension present in the header", sign({ ...HS, crit: ["x-ext"], "x-ext": 1 }, VALID)],
  ["crit empty", sign({ ...HS, crit: [] }, VALID)],
  ["crit a string", sign({ ...HS, crit: "b64" }, VALID)],
  ["crit null", sign({ ...HS, crit: null }, VALID)],
  ["crit b64 with b64 false, payload unencoded", signInput(`${part({ alg: "HS256", b64: false, crit: ["b64"] })}.${JSON.stringify(VALID)}`)],
  ["crit b64 with b64 false, payload encoded", sign({ alg: "HS256", b64: false, crit: ["b64"] }, VALID)],
  ["crit b64 with b64 not a boolean", sign({ alg: "HS256", b64: "true", crit: ["b64"] }, VALID)],
  ["header not JSON", sign("{", VALID)],
  ["header a JSON array", sign([HS], VALID)],
  ["header JSON null", sign("null", VALID)],
  ["header a JSON string", sign('"HS256"', VALID)],
  ["header a JSON number", sign("42", VALID)],
  // Payload.
  ["payload not JSON", sign(HS, "not json")],
  ["payload a JSON array", sign(HS, [VALID])],
  ["payload a JSON string", sign(HS, '"alice"')],
  ["payload JSON null", sign(HS, "null")],
  ["payload a JSON number", sign(HS, "1")],
  ["payload JSON true", sign(HS, "true")],
  // Required claims, in jose's order.
  ["sub missing", claims({ sub: undefined })],
  ["exp missing", claims({ exp: undefined })],
  ["sub and exp missing", claims({ sub: undefined, exp: undefined })],
  ["sub missing, aud and iss wrong", claims({ sub: undefined, aud: "other", iss: "other" })],
  ["aud and sub missing", claims({ aud: undefined, sub: undefined })],
  ["iss, aud, exp and sub missing", sign(HS, { name: "nobody" })],
  // exp, nbf and iat.
  ["exp a string", claims({ exp: "tomorrow" })],
  ["exp null", claims({ exp: null })],
  ["exp true", claims({ exp: true })],
  ["exp an array", claims({ exp: [NOW_S + 600] })],
  ["exp overflowing to Infinity", sign(HS, `{"sub":"alice","exp":1e400,"aud":"courier","iss":"https://auth.example"}`)],
  ["exp overflowing to -Infinity", sign(HS, `{"sub":"alice","exp":-1e400,"aud":"courier","iss":"https://auth.example"}`)],
  ...[-3600, -6, -5.25, -5, -4.75, -4.74, -4, -1, -0.25, 0, 0.5, 1].map((offset): [string, string] => [`exp now ${offset >= 0 ? "+" : ""}${offset} s`, claims({ exp: NOW_S + offset })]),
  ...[-3600, 0, 0.1, 1, 4, 5, 5.5, 6, 3600].map((offset): [string, string] => [`nbf now +${offset} s`, claims({ nbf: NOW_S + offset })]),
  ["nbf a string", claims({ nbf: "soon" })],
  ["nbf null", claims({ nbf: null })],
  ["nbf in the future and exp in the past", claims({ nbf: NOW_S + 3600, exp: NOW_S - 3600 })],
  ["exp a string and nbf in the future", claims({ nbf: NOW_S + 3600, exp: "later" })],
  ["iat a string", claims({ iat: "now" })],
  ["iat null", claims({ iat: null })],
  ["iat an object", claims({ iat: { s: NOW_S } })],
  ["iat in the future", claims({ iat: NOW_S + 3600 })],
  ["iat fractional", claims({ iat: NOW_S - 0.5 })],
  ["iat a string and exp in the past", claims({ iat: "now", exp: NOW_S - 3600 })],
  // Audience and issuer (checked only when configured).
  ["aud an array holding it", claims({ aud: ["other", "courier"] })],
  ["aud an array holding it and a non-string", claims({ aud: [5, "courier"] })],
  ["aud an array without it", claims({ aud: ["other"] })],
  ["aud an empty array", claims({ aud: [] })],
  ["aud another string", claims({ aud: "other" })],
  ["aud differing in case", claims({ aud: "Courier" })],
  ["aud a number", claims({ aud: 5 })],
  ["aud null", claims({ aud: null })],
  ["aud missing", claims({ aud: undefined })],
  ["iss another string", claims({ iss: "https://evil.example" })],
  ["iss with a trailing slash", claims({ iss: "https://auth.example/" })],
  ["iss an array holding it", claims({ iss: ["https://auth.example"] })],
  ["iss null", claims({ iss: null })],
  ["iss missing", claims({ iss: undefined })],
  // The sub grammar (checked after the token, the same way before and after).
  ["sub a number", claims({ sub: 42 })],
  ["sub empty", claims({ sub: "" })],
  ["sub with a space", claims({ sub: "a b" })],
];

/** Shapes jose accepts and this verifier refuses: base64url with padding or whitespace, `crit`, `b64: false`. */
const REFUSED_ON_PURPOSE: [string, string][] = [
  // 16 bytes: 22 characters and "==".
  ["header padded with '='", signInput(`${part('{"alg":"HS256"} ')}==.${validPayload}`)],
  ["signature padded with '='", `${valid}=`],
  ["a space inside the signature", `${valid.slice(0, -10)} ${valid.slice(-10)}`],
  ["crit b64 with b64 true", sign({ alg: "HS256", b64: true, crit: ["b64"] }, VALID)],
  ["b64 false without crit", sign({ alg: "HS256", b64: false }, VALID)],
];

describe("HS256 verification against jose", () => {
  test("createTokenVerifier gives jose's verdict on every token under every option set, and the same claims", async () => {
    const disagreements: unknown[] = [];
    const seen = new Set<string>();
    for (const [set, options] of Object.entries(OPTION_SETS)) {
      for (const [name, token] of CASES) {
        const before = await viaJose(token, options);
        const after = await viaCourier(token, options);
        seen.add("reason" in before ? before.reason : "accepted");
        if (!Bun.deepEquals(before, after)) disagreements.push({ set, name, before, after });
        if ("message" in after) {
          for (const tokenPart of token.split(".").filter((p) => p.length > 8)) expect(after.message).not.toContain(tokenPart);
        }
        if ("user" in before) {
          const { payload } = await jwtVerify(token, new TextEncoder().encode(SECRET), joseOptions(options));
          expect({ name, claims: createHs256Verifier({ secret: SECRET, ...options })(token, NOW_MS) }).toEqual({ name, claims: payload });
        }
      }
    }
    expect(disagreements).toEqual([]);
    // The table reaches every verdict jose's path could give an HS256 token.
    expect([...seen].sort()).toEqual(["accepted", "bad_claims", "bad_signature", "expired", "malformed", "missing", "not_yet_valid"]);
  });

  test("the verdicts that matter most, spelled out", async () => {
    const verdict = async (name: string, set = "plain") => {
      const token = CASES.find(([n]) => n === name)![1];
      const outcome = await viaCourier(token, OPTION_SETS[set]!);
      return "reason" in outcome ? outcome.reason : "accepted";
    };
    expect({
      valid: await verdict("valid"),
      none: await verdict("alg none, empty signature"),
      confusion: await verdict("alg RS256 over an HMAC-SHA256 signature (confusion)"),
      lowercase: await verdict("alg lowercase hs256"),
      crit: await verdict("crit naming a claim"),
      flipped: await verdict("signature with one bit flipped"),
      otherSecret: await verdict("signature from another secret"),
      expiredInTolerance: await verdict("exp now -4.74 s"),
      expiredAtTolerance: await verdict("exp now -4.75 s"),
      nbfAtTolerance: await verdict("nbf now +5 s"),
      nbfPastTolerance: await verdict("nbf now +5.5 s"),
      noSub: await verdict("sub missing"),
      wrongAud: await verdict("aud another string", "strict"),
      wrongAudUnconfigured: await verdict("aud another string"),
      tooLong: await verdict("one character over the maximum length"),
      fourParts: await verdict("four parts"),
    }).toEqual({
      valid: "accepted",
      none: "bad_signature",
      confusion: "bad_signature",
      lowercase: "bad_signature",
      crit: "bad_signature",
      flipped: "bad_signature",
      otherSecret: "bad_signature",
      expiredInTolerance: "accepted",
      expiredAtTolerance: "expired",
      nbfAtTolerance: "accepted",
      nbfPastTolerance: "not_yet_valid",
      noSub: "bad_claims",
      wrongAud: "bad_claims",
      wrongAudUnconfigured: "accepted",
      tooLong: "malformed",
      fourParts: "malformed",
    });
  });

  test("refuses, where jose accepts, the shapes no conforming signer emits", async () => {
    const outcomes = [];
    for (const [name, token] of REFUSED_ON_PURPOSE) {
      outcomes.push({ name, jose: await viaJose(token, OPTION_SETS.plain!), courier: await viaCourier(token, OPTION_SETS.plain!) });
    }
    expect(outcomes).toEqual(
      REFUSED_ON_PURPOSE.map(([name]) => ({
        name,
        jose: { user: "alice", exp: VALID.exp },
        courier: { reason: "bad_signature", message: "the token could not be verified" },
      })),
    );
  });
});

describe("createHs256Verifier", () => {
  const verify = createHs256Verifier({ secret: SECRET, clockToleranceS: 5 });

  test("answers synchronously with the claims", () => {
    expect(verify(valid, NOW_MS)).toEqual(VALID);
  });

  test("refuses a token that is not three parts within the length as malformed by itself", () => {
    const reasons = [validOfLength(MAX_TOKEN_CHARS + 1), `${validHeader}.${validPayload}`, `${valid}.`, "no-dots"].map((token) => {
      try {
        verify(token, NOW_MS);
        return "accepted";
      } catch (error) {
        return (error as TokenError).reason;
      }
    });
    expect(reasons).toEqual(["malformed", "malformed", "malformed", "malformed"]);
    expect(verify(validOfLength(MAX_TOKEN_CHARS), NOW_MS).sub).toBe("alice");
  });

  test("a negative or non-finite clock tolerance is a RangeError", () => {
    expect(() => createHs256Verifier({ secret: SECRET, clockToleranceS: -1 })).toThrow(RangeError);
    expect(() => createHs256Verifier({ secret: SECRET, clockToleranceS: Number.NaN })).toThrow(RangeError);
  });
});
