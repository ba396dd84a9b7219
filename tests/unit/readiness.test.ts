import { describe, expect, test } from "bun:test";
import { ReadinessGate, runChecks, type ReadinessCheck, type ReadinessResult } from "../../src/resilience/index.ts";

const pass = (name: string, required = true, timeoutMs = 1_000): ReadinessCheck => ({
  name,
  timeoutMs,
  required,
  run: async () => {},
});
const fail = (name: string, required: boolean, message = `${name} down`): ReadinessCheck => ({
  name,
  timeoutMs: 1_000,
  required,
  run: () => Promise.reject(new Error(message)),
});
/** Never settles and ignores its signal: the worst dependency. */
const hang = (name: string, required: boolean, timeoutMs: number): ReadinessCheck => ({
  name,
  timeoutMs,
  required,
  run: () => new Promise<void>(() => {}),
});

describe("runChecks", () => {
  test("all checks passing is ready, each listed with ok, ms and required", async () => {
    const result = await runChecks([pass("store"), pass("otlp", false)], { budgetMs: 1_000 });
    expect(result).toEqual({
      status: "ready",
      checks: {
        store: { ok: true, ms: expect.any(Number), required: true },
        otlp: { ok: true, ms: expect.any(Number), required: false },
      },
    });
  });

  test("a failing optional check is degraded; the error message is reported", async () => {
    const result = await runChecks([pass("store"), fail("otlp", false)], { budgetMs: 1_000 });
    expect(result.status).toBe("degraded");
    expect(result.checks.otlp).toEqual({ ok: false, ms: expect.any(Number), required: false, error: "otlp down" });
  });

  test("a failing required check is not_ready, whatever the optional ones say", async () => {
    const result = await runChecks([fail("otlp", false), fail("redis", true), pass("store")], { budgetMs: 1_000 });
    expect(result.status).toBe("not_ready");
    expect(result.checks.redis).toMatchObject({ ok: false, required: true, error: "redis down" });
    expect(result.checks.store?.ok).toBe(true);
  });

  test("a check that hangs forever fails with timeout at its own timeout", async () => {
    const started = performance.now();
    const result = await runChecks([hang("redis", true, 30), pass("store")], { budgetMs: 1_000 });
    const elapsed = performance.now() - started;
    expect(result.status).toBe("not_ready");
    expect(result.checks.redis).toEqual({ ok: false, ms: expect.any(Number), required: true, error: "timeout" });
    expect(result.checks.redis!.ms).toBeGreaterThanOrEqual(25);
    expect(elapsed).toBeLessThan(500);
  });

  test("the whole call resolves within the budget even when every check would take longer", async () => {
    const started = performance.now();
    const result = await runChecks([hang("store", true, 10_000), hang("broker", true, 5_000), hang("otlp", false, 1_000)], {
      budgetMs: 40,
    });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(35);
    expect(elapsed).toBeLessThan(40 + 30);
    expect(result.status).toBe("not_ready");
    expect(Object.values(result.checks).map((c) => c.error)).toEqual(["timeout", "timeout", "timeout"]);
  });

  test("checks run in parallel, not one after another", async () => {
    const slow = (name: string): ReadinessCheck => ({
      name,
      timeoutMs: 1_000,
      required: true,
      run: () => new Promise<void>((resolve) => setTimeout(resolve, 30)),
    });
    const started = performance.now();
    const result = await runChecks([slow("a"), slow("b"), slow("c"), slow("d")], { budgetMs: 1_000 });
    expect(result.status).toBe("ready");
    expect(performance.now() - started).toBeLessThan(100);
  });

  test("each check's signal aborts when its time runs out", async () => {
    const aborted = Promise.withResolvers<unknown>();
    const check: ReadinessCheck = {
      name: "store",
      timeoutMs: 20,
      required: true,
      run: (signal) =>
        new Promise<void>((_, reject) => {
          signal.addEventListener("abort", () => {
            aborted.resolve(signal.reason);
            reject(signal.reason);
          });
        }),
    };
    const result = await runChecks([check], { budgetMs: 1_000 });
    expect(await aborted.promise).toMatchObject({ name: "DeadlineExceededError", budgetMs: 20 });
    expect(result.checks.store?.error).toBe("timeout");
  });

  test("ms is measured on the injected clock", async () => {
    let now = 100;
    const check: ReadinessCheck = {
      name: "store",
      timeoutMs: 1_000,
      required: true,
      run: async () => {
        now += 7;
      },
    };
    const result = await runChecks([check], { budgetMs: 1_000, now: () => now });
    expect(result.checks.store).toEqual({ ok: true, ms: 7, required: true });
  });

  test("a synchronous throw and a non-Error rejection are reported, not thrown", async () => {
    const result = await runChecks(
      [
        { name: "sync", timeoutMs: 100, required: false, run: () => { throw new Error("sync boom"); } },
        { name: "odd", timeoutMs: 100, required: false, run: () => Promise.reject("just a string") },
      ],
      { budgetMs: 100 },
    );
    expect(result.status).toBe("degraded");
    expect(result.checks.sync?.error).toBe("sync boom");
    expect(result.checks.odd?.error).toBe("just a string");
  });

  test("no checks is ready", async () => {
    expect(await runChecks([], { budgetMs: 10 })).toEqual({ status: "ready", checks: {} });
  });

  test("misuse throws: duplicate names TypeError, bad budget or timeout RangeError", async () => {
    await expect(runChecks([pass("store"), pass("store")], { budgetMs: 100 })).rejects.toThrow(TypeError);
    await expect(runChecks([pass("store")], { budgetMs: -1 })).rejects.toThrow(RangeError);
    await expect(runChecks([pass("store", true, -5)], { budgetMs: 100 })).rejects.toThrow(RangeError);
  });
});

describe("ReadinessGate", () => {
  const result = (status: ReadinessResult["status"]): ReadinessResult => ({ status, checks: {} });

  test("starts not accepting, accepts once ready, stops for good when draining", () => {
    const gate = new ReadinessGate();
    expect({ phase: gate.phase, accepting: gate.accepting(), last: gate.lastResult }).toEqual({
      phase: "starting",
      accepting: false,
      last: undefined,
    });
    gate.markReady();
    expect({ phase: gate.phase, accepting: gate.accepting() }).toEqual({ phase: "ready", accepting: true });
    gate.markDraining();
    gate.markDraining();
    expect({ phase: gate.phase, accepting: gate.accepting() }).toEqual({ phase: "draining", accepting: false });
    expect(() => gate.markReady()).toThrow(TypeError);
  });

  test("a not_ready result stops accepting; degraded and ready accept", () => {
    const gate = new ReadinessGate();
    gate.markReady();
    gate.record(result("not_ready"));
    expect(gate.accepting()).toBe(false);
    gate.record(result("degraded"));
    expect(gate.accepting()).toBe(true);
    expect(gate.lastResult).toEqual(result("degraded"));
    gate.record(result("ready"));
    expect(gate.accepting()).toBe(true);
  });

  test("a ready result alone does not open a starting gate", () => {
    const gate = new ReadinessGate();
    gate.record(result("ready"));
    expect(gate.accepting()).toBe(false);
  });
});
