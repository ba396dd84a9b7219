import { afterEach, describe, expect, jest, test } from "bun:test";
import { Deadline, DeadlineExceededError, withTimeout } from "../../src/resilience/index.ts";

function manualClock(start = 5_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

const never = () => new Promise<never>(() => {});

describe("Deadline", () => {
  afterEach(() => jest.useRealTimers());

  test("remainingMs and expired follow the clock, never going negative", () => {
    const clock = manualClock();
    const deadline = Deadline.after(100, clock.now);
    expect({ at: deadline.at, budgetMs: deadline.budgetMs, remaining: deadline.remainingMs(), expired: deadline.expired }).toEqual({
      at: 5_100,
      budgetMs: 100,
      remaining: 100,
      expired: false,
    });
    clock.advance(99);
    expect(deadline.remainingMs()).toBe(1);
    expect(deadline.expired).toBe(false);
    clock.advance(1);
    expect(deadline.expired).toBe(true);
    clock.advance(50);
    expect(deadline.remainingMs()).toBe(0);
  });

  test("child takes the shorter of its own timeout and what is left, so timeouts never stack", () => {
    const clock = manualClock();
    const parent = Deadline.after(1_000, clock.now);
    expect(parent.child(300).budgetMs).toBe(300);
    clock.advance(800);
    const child = parent.child(300);
    expect(child.budgetMs).toBe(200);
    expect(child.at).toBe(parent.at);
    expect(child.child(5_000).at).toBe(parent.at);
    clock.advance(500);
    expect(parent.child(300).expired).toBe(true);
  });

  test("run resolves with fn's value and hands it a live signal", async () => {
    let seen: AbortSignal | undefined;
    const value = await Deadline.after(1_000).run(async (signal) => {
      seen = signal;
      return 42;
    });
    expect(value).toBe(42);
    expect(seen?.aborted).toBe(false);
  });

  test("run rejects with DeadlineExceededError carrying the budget, and aborts the signal", async () => {
    let seen: AbortSignal | undefined;
    const started = performance.now();
    const error = await Deadline.after(30)
      .run((signal) => {
        seen = signal;
        return never();
      })
      .catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ name: "DeadlineExceededError", budgetMs: 30 });
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(error);
    expect(elapsed).toBeGreaterThanOrEqual(25);
    expect(elapsed).toBeLessThan(500);
  });

  test("run passes fn's own rejection through, including a synchronous throw", async () => {
    const deadline = Deadline.after(1_000);
    await expect(deadline.run(() => Promise.reject(new Error("store down")))).rejects.toThrow("store down");
    await expect(
      deadline.run(() => {
        throw new Error("sync");
      }),
    ).rejects.toThrow("sync");
  });

  test("run on an expired deadline rejects without calling fn", async () => {
    const clock = manualClock();
    const deadline = Deadline.after(10, clock.now);
    clock.advance(10);
    let called = false;
    await expect(
      deadline.run(async () => {
        called = true;
      }),
    ).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(called).toBe(false);
  });

  test("run clears its timer once fn settles", async () => {
    jest.useFakeTimers();
    await Deadline.after(60_000).run(async () => "done");
    expect(jest.getTimerCount()).toBe(0);
  });

  test("run with fake timers: not yet at budget - 1, rejected one tick later", async () => {
    jest.useFakeTimers();
    let settled: unknown = "pending";
    Deadline.after(100).run(never).then(
      (v) => (settled = v),
      (e: unknown) => (settled = e),
    );
    jest.advanceTimersByTime(99);
    await Promise.resolve();
    expect(settled).toBe("pending");
    jest.advanceTimersByTime(1);
    await Promise.resolve();
    await Promise.resolve();
    expect(settled).toBeInstanceOf(DeadlineExceededError);
  });

  test("signal aborts at the deadline with a TimeoutError and is cached", async () => {
    const deadline = Deadline.after(20);
    const signal = deadline.signal;
    expect(deadline.signal).toBe(signal);
    expect(signal.aborted).toBe(false);
    const aborted = Promise.withResolvers<void>();
    signal.addEventListener("abort", () => aborted.resolve());
    await aborted.promise;
    expect((signal.reason as DOMException).name).toBe("TimeoutError");
  });

  test("signal of an expired deadline is already aborted", () => {
    const clock = manualClock();
    const deadline = Deadline.after(10, clock.now);
    clock.advance(11);
    expect(deadline.signal.aborted).toBe(true);
  });

  test("an infinite deadline never expires and its signal never aborts", async () => {
    const deadline = Deadline.after(Infinity);
    expect(deadline.expired).toBe(false);
    expect(deadline.signal.aborted).toBe(false);
    expect(await deadline.run(async () => 1)).toBe(1);
    expect(deadline.child(50).budgetMs).toBe(50);
  });

  test("misuse throws RangeError or TypeError", async () => {
    expect(() => Deadline.after(-1)).toThrow(RangeError);
    expect(() => Deadline.after(Number.NaN)).toThrow(RangeError);
    expect(() => Deadline.after(10).child(-5)).toThrow(RangeError);
    expect(() => Deadline.after(10, "now" as unknown as () => number)).toThrow(TypeError);
    await expect(Deadline.after(10).run(undefined as unknown as () => Promise<void>)).rejects.toThrow(TypeError);
  });
});

describe("withTimeout", () => {
  test("resolves with the promise's value in time", async () => {
    expect(await withTimeout(Promise.resolve("pong"), 50)).toBe("pong");
  });

  test("rejects with DeadlineExceededError when the promise is too slow", async () => {
    await expect(withTimeout(never(), 20)).rejects.toMatchObject({ name: "DeadlineExceededError", budgetMs: 20 });
  });

  test("passes the promise's own rejection through", async () => {
    await expect(withTimeout(Promise.reject(new Error("nope")), 50)).rejects.toThrow("nope");
  });

  test("rejects a negative timeout with RangeError", () => {
    expect(() => withTimeout(Promise.resolve(), -1)).toThrow(RangeError);
  });
});
