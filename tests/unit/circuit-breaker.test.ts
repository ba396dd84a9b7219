import { describe, expect, test } from "bun:test";
import { BreakerOpenError, CIRCUIT_STATE_VALUE, CircuitBreaker, type CircuitBreakerOptions } from "../../src/resilience/index.ts";

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

const ok = () => Promise.resolve("ok");
const boom = () => Promise.reject(new Error("boom"));

function setup(options: CircuitBreakerOptions = {}) {
  const clock = manualClock();
  const transitions: string[] = [];
  const breaker = new CircuitBreaker({
    name: "agent",
    failureThreshold: 3,
    windowMs: 1_000,
    recoveryMs: 5_000,
    now: clock.now,
    onStateChange: (from, to) => transitions.push(`${from}->${to}`),
    ...options,
  });
  const fail = (n: number) => Promise.all(Array.from({ length: n }, () => breaker.execute(boom).catch(() => {})));
  return { clock, breaker, transitions, fail };
}

describe("CircuitBreaker", () => {
  test("stays closed below the threshold and passes results and errors through", async () => {
    const { breaker, fail } = setup();
    expect(await breaker.execute(ok)).toBe("ok");
    await expect(breaker.execute(boom)).rejects.toThrow("boom");
    await fail(1);
    expect(breaker.state).toEqual({ kind: "closed", failures: 2 });
  });

  test("opens after failureThreshold failures within windowMs", async () => {
    const { breaker, transitions, fail, clock } = setup();
    await fail(3);
    expect(breaker.state).toEqual({ kind: "open", failures: 3, openedAt: clock.now(), remainingCooldownMs: 5_000 });
    expect(transitions).toEqual(["closed->open"]);
  });

  test("forgets failures older than windowMs", async () => {
    const { breaker, fail, clock } = setup();
    await fail(2);
    clock.advance(1_000);
    await fail(2);
    expect(breaker.state).toEqual({ kind: "closed", failures: 2 });
    clock.advance(999);
    await fail(1);
    expect(breaker.state.kind).toBe("open");
  });

  test("rejects calls while open without running them, with the remaining cooldown", async () => {
    const { breaker, fail, clock } = setup();
    await fail(3);
    clock.advance(1_500);
    let ran = false;
    const error = await breaker
      .execute(async () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(ran).toBe(false);
    expect(error).toBeInstanceOf(BreakerOpenError);
    expect(error).toMatchObject({ name: "BreakerOpenError", breaker: "agent", remainingCooldownMs: 3_500 });
  });

  test("turns half open exactly when recoveryMs has passed, computed from the clock", async () => {
    const { breaker, fail, clock, transitions } = setup();
    await fail(3);
    clock.advance(4_999);
    expect(breaker.state.kind).toBe("open");
    clock.advance(1);
    expect(breaker.state).toEqual({ kind: "half_open", failures: 3, openedAt: clock.now() - 5_000, probing: false });
    expect(transitions).toEqual(["closed->open", "open->half_open"]);
  });

  test("a successful probe closes the breaker and clears the failures", async () => {
    const { breaker, fail, clock, transitions } = setup();
    await fail(3);
    clock.advance(5_000);
    expect(await breaker.execute(ok)).toBe("ok");
    expect(breaker.state).toEqual({ kind: "closed", failures: 0 });
    expect(transitions).toEqual(["closed->open", "open->half_open", "half_open->closed"]);
  });

  test("a failed probe opens the breaker again for a full cooldown", async () => {
    const { breaker, fail, clock, transitions } = setup();
    await fail(3);
    clock.advance(5_000);
    await fail(1);
    expect(breaker.state).toMatchObject({ kind: "open", openedAt: clock.now(), remainingCooldownMs: 5_000 });
    expect(transitions).toEqual(["closed->open", "open->half_open", "half_open->open"]);
  });

  test("lets only one probe run in half open; others are rejected as if open", async () => {
    const { breaker, fail, clock } = setup();
    await fail(3);
    clock.advance(5_000);
    const gate = Promise.withResolvers<string>();
    const probe = breaker.execute(() => gate.promise);
    expect(breaker.state).toMatchObject({ kind: "half_open", probing: true });
    const second = await breaker.execute(ok).catch((e: unknown) => e);
    expect(second).toMatchObject({ name: "BreakerOpenError", remainingCooldownMs: 0 });
    gate.resolve("probed");
    expect(await probe).toBe("probed");
    expect(breaker.state.kind).toBe("closed");
    expect(await breaker.execute(ok)).toBe("ok");
  });

  test("a probe that never settles is replaced after another recoveryMs", async () => {
    const { breaker, fail, clock } = setup();
    await fail(3);
    clock.advance(5_000);
    void breaker.execute(() => new Promise<never>(() => {}));
    clock.advance(4_999);
    await expect(breaker.execute(ok)).rejects.toBeInstanceOf(BreakerOpenError);
    clock.advance(1);
    expect(await breaker.execute(ok)).toBe("ok");
    expect(breaker.state.kind).toBe("closed");
  });

  test("calls that started while closed cannot close or re-open the breaker", async () => {
    const { breaker, fail, clock } = setup();
    const slowOk = Promise.withResolvers<string>();
    const slowFail = Promise.withResolvers<string>();
    const a = breaker.execute(() => slowOk.promise);
    const b = breaker.execute(() => slowFail.promise).catch(() => {});
    await fail(3);
    clock.advance(1_000);
    slowOk.resolve("late");
    slowFail.reject(new Error("late"));
    await Promise.all([a, b]);
    expect(breaker.state).toMatchObject({ kind: "open", remainingCooldownMs: 4_000 });
  });

  test("errors that isFailure rejects are not counted, and pass through", async () => {
    const notFound = Object.assign(new Error("not found"), { status: 404 });
    const { breaker } = setup({ isFailure: (e) => (e as { status?: number }).status !== 404 });
    for (let i = 0; i < 5; i++) await breaker.execute(() => Promise.reject(notFound)).catch(() => {});
    expect(breaker.state).toEqual({ kind: "closed", failures: 0 });
    await expect(breaker.execute(() => Promise.reject(notFound))).rejects.toBe(notFound);
  });

  test("a synchronous throw inside fn counts as a failure", async () => {
    const { breaker } = setup({ failureThreshold: 1 });
    const error = await breaker
      .execute(() => {
        throw new Error("sync");
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ message: "sync" });
    expect(breaker.state.kind).toBe("open");
  });

  test("throwing observers cannot break control flow", async () => {
    const { breaker, clock } = setup({
      onStateChange: () => {
        throw new Error("observer");
      },
      onFailure: () => {
        throw new Error("observer");
      },
      isFailure: () => {
        throw new Error("classifier");
      },
    });
    for (let i = 0; i < 3; i++) await expect(breaker.execute(boom)).rejects.toThrow("boom");
    await Promise.resolve();
    expect(breaker.state.kind).toBe("open");
    clock.advance(5_000);
    expect(await breaker.execute(ok)).toBe("ok");
    expect(breaker.state.kind).toBe("closed");
  });

  test("onFailure sees each counted failure with the count in the window", async () => {
    const seen: Array<[string, number]> = [];
    const { fail } = setup({ onFailure: (e, n) => seen.push([(e as Error).message, n]) });
    await fail(3);
    expect(seen).toEqual([
      ["boom", 1],
      ["boom", 2],
      ["boom", 3],
    ]);
  });

  test("snapshot and stateValue report for stats and gauges", async () => {
    const { breaker, fail, clock } = setup();
    expect(breaker.snapshot()).toEqual({ name: "agent", state: "closed", failures: 0 });
    expect(breaker.stateValue).toBe(0);
    await fail(3);
    const openedAt = clock.now();
    clock.advance(2_000);
    expect(breaker.snapshot()).toEqual({ name: "agent", state: "open", failures: 3, openedAt, remainingCooldownMs: 3_000 });
    expect(breaker.stateValue).toBe(2);
    clock.advance(3_000);
    expect(breaker.snapshot()).toEqual({ name: "agent", state: "half_open", failures: 3, openedAt });
    expect(breaker.stateValue).toBe(1);
    expect(CIRCUIT_STATE_VALUE).toEqual({ closed: 0, half_open: 1, open: 2 });
  });

  test("defaults: 5 failures within 10 s open it for 10 s", async () => {
    const clock = manualClock();
    const breaker = new CircuitBreaker({ now: clock.now });
    for (let i = 0; i < 4; i++) await breaker.execute(boom).catch(() => {});
    expect(breaker.state.kind).toBe("closed");
    await breaker.execute(boom).catch(() => {});
    expect(breaker.snapshot()).toMatchObject({ name: "breaker", state: "open", remainingCooldownMs: 10_000 });
  });

  test("misuse throws RangeError or TypeError", async () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ failureThreshold: 1.5 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ windowMs: 0 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ recoveryMs: -1 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ recoveryMs: Number.NaN })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ now: 5 as unknown as () => number })).toThrow(TypeError);
    await expect(new CircuitBreaker().execute(null as unknown as () => Promise<void>)).rejects.toThrow(TypeError);
  });
});

describe("CircuitBreaker.probe (a health check beside the traffic)", () => {
  const healthy = () => Promise.resolve();
  const down = () => Promise.reject(new Error("still down"));

  test("a passing check closes an open breaker at once, long before its cooldown ends", async () => {
    const { clock, breaker, transitions, fail } = setup();
    await fail(3);
    clock.advance(1);
    expect(breaker.state.kind).toBe("open");
    await breaker.probe(healthy);
    expect(breaker.state).toEqual({ kind: "closed", failures: 0 });
    expect(await breaker.execute(ok)).toBe("ok");
    expect(transitions).toEqual(["closed->open", "open->closed"]);
  });

  test("a failing check passes its error through and changes nothing: not counted while closed, no longer cooldown while open", async () => {
    const { clock, breaker, fail } = setup();
    await expect(breaker.probe(down)).rejects.toThrow("still down");
    expect(breaker.state).toEqual({ kind: "closed", failures: 0 });
    await fail(3);
    const before = breaker.state;
    clock.advance(1_000);
    await expect(breaker.probe(down)).rejects.toThrow("still down");
    expect(breaker.state).toMatchObject({ kind: "open", remainingCooldownMs: (before as { remainingCooldownMs: number }).remainingCooldownMs - 1_000 });
  });

  test("a check that started while closed cannot close a breaker that opened while it ran", async () => {
    const { breaker, fail } = setup();
    const check = Promise.withResolvers<void>();
    const probing = breaker.probe(() => check.promise);
    await fail(3);
    check.resolve();
    await probing;
    expect(breaker.state.kind).toBe("open");
  });
});
