/**
 * Process gauges: memory, CPU and event-loop delay, read at collection time (every scrape or OTLP
 * export) so nothing runs between scrapes except the event-loop delay sampler of `perf_hooks`,
 * which works on Bun 1.4.4 (checked: `monitorEventLoopDelay` reports values and does not keep the
 * process alive).
 */
import type { Meter } from "@opentelemetry/api";
import { monitorEventLoopDelay } from "node:perf_hooks";

type IntervalHistogram = ReturnType<typeof monitorEventLoopDelay>;

/** Sampling period of the event-loop delay monitor. */
const LOOP_RESOLUTION_MS = 10;
/**
 * The delay window restarts when read, but never more often than this: the Prometheus reader and
 * an OTLP push read moments apart and must see the same window, not one of them an empty one.
 */
const LOOP_WINDOW_MIN_MS = 5_000;

/** Event-loop delay figures of one window, in seconds. */
export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

/**
 * A windowed reader over `monitorEventLoopDelay`: each read answers the window since the previous
 * one (at least {@link LOOP_WINDOW_MIN_MS} long), so a stall shows on the next scrape and then goes.
 * The monitor starts on the first read: a meter nobody collects costs nothing.
 */
export class LoopDelayWindow {
  #monitor: IntervalHistogram | undefined;
  #last: LoopDelay = { p50: 0, p99: 0, max: 0 };
  #since = 0;
  readonly #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  read(): LoopDelay {
    const now = this.#now();
    if (!this.#monitor) {
      this.#monitor = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
      this.#monitor.enable();
      this.#since = now;
      return this.#last;
    }
    if (now - this.#since < LOOP_WINDOW_MIN_MS) return this.#last;
    const h = this.#monitor;
    // The histogram is in ns; an empty window reports NaN/huge sentinel values on some runtimes.
    const s = (ns: number) => (Number.isFinite(ns) && ns > 0 && ns < 3.6e12 ? ns / 1e9 : 0);
    this.#last = { p50: s(h.percentile(50)), p99: s(h.percentile(99)), max: s(h.max) };
    h.reset();
    this.#since = now;
    return this.#last;
  }

  stop(): void {
    this.#monitor?.disable();
  }
}

/**
 * Registers the process instruments on `meter`. Returns the loop-delay window's stop.
 *
 * @example
 * const stop = processMetrics(meter); // courier_process_* and courier_event_loop_delay_seconds
 */
export function processMetrics(meter: Meter): () => void {
  const loop = new LoopDelayWindow();
  const resident = meter.createObservableGauge("courier_process_resident_memory_bytes", { description: "Resident set size", unit: "By" });
  const heap = meter.createObservableGauge("courier_process_heap_bytes", { description: "JavaScript heap by state (used, total)", unit: "By" });
  const cpu = meter.createObservableCounter("courier_process_cpu_seconds_total", { description: "CPU time consumed by mode (user, system)" });
  const delay = meter.createObservableGauge("courier_event_loop_delay_seconds", {
    description: "Event-loop delay over the last window (at least 5 s) by stat: p50, p99, max",
  });
  meter.addBatchObservableCallback(
    (result) => {
      const memory = process.memoryUsage();
      result.observe(resident, memory.rss);
      result.observe(heap, memory.heapUsed, { state: "used" });
      result.observe(heap, memory.heapTotal, { state: "total" });
      const usage = process.cpuUsage();
      result.observe(cpu, usage.user / 1e6, { mode: "user" });
      result.observe(cpu, usage.system / 1e6, { mode: "system" });
      const d = loop.read();
      for (const stat of ["p50", "p99", "max"] as const) result.observe(delay, d[stat], { stat });
    },
    [resident, heap, cpu, delay],
  );
  return () => loop.stop();
}
