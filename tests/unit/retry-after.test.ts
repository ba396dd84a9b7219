/**
 * Honest `Retry-After` (issue #14 item 4) on a fake clock: the store's breaker, the publisher and
 * the error mapper as `app.ts` wires them, in front of a store that is down until a chosen moment.
 * Before, the breaker stayed open 10 s while every 503 said `Retry-After: 2`, so clients that
 * retried as told were refused for ~8 s after the store came back. Now a 503 never advertises
 * less than the breaker's remaining cooldown, and the cooldown defaults to `server.retryAfterS`.
 */
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config/load.ts";
import { StoreUnavailableError, type PublishItem, type PublishOutcome } from "../../src/engine/types.ts";
import { CircuitBreaker, retryAfterS } from "../../src/resilience/index.ts";
import { errorMapping, toErrorResponse } from "../../src/server/error-response.ts";
import { NodeStats } from "../../src/server/node-stats.ts";
import { Publisher } from "../../src/server/publisher.ts";
import { createLogger } from "../../src/telemetry/index.ts";

const ITEM: PublishItem = { channel: "user:a", event: "e", dataJson: "null", critical: true };

/**
 * A store down from 0 until `recoversAt`; the store's breaker and the publisher as app.ts builds
 * them; `publish()` answers like the route (status and Retry-After) at the fake time.
 */
function world(recoversAt: number, resilience: { breakerRecoveryMs?: number } = {}) {
  const config = parseConfig("test", { auth: { jwtSecret: "retry-after-test-secret-0123456789", apiKey: "retry-after-test-key-0123456789" }, resilience });
  let now = 0;
  const breaker = new CircuitBreaker({
    name: "store",
    failureThreshold: config.resilience.breakerFailures,
    windowMs: config.resilience.breakerWindowMs,
    recoveryMs: config.resilience.breakerRecoveryMs,
    now: () => now,
    isFailure: (e) => e instanceof StoreUnavailableError,
  });
  let offset = 0;
  const broker = {
    publish: async (items: PublishItem[]): Promise<PublishOutcome[]> => {
      if (now < recoversAt) throw new StoreUnavailableError("disk full");
      return items.map((item) => ({ channel: item.channel, offset: ++offset, epoch: "e1", duplicate: false }));
    },
  };
  const publisher = new Publisher({ broker, breaker, metrics: { publishes: { add: () => {} } as never }, stats: new NodeStats(), extensions: { published: () => {} } });
  const errors = errorMapping(createLogger({ level: "silent" }), breaker, config.server.retryAfterS);
  return {
    config,
    breaker,
    at: (t: number) => void (now = t),
    async publish(): Promise<{ status: number; retryAfterS?: number }> {
      try {
        await publisher.publish([ITEM]);
        return { status: 200 };
      } catch (error) {
        const response = toErrorResponse(error, errors);
        return { status: response.status, retryAfterS: Number(response.headers.get("retry-after")) };
      }
    },
  };
}

/**
 * Other clients publish every 100 ms while the store is down (opening the breaker, re-opening it
 * at each failed probe); one client retries exactly when told. Returns the client's answers.
 */
async function retryAsTold(w: ReturnType<typeof world>, recoversAt: number, clientStartsAt: number) {
  const answers: { t: number; status: number; retryAfterS?: number }[] = [];
  let nextRetry = clientStartsAt;
  for (let t = 0; t <= recoversAt + 30_000; t += 10) {
    w.at(t);
    if (t < recoversAt && t % 100 === 0) await w.publish();
    if (t === nextRetry) {
      const answer = await w.publish();
      answers.push({ t, ...answer });
      if (answer.status === 200) break;
      nextRetry = t + answer.retryAfterS! * 1000;
    }
  }
  return answers;
}

describe("Retry-After is honest about the store breaker", () => {
  test("retryAfterS: the fallback while closed or half open, the rest of the cooldown (rounded up) while open", async () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 1, recoveryMs: 10_000, now: () => now });
    expect(retryAfterS(breaker.state, 2)).toBe(2);
    await breaker.execute(() => Promise.reject(new Error("down"))).catch(() => {});
    now = 1_200;
    expect(retryAfterS(breaker.state, 2)).toBe(9);
    now = 9_999;
    expect(retryAfterS(breaker.state, 2)).toBe(1);
    now = 10_000;
    expect(retryAfterS(breaker.state, 2)).toBe(2);
  });

  for (const recoversAt of [1_000, 2_550, 4_030, 7_777]) {
    test(`store back at ${recoversAt} ms: every 503 after recovery is followed by a 200 at its Retry-After; the first 200 within Retry-After of recovery`, async () => {
      const w = world(recoversAt);
      const answers = await retryAsTold(w, recoversAt, 500);
      const last = answers.at(-1)!;
      expect(last.status).toBe(200);
      const advertised = Math.max(...answers.filter((a) => a.status === 503).map((a) => a.retryAfterS!));
      // Recovered within the longest wait ever advertised (the defaults: 2 s), measured from the recovery.
      expect(advertised).toBe(w.config.server.retryAfterS);
      expect(last.t - recoversAt).toBeLessThanOrEqual(advertised * 1000);
      // A 503 answered once the store was back (the breaker still cooling) said exactly how long.
      for (const [i, a] of answers.entries()) if (a.status === 503 && a.t >= recoversAt) expect(answers[i + 1]).toMatchObject({ t: a.t + a.retryAfterS! * 1000, status: 200 });
    });
  }

  test("with a long breaker cooldown (10 s) the 503s say so: no retry made as told is refused once the store is back", async () => {
    const recoversAt = 3_000;
    const w = world(recoversAt, { breakerRecoveryMs: 10_000 });
    const answers = await retryAsTold(w, recoversAt, 900);
    expect(answers.at(-1)!.status).toBe(200);
    expect(Math.max(...answers.map((a) => a.retryAfterS ?? 0))).toBeGreaterThan(w.config.server.retryAfterS);
    const refusedAfterRecovery = answers.filter((a) => a.status === 503 && a.t >= recoversAt);
    for (const a of refusedAfterRecovery) expect(answers[answers.indexOf(a) + 1]).toMatchObject({ t: a.t + a.retryAfterS! * 1000, status: 200 });
  });
});
