/**
 * Guarantees every agent run a terminal event: a run whose `agent_completed` (or `agent_failed`)
 * has not been stored within `timeoutMs` of its start gets a critical `agent_failed {run, reason}`
 * on the run's channel, so no client waits forever on a run whose agent died.
 *
 * Runs start being tracked when the server starts them (an `rpc` answered by the demo agent or the
 * agent backend, naming a run) and, only with `trackPublished` (`agent.trackPublishedRuns`), when a
 * backend publishes `agent_started {run}` itself: a backend that runs its own agents owns their
 * outcome, and a server-made `agent_failed` 15 s into a run it is still driving would surprise it.
 * Terminal events end tracking whoever publishes them. It is per node: in cluster mode a run is
 * tracked by the node that started it.
 */
import type { PublishItem } from "../engine/types.ts";

const TERMINAL = new Set(["agent_completed", "agent_failed"]);
/** Longest run id tracked: ids come from backends, and a key must stay small. */
const MAX_RUN_ID = 128;
/** Runs tracked at once: a backend publishing starts in a loop must not grow this without bound. */
const MAX_RUNS = 100_000;

/** Options for {@linkcode AgentRunTracker}. */
export interface AgentRunTrackerOptions {
  /** How long a run may take before it is failed (`config.agent.executionTimeoutMs`). */
  timeoutMs: number;
  /** Stores the `agent_failed` event (critical). */
  fail: (channel: string, data: { run: string; reason: string; timeoutMs: number }) => Promise<unknown>;
  /** Called when storing `agent_failed` failed; the run is retried once a second, three times. */
  onError?: (error: unknown, channel: string, run: string) => void;
  /** Also track runs whose `agent_started` a backend published through the API (default false). */
  trackPublished?: boolean;
  /** A tracked run ended: how, and how long after its start (for `courier_agent_runs_total`). */
  onEnded?: (result: "completed" | "failed" | "timed_out", durationMs: number) => void;
  /** Clock for run durations. @default performance.now */
  now?: () => number;
}

/**
 * Tracks running agent runs.
 *
 * @example
 * const tracker = new AgentRunTracker({ timeoutMs: 15_000, fail: (channel, data) => publishFailed(channel, data) });
 * // as an Extension: published: (items) => tracker.observe(items)
 */
export class AgentRunTracker {
  readonly #timeoutMs: number;
  readonly #fail: AgentRunTrackerOptions["fail"];
  readonly #onError: AgentRunTrackerOptions["onError"];
  readonly #trackPublished: boolean;
  readonly #onEnded: AgentRunTrackerOptions["onEnded"];
  readonly #now: () => number;
  readonly #runs = new Map<string, ReturnType<typeof setTimeout>>();
  /** Start time of every tracked run, by the same key. */
  readonly #startedAt = new Map<string, number>();
  /** Runs whose `agent_failed` this tracker is storing: their end is a time-out, not a failure. */
  readonly #expiring = new Set<string>();
  #failed = 0;
  #stopped = false;

  constructor(options: AgentRunTrackerOptions) {
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
      throw new RangeError(`Cannot create agent tracker: timeoutMs must be finite and > 0, got ${options.timeoutMs}`);
    }
    this.#timeoutMs = options.timeoutMs;
    this.#fail = options.fail;
    this.#onError = options.onError;
    this.#trackPublished = options.trackPublished ?? false;
    this.#onEnded = options.onEnded;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Runs started and not yet terminated. */
  get active(): number {
    return this.#runs.size;
  }

  /** Runs this tracker failed for timing out. */
  get failed(): number {
    return this.#failed;
  }

  /**
   * Looks at stored events: a terminal event ends tracking; a start begins it only with
   * `trackPublished` (server-started runs are tracked by {@linkcode start} already).
   *
   * @example
   * tracker.observe([{ channel: "user:alice", event: "agent_started", dataJson: '{"run":"r1"}', critical: true }]);
   */
  observe(items: readonly PublishItem[]): void {
    for (const item of items) {
      if (!item.event.startsWith("agent_")) continue;
      const started = item.event === "agent_started";
      if (!started && !TERMINAL.has(item.event)) continue;
      const run = dataOf(item)?.run;
      if (typeof run !== "string" || run.length === 0 || run.length > MAX_RUN_ID) continue;
      if (!started) this.settle(item.channel, run, item.event === "agent_completed" ? "completed" : "failed");
      else if (this.#trackPublished) this.start(item.channel, run);
    }
  }

  /**
   * Starts (or keeps) tracking `run` on `channel`. A second start of the same run keeps the first
   * deadline: the budget is for the whole run.
   *
   * @example
   * tracker.start("user:alice", "r1");
   */
  start(channel: string, run: string): void {
    if (this.#stopped) return;
    const key = keyOf(channel, run);
    if (this.#runs.has(key) || this.#runs.size >= MAX_RUNS) return;
    const timer = setTimeout(() => this.#expire(channel, run, 0), this.#timeoutMs);
    timer.unref?.();
    this.#runs.set(key, timer);
    this.#startedAt.set(key, this.#now());
  }

  /**
   * The run reached a terminal event: stop tracking it.
   *
   * @example
   * tracker.settle("user:alice", "r1");
   */
  settle(channel: string, run: string, result?: "completed" | "failed" | "timed_out"): void {
    const key = keyOf(channel, run);
    const timer = this.#runs.get(key);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#runs.delete(key);
    const startedAt = this.#startedAt.get(key) ?? this.#now();
    this.#startedAt.delete(key);
    const ended = this.#expiring.delete(key) ? "timed_out" : result;
    if (ended) this.#onEnded?.(ended, this.#now() - startedAt);
  }

  /** Forgets every run (server stop): no `agent_failed` is published after this. */
  stop(): void {
    this.#stopped = true;
    for (const timer of this.#runs.values()) clearTimeout(timer);
    this.#runs.clear();
    this.#startedAt.clear();
    this.#expiring.clear();
  }

  #expire(channel: string, run: string, attempt: number): void {
    const key = keyOf(channel, run);
    if (!this.#runs.has(key) || this.#stopped) return;
    this.#expiring.add(key);
    this.#fail(channel, { run, reason: "timeout", timeoutMs: this.#timeoutMs }).then(
      () => {
        // Storing agent_failed went through the observer, which settled the run already.
        this.settle(channel, run, "timed_out");
        this.#failed++;
      },
      (error: unknown) => {
        this.#onError?.(error, channel, run);
        if (attempt >= 3 || this.#stopped) {
          this.settle(channel, run, "timed_out");
          return;
        }
        const retry = setTimeout(() => this.#expire(channel, run, attempt + 1), 1000);
        retry.unref?.();
        this.#runs.set(key, retry);
      },
    );
  }
}

function keyOf(channel: string, run: string): string {
  return `${channel}\n${run}`;
}

/**
 * The JSON object in an item's `dataJson`, or null when it is not an object. Only called for the
 * few event names a listener cares about, so ordinary publishes are never parsed twice.
 *
 * @example
 * dataOf({ dataJson: '{"run":"r1"}' } as PublishItem) // { run: "r1" }
 */
export function dataOf(item: PublishItem): Record<string, unknown> | null {
  try {
    const data: unknown = JSON.parse(item.dataJson);
    return typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
