/**
 * Per-request pieces of the publish route in isolation (CPU µs per call): the API key check and the
 * JSON answer. Compare with their profile shares: in the server the first `req.headers` access
 * also pays for the request's headers, which a Request built here already holds.
 * Run pinned: `taskset -c 0 bun bench/profile/request-cost.ts`.
 */
import { bearer, keyMatches } from "../../src/auth/keys.ts";
import { json } from "../../src/server/http.ts";
const key = "test-api-key-0123456789abcdef";
const req = new Request("http://x/v1/publish", { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" } });
const N = 200_000;
function run(name: string, f: () => unknown) {
  for (let i = 0; i < 20000; i++) f();
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) f();
  const c = process.cpuUsage(c0);
  console.log(`${name}: ${((c.user + c.system) / N).toFixed(2)} µs CPU`);
}
run("bearer(req)", () => bearer(req));
run("keyMatches(bearer(req), key)", () => keyMatches(bearer(req), key));
run("Bun.CryptoHasher.hash sha256", () => Bun.CryptoHasher.hash("sha256", key));
run("json({channel,offset,epoch})", () => json({ channel: "public:x", offset: 1, epoch: "abc" }));
const H = new Headers({ "content-type": "application/json; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" });
run("new Response(text, {headers: Headers})", () => new Response('{"channel":"public:x","offset":1,"epoch":"abc"}', { status: 200, headers: H }));
