/** The server's periodic work, driven by a fake scheduler: every loop "not yet" at `period - 1`, "now" at `period`. */
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config/load.ts";
import type { ConnData } from "../../src/connection/conn-data.ts";
import type { SweepHooks, SweepOptions } from "../../src/connection/manager.ts";
import type { ClusterStats } from "../../src/engine/types.ts";
import { CloseCode } from "../../src/protocol/codes.ts";
import { CircuitBreaker, ReadinessGate, type ReadinessResult } from "../../src/resilience/index.ts";
import { Housekeeping, READINESS_LOOP_MS, READINESS_RETRY_MS, SLOW_SWEEP_DELAY_MS, SWEEP_MS, type HousekeepingOptions } from "../../src/server/housekeeping.ts";
import { NodeStats } from "../../src/server/node-stats.ts";
import { FakeScheduler } from "../helpers/fake-scheduler.ts";
import { createLogger } from "../../src/telemetry/index.ts";
import testConfig from "../../config/test.json";

const config = parseConfig("test", { ...testConfig, cluster: { ...testConfig.cluster, nodeId: "n1" } });

/** A gate whose `record` can be awaited: the readiness loop runs in the background. */
class WatchedGate extends ReadinessGate {
  #waiters: ((result: ReadinessResult) => void)[] = [];
  override record(result: ReadinessResult): void {
    super.record(result);
    for (const resolve of this.#waiters.splice(0)) resolve(result);
  }
  nextRecord(): Promise<ReadinessResult> {
    const { promise, resolve } = Promise.withResolvers<ReadinessResult>();
    this.#waiters.push(resolve);
    return promise;
  }
}

function setup(overrides: Partial<HousekeepingOptions> = {}) {
  const scheduler = new FakeScheduler();
  const calls = {
    sweeps: [] as { now: number; options: SweepOptions }[],
    slowSweeps: [] as number[],
    prunes: [] as number[],
    bufferEvents: [] as { n: number; outcome: string }[],
    checks: 0,
    closes: [] as { code: CloseCode; detail?: { unconfirmed?: number } }[],
  };
  const buffer = { criticalKept: 0, nonCriticalDropped: 0, overflows: 0, bytes: 0, channels: 0 };
  let storeUp = true;
  let trimmed: Promise<{ dropped: number }> = Promise.resolve({ dropped: 0 });
  const logs: string[] = [];
  const gate = new WatchedGate();
  const stats = new NodeStats();
  let hooks: SweepHooks | undefined;
  const options: HousekeepingOptions = {
    config,
    now: () => 1_000_000 + scheduler.now,
    manager: {
      sweep: (now, sweepOptions, h) => {
        hooks = h;
        calls.sweeps.push({ now, options: sweepOptions });
      },
      sweepSlow: (bytes) => void calls.slowSweeps.push(bytes),
    },
    hub: {
      prune: (before) => void calls.prunes.push(before),
      bufferStats: () => ({ ...buffer }),
      oldestUnacked: () => ({ ts: 1, count: 2 }),
      overdue: () => null,
    },
    broker: {
      name: "store",
      trim: () => trimmed,
      check: async () => {
        calls.checks++;
        if (!storeUp) throw new Error("store down");
      },
    },
    statsReport: () => ({ node: "n1" }),
    checks: () => [],
    gate,
    metrics: { bufferEvents: { add: (n: number, attrs?: { outcome: string }) => void calls.bufferEvents.push({ n, outcome: attrs!.outcome }) } as never },
    stats,
    events: { sweptClose: (code, detail) => void calls.closes.push({ code, detail }), confirmTimedOut: () => {} },
    log: createLogger({ level: "debug", sink: (line) => logs.push(line) }),
    ...overrides,
  };
  const housekeeping = new Housekeeping(options);
  return {
    housekeeping,
    scheduler,
    calls,
    buffer,
    gate,
    stats,
    logs,
    hooks: () => hooks!,
    storeDown: (down: boolean) => (storeUp = !down),
    trimAnswers: (answer: Promise<{ dropped: number }>) => (trimmed = answer),
  };
}

describe("Housekeeping", () => {
  test("sweeps every SWEEP_MS by the injected clock, prunes the hub and adds only the buffer counters' change", async () => {
    const h = setup();
    await h.housekeeping.start(h.scheduler);
    h.buffer.criticalKept = 3;
    h.buffer.overflows = 1;
    h.scheduler.advance(SWEEP_MS - 1);
    expect(h.calls.sweeps).toEqual([]);
    h.scheduler.advance(1);
    expect(h.calls.sweeps).toEqual([
      { now: 1_000_000 + SWEEP_MS, options: { heartbeatMs: config.server.heartbeatS * 1000, confirmTimeoutMs: config.delivery.confirmTimeoutMs, probeTimeoutMs: config.delivery.probeTimeoutMs, slowConsumerBytes: config.limits.slowConsumerBytes, clockToleranceS: config.auth.clockToleranceS } },
    ]);
    expect(h.calls.prunes).toEqual([1_000_000 + SWEEP_MS - Math.max(60_000, 4 * config.delivery.confirmTimeoutMs)]);
    h.buffer.criticalKept = 5;
    h.scheduler.advance(SWEEP_MS);
    expect(h.calls.bufferEvents.filter((e) => e.n !== 0)).toEqual([
      { n: 3, outcome: "critical_kept" },
      { n: 1, outcome: "overflow" },
      { n: 2, outcome: "critical_kept" },
    ]);
    h.housekeeping.stop();
  });

  test("the sweep's hooks report closes as events and ask the hub for unacknowledged events", async () => {
    const h = setup();
    await h.housekeeping.start(h.scheduler);
    h.scheduler.advance(SWEEP_MS);
    h.hooks().onClose?.(CloseCode.SlowConsumer, {} as ConnData);
    h.hooks().onClose?.(CloseCode.Stale, {} as ConnData, { unconfirmed: 4 });
    expect(h.calls.closes).toEqual([{ code: CloseCode.SlowConsumer, detail: undefined }, { code: CloseCode.Stale, detail: { unconfirmed: 4 } }]);
    expect(h.hooks().oldestUnacked("public:a", 0)).toEqual({ ts: 1, count: 2 });
    expect(h.hooks().onDirty).toBeUndefined();
    h.housekeeping.stop();
  });

  test("trim runs every cleanupIntervalMs; what it dropped reaches the stats and the metric, a failure the log", async () => {
    const h = setup();
    await h.housekeeping.start(h.scheduler);
    const dropped = Promise.resolve({ dropped: 7 });
    h.trimAnswers(dropped);
    h.scheduler.advance(config.store.cleanupIntervalMs - 1);
    expect(h.stats.trimmedDropped).toBe(0);
    h.scheduler.advance(1);
    await dropped;
    expect(h.stats.trimmedDropped).toBe(7);
    expect(h.calls.bufferEvents).toContainEqual({ n: 7, outcome: "noncritical_dropped" });
    const failed = Promise.reject(new Error("disk gone"));
    h.trimAnswers(failed);
    h.scheduler.advance(config.store.cleanupIntervalMs);
    await failed.catch(() => {});
    await Promise.resolve();
    expect(h.logs.some((l) => l.includes("trim failed") && l.includes("disk gone"))).toBe(true);
    expect(h.stats.trimmedDropped).toBe(7);
    h.housekeeping.stop();
  });

  test("the cluster report runs only on an engine with the ability, with this node's stats and 3× the interval as TTL", async () => {
    const plain = setup();
    await plain.housekeeping.start(plain.scheduler);
    const loops = plain.scheduler.pending;
    plain.housekeeping.stop();

    const reports: { stats: object; ttlMs: number }[] = [];
    const cluster: ClusterStats = { reportStats: async (stats, ttlMs) => void reports.push({ stats, ttlMs }), clusterStats: async () => [] };
    const h = setup({ cluster });
    await h.housekeeping.start(h.scheduler);
    expect(h.scheduler.pending).toBe(loops + 1);
    h.scheduler.advance(config.cluster.statsIntervalMs - 1);
    expect(reports).toEqual([]);
    h.scheduler.advance(1);
    expect(reports).toEqual([{ stats: { node: "n1" }, ttlMs: 3 * config.cluster.statsIntervalMs }]);
    h.housekeeping.stop();
  });

  test("start opens the gate at once when the store answers", async () => {
    const h = setup();
    await h.housekeeping.start(h.scheduler);
    expect({ phase: h.gate.phase, status: h.gate.lastResult?.status }).toEqual({ phase: "ready", status: "ready" });
    h.housekeeping.stop();
  });

  test("a node whose store is down starts closed; checked every READINESS_RETRY_MS, the first passing check opens the gate", async () => {
    const h = setup();
    h.storeDown(true);
    await h.housekeeping.start(h.scheduler);
    expect({ phase: h.gate.phase, status: h.gate.lastResult?.status }).toEqual({ phase: "starting", status: "not_ready" });
    const checks = h.calls.checks;
    h.storeDown(false);
    h.scheduler.advance(READINESS_RETRY_MS - 1);
    expect(h.calls.checks).toBe(checks);
    const recorded = h.gate.nextRecord();
    h.scheduler.advance(1);
    expect((await recorded).status).toBe("ready");
    expect(h.gate.phase).toBe("ready");
    h.housekeeping.stop();
  });

  test("while ready the loop checks every READINESS_LOOP_MS; once a check fails, every READINESS_RETRY_MS until one passes", async () => {
    const h = setup();
    await h.housekeeping.start(h.scheduler);
    const checksAt = () => h.calls.checks;
    const start = checksAt();
    h.scheduler.advance(READINESS_LOOP_MS - 1);
    expect(checksAt()).toBe(start);
    h.storeDown(true);
    let recorded = h.gate.nextRecord();
    h.scheduler.advance(1);
    expect((await recorded).status).toBe("not_ready");
    expect(h.gate.accepting()).toBe(false);
    // The store comes back: the gate accepts again within READINESS_RETRY_MS, not a whole loop later.
    h.storeDown(false);
    h.scheduler.advance(READINESS_RETRY_MS - 1);
    expect(checksAt()).toBe(start + 1);
    recorded = h.gate.nextRecord();
    h.scheduler.advance(1);
    expect((await recorded).status).toBe("ready");
    expect(h.gate.accepting()).toBe(true);
    // Ready again: back to one check per READINESS_LOOP_MS.
    h.scheduler.advance(READINESS_LOOP_MS - 1);
    expect(checksAt()).toBe(start + 2);
    h.housekeeping.stop();
  });

  test("a passing store check closes the store's open breaker at once: publishes recover within READINESS_RETRY_MS, not a cooldown later", async () => {
    let clock = 0;
    const breaker = new CircuitBreaker({ name: "store", failureThreshold: 1, recoveryMs: 60_000, now: () => clock });
    const h = setup({ storeBreaker: breaker });
    h.storeDown(true);
    await h.housekeeping.start(h.scheduler);
    await breaker.execute(() => Promise.reject(new Error("disk full"))).catch(() => {});
    expect(breaker.state.kind).toBe("open");
    h.storeDown(false);
    const recorded = h.gate.nextRecord();
    h.scheduler.advance(READINESS_RETRY_MS);
    clock = READINESS_RETRY_MS;
    expect((await recorded).status).toBe("ready");
    expect(breaker.state.kind).toBe("closed");
    h.housekeeping.stop();
  });

  test("an outage shorter than a loop period still opens the breaker: while it is open the loop checks every READINESS_RETRY_MS and closes it", async () => {
    let clock = 0;
    const breaker = new CircuitBreaker({ name: "store", failureThreshold: 1, recoveryMs: 60_000, now: () => clock });
    const h = setup({ storeBreaker: breaker });
    await h.housekeeping.start(h.scheduler);
    // Publishes failed between two checks; the last check said ready, and the store is fine again.
    await breaker.execute(() => Promise.reject(new Error("connection lost"))).catch(() => {});
    expect({ status: h.gate.lastResult?.status, breaker: breaker.state.kind }).toEqual({ status: "ready", breaker: "open" });
    const checks = h.calls.checks;
    const recorded = h.gate.nextRecord();
    h.scheduler.advance(READINESS_RETRY_MS);
    clock = READINESS_RETRY_MS;
    await recorded;
    expect(h.calls.checks).toBe(checks + 1);
    expect(breaker.state.kind).toBe("closed");
    h.housekeeping.stop();
  });

  test("a /ready check counts: the loop skips a period that already had one", async () => {
    const h = setup();
    await h.housekeeping.start(h.scheduler);
    h.scheduler.advance(READINESS_LOOP_MS / 2);
    await h.housekeeping.probe();
    const checks = h.calls.checks;
    h.scheduler.advance(READINESS_LOOP_MS / 2);
    expect(h.calls.checks).toBe(checks);
    h.scheduler.advance(READINESS_LOOP_MS / 2);
    expect(h.calls.checks).toBe(checks + 1);
    h.housekeeping.stop();
  });

  test("in cluster mode the broker's live-delivery check is a required check of its own, with the broker budget", async () => {
    const signals: AbortSignal[] = [];
    let delivering = true;
    const h = setup({
      broker: {
        name: "redis",
        trim: async () => ({ dropped: 0 }),
        check: async () => {},
        checkDelivery: async (signal) => {
          if (signal) signals.push(signal);
          if (!delivering) throw new Error("the probe message did not come back");
        },
      },
    });
    await h.housekeeping.start(h.scheduler);
    expect(h.gate.lastResult?.checks.pubsub).toMatchObject({ ok: true, required: true });
    delivering = false;
    const result = await h.housekeeping.probe();
    expect(result.status).toBe("not_ready");
    expect(result.checks.pubsub).toMatchObject({ ok: false, required: true, error: "the probe message did not come back" });
    expect(result.checks.redis).toMatchObject({ ok: true });
    expect(signals.length).toBe(2);
    h.housekeeping.stop();
  });

  test("the readiness loop runs one check at a time", async () => {
    const h = setup();
    await h.housekeeping.start(h.scheduler);
    const before = h.calls.checks;
    const recorded = h.gate.nextRecord();
    h.scheduler.advance(READINESS_LOOP_MS);
    // The check is still in flight: the next period must not start a second one.
    h.scheduler.advance(READINESS_LOOP_MS);
    await recorded;
    expect(h.calls.checks).toBe(before + 1);
    h.housekeeping.stop();
  });

  test("the readiness loop checks nothing once draining", async () => {
    const h = setup();
    await h.housekeeping.start(h.scheduler);
    const before = h.calls.checks;
    h.gate.markDraining();
    h.scheduler.advance(10 * READINESS_LOOP_MS);
    // A check started by the loop would have reached the store before this one returns.
    await h.housekeeping.probe();
    expect(h.calls.checks).toBe(before + 1);
    h.housekeeping.stop();
  });

  test("a burst of backpressure queues one slow-consumer sweep, SLOW_SWEEP_DELAY_MS later", async () => {
    const h = setup();
    await h.housekeeping.start(h.scheduler);
    h.housekeeping.slowSweepSoon();
    h.housekeeping.slowSweepSoon();
    h.scheduler.advance(SLOW_SWEEP_DELAY_MS - 1);
    expect(h.calls.slowSweeps).toEqual([]);
    h.housekeeping.slowSweepSoon();
    h.scheduler.advance(1);
    expect(h.calls.slowSweeps).toEqual([config.limits.slowConsumerBytes]);
    h.housekeeping.slowSweepSoon();
    h.scheduler.advance(SLOW_SWEEP_DELAY_MS);
    expect(h.calls.slowSweeps).toEqual([config.limits.slowConsumerBytes, config.limits.slowConsumerBytes]);
    h.housekeeping.stop();
  });

  test("stop cancels every loop and a queued slow sweep; nothing runs after it", async () => {
    const h = setup();
    h.storeDown(true);
    await h.housekeeping.start(h.scheduler);
    h.housekeeping.slowSweepSoon();
    expect(h.scheduler.pending).toBeGreaterThan(0);
    h.housekeeping.stop();
    expect(h.scheduler.pending).toBe(0);
    const checks = h.calls.checks;
    h.scheduler.advance(60_000);
    expect({ sweeps: h.calls.sweeps.length, slow: h.calls.slowSweeps.length, checks: h.calls.checks - checks }).toEqual({ sweeps: 0, slow: 0, checks: 0 });
    h.housekeeping.slowSweepSoon();
    expect(h.scheduler.pending).toBe(0);
  });
});
