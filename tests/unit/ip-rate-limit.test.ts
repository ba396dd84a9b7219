import { describe, expect, test } from "bun:test";
import { IpRateLimiter } from "../../src/connection/ip-rate-limit.ts";
import { refusalLog } from "../../src/server/refusal-log.ts";

describe("IpRateLimiter", () => {
  test("allows the rate per address, then says how long to wait; another address has its own bucket", () => {
    const limiter = new IpRateLimiter({ perSecond: 4 });
    expect([1, 2, 3, 4, 5].map(() => limiter.take("a", 0))).toEqual([0, 0, 0, 0, 250]);
    expect(limiter.take("b", 0)).toBe(0);
    expect(limiter.take("a", 249)).toBe(1);
    expect(limiter.take("a", 250)).toBe(0);
  });

  test("idle addresses are dropped within two seconds: memory follows the active addresses", () => {
    const limiter = new IpRateLimiter({ perSecond: 10 });
    for (let i = 0; i < 1000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`, 0);
    expect(limiter.size).toBe(1000);
    limiter.take("192.0.2.1", 1000);
    expect(limiter.size).toBe(1001); // the idle ones are the older generation now
    limiter.take("192.0.2.1", 2000);
    expect(limiter.size).toBe(1);
  });

  test("a bucket still refilling survives the turn of the generations", () => {
    const limiter = new IpRateLimiter({ perSecond: 2 });
    limiter.take("b", 0);
    expect([limiter.take("a", 900), limiter.take("a", 900), limiter.take("a", 900)]).toEqual([0, 0, 500]);
    limiter.take("b", 1000); // turns: "a" is in the older generation, 0.2 tokens refilled
    expect(limiter.take("a", 1000)).toBe(400); // a fresh bucket would have allowed it
  });

  test("never tracks more than twice maxAddresses, however many are active", () => {
    const limiter = new IpRateLimiter({ perSecond: 10, maxAddresses: 100 });
    for (let i = 0; i < 10_000; i++) limiter.take(`a${i}`, 0);
    expect(limiter.size).toBeLessThanOrEqual(200);
  });

  test("bad options are RangeErrors", () => {
    expect(() => new IpRateLimiter({ perSecond: 0 })).toThrow(RangeError);
    expect(() => new IpRateLimiter({ perSecond: 1, maxAddresses: 0 })).toThrow(RangeError);
  });
});

describe("refusalLog", () => {
  test("at most perSecond lines a second; the next line counts the ones left out", () => {
    const lines: Record<string, unknown>[] = [];
    let now = 0;
    const refused = refusalLog({ log: { info: (_msg, fields) => lines.push(fields!) }, now: () => now, perSecond: 3 });
    for (let i = 0; i < 10; i++) refused({ reason: "unauthorized", status: 401, ip: `ip${i}` });
    expect(lines.map((l) => l.ip)).toEqual(["ip0", "ip1", "ip2"]);
    now = 999;
    refused({ reason: "unauthorized", status: 401, ip: "late" });
    expect(lines).toHaveLength(3);
    now = 1000;
    refused({ reason: "rate_limited", status: 429, ip: "next" });
    expect(lines.at(-1)).toEqual({ reason: "rate_limited", status: 429, ip: "next", suppressed: 8 });
    refused({ reason: "rate_limited", status: 429, ip: "again" });
    expect(lines.at(-1)).toEqual({ reason: "rate_limited", status: 429, ip: "again" });
  });
});
