/** `KeyedRateLimiter` on a fake clock: the burst, the wait it reports, refill, and bounded memory. */
import { describe, expect, test } from "bun:test";
import { KeyedRateLimiter } from "../../src/connection/rate-limit.ts";

const T0 = 1_000_000;

describe("KeyedRateLimiter", () => {
  test("allows the burst, then answers the wait until the next token; keys are independent", () => {
    const limiter = new KeyedRateLimiter({ perSecond: 4, burst: 3 });
    expect([0, 1, 2, 3].map(() => limiter.take("a", T0))).toEqual([0, 0, 0, 250]);
    expect(limiter.take("b", T0)).toBe(0);
    // One token refills in 250 ms: not yet at 249, then one passes at 250.
    expect(limiter.take("a", T0 + 249)).toBeGreaterThan(0);
    expect(limiter.take("a", T0 + 250)).toBe(0);
  });

  test("memory stays bounded: refilled entries are dropped as calls go by, and maxKeys caps the rest", () => {
    const limiter = new KeyedRateLimiter({ perSecond: 10, burst: 10, maxKeys: 50 });
    for (let i = 0; i < 1_000; i++) limiter.take(`user-${i}`, T0);
    expect(limiter.size).toBe(50);
    // A second later every bucket is full again: each call drops more idle entries than it adds.
    for (let i = 0; i < 20; i++) limiter.take(`late-${i}`, T0 + 1_000 + i);
    expect(limiter.size).toBeLessThan(50);
  });

  test("bad options throw RangeError", () => {
    expect(() => new KeyedRateLimiter({ perSecond: 0 })).toThrow(RangeError);
    expect(() => new KeyedRateLimiter({ perSecond: 1, burst: 0.5 })).toThrow(RangeError);
    expect(() => new KeyedRateLimiter({ perSecond: 1, maxKeys: 0 })).toThrow(RangeError);
  });
});
