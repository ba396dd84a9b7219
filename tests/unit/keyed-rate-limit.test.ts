/**
 * `KeyedRateLimiter` with a burst above the rate (the history limit's shape), on a fake clock: the
 * burst, the wait it reports, refill, and the generations turning at the refill period. The
 * burst-equals-rate shape and bounded memory: tests/unit/ip-rate-limit.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { KeyedRateLimiter } from "../../src/connection/rate-limit.ts";

const T0 = 1_000_000;

describe("KeyedRateLimiter", () => {
  test("allows the burst, then answers the wait until the next token; keys are independent", () => {
    const limiter = new KeyedRateLimiter({ perSecond: 4, burst: 3 });
    expect([0, 1, 2, 3].map(() => limiter.take("a", T0))).toEqual([0, 0, 0, 250]);
    expect(limiter.take("b", T0)).toBe(0);
    // One token refills in 250 ms: not yet at 249, then one passes at 250.
    expect(limiter.take("a", T0 + 249)).toBe(1);
    expect(limiter.take("a", T0 + 250)).toBe(0);
  });

  test("a bucket still refilling survives a turn of the generations; an idle one is dropped after two refill periods", () => {
    // Refill period: burst / rate = 5 s.
    const limiter = new KeyedRateLimiter({ perSecond: 2, burst: 10 });
    for (let i = 0; i < 10; i++) limiter.take("busy", T0);
    limiter.take("idle", T0);
    // 4 s later (inside the refill period) the busy bucket has 8 of 10 tokens back, not 10.
    expect(limiter.take("busy", T0 + 4_000)).toBe(0);
    expect([...Array(8)].map(() => limiter.take("busy", T0 + 4_000)).filter((w) => w > 0)).toHaveLength(1);
    limiter.take("busy", T0 + 5_000);
    limiter.take("busy", T0 + 10_000);
    expect(limiter.size).toBe(1);
  });

  test("bad options throw RangeError", () => {
    expect(() => new KeyedRateLimiter({ perSecond: 0 })).toThrow(RangeError);
    expect(() => new KeyedRateLimiter({ perSecond: 1, burst: 0.5 })).toThrow(RangeError);
    expect(() => new KeyedRateLimiter({ perSecond: 1, maxKeys: 0 })).toThrow(RangeError);
  });
});
