/**
 * Everything the server does on a timer, behind `start(scheduler)` / `stop()`: the connection sweep
 * (heartbeats, token expiry, slow consumers, confirmation probes, dirty sessions) with the hub's
 * prune and the buffer counters, the history trim, the cluster stats report, the readiness loop
 * (faster while not ready, and it opens the gate); and the slow-consumer sweep a backpressured
 * publish asks for. The scheduler is injected, so tests drive every loop by hand.
 */
import type { Config } from "../config/schema.ts";
import type { ConnData } from "../connection/conn-data.ts";
import type { ConnectionManager, SweepHooks, SweepOptions } from "../connection/manager.ts";
import type { Hub } from "../delivery/hub.ts";
import type { Broker, ClusterStats } from "../engine/types.ts";
import { runChecks, type CircuitBreaker, type ReadinessCheck, type ReadinessGate, type ReadinessResult } from "../resilience/index.ts";
import type { Logger, Metrics } from "../telemetry/index.ts";
import type { NodeStats } from "./node-stats.ts";
import type { Scheduler } from "./scheduler.ts";
import type { ServerEvents } from "./server-events.ts";

/** Connection sweep period. */
export const SWEEP_MS = 1000;
/** Readiness loop period while the node is ready. */
export const READINESS_LOOP_MS = 2000;
/**
 * Readiness loop period while the last check said `not_ready` (or the node waits for its store at
 * start): a dependency that comes back reopens the gate this soon, well inside `Retry-After`.
 */
export const READINESS_RETRY_MS = 500;
/** How soon after backpressure the slow-consumer sweep runs: one sweep serves a burst of publishes. */
export const SLOW_SWEEP_DELAY_MS = 50;

/** Options for {@linkcode Housekeeping}. */
export interface HousekeepingOptions {
  config: Config;
  now: () => number;
  manager: Pick<ConnectionManager, "sweep" | "sweepSlow">;
  hub: Pick<Hub<unknown>, "prune" | "bufferStats" | "oldestUnacked" | "overdue">;
  broker: Pick<Broker, "name" | "trim" | "check" | "checkDelivery">;
  /** Present on cluster engines: this node's stats are reported there. */
  cluster?: ClusterStats;
  /** This node's `/ws/stats` body, for the cluster report. */
  statsReport: () => object;
  /**
   * The store's breaker: a passing store check closes it at once (see `CircuitBreaker.probe`), so
   * publishes recover as soon as the store does, not a cooldown later.
   */
  storeBreaker?: Pick<CircuitBreaker, "probe" | "state">;
  /** Checks besides the store's and the broker's (the JWKS, the extensions'). */
  checks: () => ReadinessCheck[];
  gate: ReadinessGate;
  metrics: Pick<Metrics, "bufferEvents">;
  stats: NodeStats;
  events: Pick<ServerEvents, "sweptClose" | "confirmTimedOut">;
  /** Saves a session whose state changed (cluster engines); see `Sessions.onDirty`. */
  onDirty?: (data: ConnData) => void;
  log: Logger;
}

/**
 * The server's periodic work.
 *
 * @example
 * const housekeeping = new Housekeeping({ config, now, manager, hub, broker: engine, ... });
 * await housekeeping.start(systemScheduler); // loops running, gate open once the store answers
 * housekeeping.stop();
 */
export class Housekeeping {
  readonly #o: HousekeepingOptions;
  readonly #hooks: SweepHooks;
  readonly #sweepOptions: SweepOptions;
  #scheduler: Scheduler | undefined;
  #cancels: (() => void)[] = [];
  /** Buffer counters already added to the metric: each sweep adds only the change. */
  readonly #bufferSeen = { criticalKept: 0, nonCriticalDropped: 0, overflows: 0 };
  #slowSweepQueued = false;
  #probing = false;
  /** When the last check started (loop or `/ready`): the loop skips a period that already had one. */
  #lastProbeAt = Number.NEGATIVE_INFINITY;
  /** Set by `start`: only then may a passing check open the gate. */
  #started = false;

  constructor(options: HousekeepingOptions) {
    this.#o = options;
    this.#hooks = {
      oldestUnacked: (channel, after) => options.hub.oldestUnacked(channel, after),
      overdue: (channel, after, before) => options.hub.overdue(channel, after, before),
      onTimedOut: (events) => options.events.confirmTimedOut(events),
      onClose: (code, _data, detail) => options.events.sweptClose(code, detail),
      onDirty: options.onDirty,
    };
    const { config } = options;
    this.#sweepOptions = {
      heartbeatMs: config.server.heartbeatS * 1000,
      confirmTimeoutMs: config.delivery.confirmTimeoutMs,
      probeTimeoutMs: config.delivery.probeTimeoutMs,
      slowConsumerBytes: config.limits.slowConsumerBytes,
      clockToleranceS: config.auth.clockToleranceS,
    };
  }

  /** Starts every loop, runs the first readiness check, and opens the gate once the store answers. */
  async start(scheduler: Scheduler): Promise<void> {
    const { config, cluster } = this.#o;
    this.#scheduler = scheduler;
    this.#cancels.push(
      scheduler.every(SWEEP_MS, () => this.#sweep()),
      scheduler.every(config.store.cleanupIntervalMs, () => this.#trim()),
      scheduler.every(READINESS_RETRY_MS, () => this.#readinessTick()),
    );
    // Cluster mode: each node reports into the engine with a TTL, for `/ws/stats?scope=cluster`.
    if (cluster) this.#cancels.push(scheduler.every(config.cluster.statsIntervalMs, () => this.#report(cluster)));
    this.#started = true;
    await this.probe();
  }

  /** Cancels every loop; a queued slow sweep is dropped. */
  stop(): void {
    for (const cancel of this.#cancels.splice(0)) cancel();
    this.#scheduler = undefined;
  }

  /**
   * Runs the readiness checks now and records the result in the gate (`/ready` and the loop); once
   * started, the first result that is not `not_ready` opens the gate.
   */
  async probe(): Promise<ReadinessResult> {
    const result = await this.#runChecks();
    this.#record(result);
    return result;
  }

  #runChecks(): Promise<ReadinessResult> {
    this.#lastProbeAt = this.#o.now();
    return runChecks(this.#checks(), { budgetMs: this.#o.config.resilience.readinessBudgetMs });
  }

  #record(result: ReadinessResult): void {
    const { gate } = this.#o;
    gate.record(result);
    if (this.#started && result.status !== "not_ready" && gate.phase === "starting") gate.markReady();
  }

  /**
   * The store (required), the cluster broker's live delivery (required: a node whose subscription
   * receives nothing would serve clients that never get another node's events), then the others.
   */
  #checks(): ReadinessCheck[] {
    const { config, broker } = this.#o;
    const groups = config.resilience.readinessGroupsMs;
    const { storeBreaker } = this.#o;
    const store = storeBreaker ? () => storeBreaker.probe(() => broker.check()) : () => broker.check();
    const checks: ReadinessCheck[] = [{ name: broker.name, timeoutMs: groups.store, required: true, run: store }];
    if (broker.checkDelivery) checks.push({ name: "pubsub", timeoutMs: groups.broker, required: true, run: (signal) => broker.checkDelivery!(signal) });
    return [...checks, ...this.#o.checks()];
  }

  /** A publish met backpressure: check for slow consumers soon, once for a whole burst. */
  slowSweepSoon(): void {
    const scheduler = this.#scheduler;
    if (this.#slowSweepQueued || !scheduler) return;
    this.#slowSweepQueued = true;
    const cancel = scheduler.after(SLOW_SWEEP_DELAY_MS, () => {
      this.#slowSweepQueued = false;
      this.#cancels = this.#cancels.filter((c) => c !== cancel);
      this.#o.manager.sweepSlow(this.#o.config.limits.slowConsumerBytes, this.#hooks);
    });
    this.#cancels.push(cancel);
  }

  #sweep(): void {
    const { config, manager, hub, metrics } = this.#o;
    const t = this.#o.now();
    manager.sweep(t, this.#sweepOptions, this.#hooks);
    hub.prune(t - Math.max(60_000, 4 * config.delivery.confirmTimeoutMs));
    const buffer = hub.bufferStats();
    const seen = this.#bufferSeen;
    metrics.bufferEvents.add(buffer.criticalKept - seen.criticalKept, { outcome: "critical_kept" });
    metrics.bufferEvents.add(buffer.nonCriticalDropped - seen.nonCriticalDropped, { outcome: "noncritical_dropped" });
    metrics.bufferEvents.add(buffer.overflows - seen.overflows, { outcome: "overflow" });
    Object.assign(seen, { criticalKept: buffer.criticalKept, nonCriticalDropped: buffer.nonCriticalDropped, overflows: buffer.overflows });
  }

  #trim(): void {
    const { broker, stats, metrics, log } = this.#o;
    broker.trim(this.#o.now()).then(
      ({ dropped }) => {
        stats.trimmedDropped += dropped;
        if (dropped > 0) metrics.bufferEvents.add(dropped, { outcome: "noncritical_dropped" });
      },
      (error) => log.warn("trim failed", { error: (error as Error).message }),
    );
  }

  #report(cluster: ClusterStats): void {
    cluster
      .reportStats(this.#o.statsReport(), 3 * this.#o.config.cluster.statsIntervalMs)
      .catch((error) => this.#o.log.debug("stats report failed", { error: (error as Error).message }));
  }

  /**
   * Every READINESS_RETRY_MS: a check while the node is not ready or the store's breaker is not
   * closed, else one per READINESS_LOOP_MS
   * (a `/ready` request counts). One check at a time, none once draining.
   */
  #readinessTick(): void {
    const { gate } = this.#o;
    if (this.#probing || gate.phase === "draining") return;
    // An open store breaker counts as failing even if no check failed (a short outage between
    // two checks): the next passing check closes it, so publishes wait at most one fast period.
    const breaker = this.#o.storeBreaker?.state.kind;
    const failing = gate.phase === "starting" || gate.lastResult?.status === "not_ready" || (breaker !== undefined && breaker !== "closed");
    if (!failing && this.#o.now() - this.#lastProbeAt < READINESS_LOOP_MS) return;
    this.#probing = true;
    // runChecks never rejects. Free the slot before recording, so whoever sees the result may tick again.
    void this.#runChecks().then((result) => {
      this.#probing = false;
      this.#record(result);
    });
  }
}
