/**
 * `GET /v1/history` is rate-limited per user (issue #14 item 7): past `historyBurst` a user gets
 * 429 JSON with an honest `Retry-After` (a retry at that time passes), other users are unaffected.
 * Real server; its clock is injected so "later" needs no sleep.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let clock = Date.now();
beforeAll(async () => {
  server = await startServer({ now: () => clock, config: { limits: { historyPerUserPerSec: 1, historyBurst: 3 } } });
});
afterAll(() => server.stop());

async function history(user: string, channel = "public:polled"): Promise<Response> {
  return fetch(`${server.http}/v1/history?channel=${channel}`, { headers: { authorization: `Bearer ${await server.token(user)}` } });
}

test("past the burst a user gets 429 rate_limited with Retry-After; another user is unaffected; after Retry-After it passes", async () => {
  const { historyBurst } = server.config.limits;
  const statuses = [];
  for (let i = 0; i < historyBurst; i++) statuses.push((await history("poller")).status);
  expect(statuses).toEqual(Array(historyBurst).fill(200));

  const refused = await history("poller");
  expect(refused.status).toBe(429);
  expect(await refused.json()).toEqual({ error: "rate_limited", message: expect.stringContaining("history requests per second per user") });
  const retryAfterS = Number(refused.headers.get("retry-after"));
  expect(retryAfterS).toBeGreaterThanOrEqual(1);

  expect((await history("someone-else")).status).toBe(200);
  // Any channel, same user: the limit is the user's, not the channel's (random names were the abuse).
  expect((await history("poller", "public:another")).status).toBe(429);

  clock += retryAfterS * 1000;
  expect((await history("poller")).status).toBe(200);
});

test("a request without a valid token is 401, never counted against anyone", async () => {
  const res = await fetch(`${server.http}/v1/history?channel=public:polled`);
  expect(res.status).toBe(401);
});
