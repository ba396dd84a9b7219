/**
 * CPU cost of one HS256 user-token verification, the largest share of a connection's CPU: `jose`
 * as src/auth/tokens.ts calls it (a Uint8Array secret: the key is imported on every call), `jose`
 * with a CryptoKey imported once, WebCrypto's verify alone, and synchronous HMACs (node:crypto,
 * Bun.CryptoHasher) with the payload parsed by hand. The sync variants here check the signature
 * and parse only; src/auth/hs256.ts is the replacement that keeps every claim check of jose (alg,
 * exp/nbf with tolerance, aud/iss, required claims), measured alone and inside createTokenVerifier.
 * Run pinned: `taskset -c 0 bun bench/profile/jwt-cost.ts`.
 */
import { jwtVerify, SignJWT } from "jose";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createHs256Verifier } from "../../src/auth/hs256.ts";
import { createTokenVerifier } from "../../src/auth/tokens.ts";
const secretStr = "test-only-secret-0123456789abcdef";
const secret = new TextEncoder().encode(secretStr);
const N = 20_000;
const tokens: string[] = [];
for (let i = 0; i < N; i++) tokens.push(await new SignJWT({ tier: "starter" }).setProtectedHeader({ alg: "HS256" }).setSubject(`u${i}`).setIssuedAt().setExpirationTime("1h").sign(secret));
const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
const common = { clockTolerance: 5, requiredClaims: ["sub", "exp"], algorithms: ["HS256"] };
async function run(name: string, f: (t: string) => Promise<unknown> | unknown) {
  for (let i = 0; i < 2000; i++) await f(tokens[i]!);
  const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < N; i++) await f(tokens[i]!);
  const c = process.cpuUsage(c0); const w = performance.now() - t0;
  console.log(`${name}: ${((c.user + c.system) / N).toFixed(1)} µs CPU/verify, ${(w * 1000 / N).toFixed(1)} µs wall`);
}
const hmacKey = Buffer.from(secretStr);
function syncVerify(t: string) {
  const d1 = t.indexOf("."), d2 = t.lastIndexOf(".");
  const mac = createHmac("sha256", hmacKey).update(t.slice(0, d2)).digest();
  const sig = Buffer.from(t.slice(d2 + 1), "base64url");
  if (sig.length !== mac.length || !timingSafeEqual(sig, mac)) throw new Error("bad sig");
  return JSON.parse(Buffer.from(t.slice(d1 + 1, d2), "base64url").toString());
}
function bunHmac(t: string) {
  const d1 = t.indexOf("."), d2 = t.lastIndexOf(".");
  const h = new Bun.CryptoHasher("sha256", hmacKey); h.update(t.slice(0, d2)); const mac = h.digest();
  const sig = Buffer.from(t.slice(d2 + 1), "base64url");
  if (sig.length !== mac.length || !timingSafeEqual(sig, mac)) throw new Error("bad sig");
  return JSON.parse(Buffer.from(t.slice(d1 + 1, d2), "base64url").toString());
}
await run("jose jwtVerify(Uint8Array secret)  [before hs256.ts]", (t) => jwtVerify(t, secret, common));
await run("jose jwtVerify(CryptoKey imported once)", (t) => jwtVerify(t, key, common));
await run("node:crypto createHmac sync + JSON.parse", syncVerify);
await run("Bun.CryptoHasher hmac sync + JSON.parse", bunHmac);
await run("crypto.subtle.verify alone (key once)", (t) => { const d2 = t.lastIndexOf("."); return crypto.subtle.verify("HMAC", key, Buffer.from(t.slice(d2 + 1), "base64url"), new TextEncoder().encode(t.slice(0, d2))); });
const hs256 = createHs256Verifier({ secret: secretStr, clockToleranceS: 5 });
await run("src/auth/hs256.ts (every check)", (t) => hs256(t, Date.now()));
const verifyToken = createTokenVerifier({ jwtSecret: secretStr, clockToleranceS: 5 });
await run("createTokenVerifier (hs256.ts + principal)", verifyToken);
