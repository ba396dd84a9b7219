/**
 * The schedule of the HTTP polling fallback: a round at once, then rounds spaced by an interval
 * that doubles up to a cap while the WebSocket stays down. Rounds never overlap.
 */
import type { Timers } from "./types.ts";

/** What a round may report back. */
export interface PollOutcome {
  /** The server asked to wait (HTTP `Retry-After`), in ms. */
  retryAfterMs?: number;
}

/** Options of `Poller`. */
export interface PollerOptions {
  timers: Timers;
  /** Delay after the first round (the client's `pollIntervalMs`, whose default is set there). */
  initialIntervalMs: number;
  /** Cap of the doubling (the client's `maxPollIntervalMs`). */
  maxIntervalMs: number;
  /** One polling round. */
  round(): Promise<PollOutcome | void>;
  /** A round that threw. */
  onError(error: unknown): void;
}

/**
 * Runs `round()` at 0, +2 s, +4 s, +8 s … +60 s, +60 s … from `start()` until `stop()`.
 *
 * @example
 * const poller = new Poller({ timers: globalTimers, initialIntervalMs: 2000, maxIntervalMs: 60_000, round: pollAllChannels, onError: console.error });
 * poller.start();
 * // when the WebSocket is live again:
 * poller.stop();
 */
export class Poller {
  #timers: Timers;
  #initialMs: number;
  #maxMs: number;
  #round: () => Promise<PollOutcome | void>;
  #onError: (error: unknown) => void;
  #active = false;
  #running = false;
  #intervalMs: number;
  #timer: unknown = undefined;
  #generation = 0;

  /**
   * @example
   * new Poller({ timers: globalTimers, initialIntervalMs: 1000, maxIntervalMs: 60_000, round: async () => {}, onError: () => {} });
   */
  constructor(options: PollerOptions) {
    const { initialIntervalMs, maxIntervalMs } = options;
    if (!(initialIntervalMs > 0)) throw new RangeError("poll initialIntervalMs must be > 0");
    if (!(maxIntervalMs >= initialIntervalMs)) throw new RangeError("poll maxIntervalMs must be >= initialIntervalMs");
    this.#timers = options.timers;
    this.#initialMs = initialIntervalMs;
    this.#maxMs = maxIntervalMs;
    this.#round = options.round;
    this.#onError = options.onError;
    this.#intervalMs = initialIntervalMs;
  }

  /** Whether polling is on. @example if (poller.active) showBanner(); */
  get active(): boolean {
    return this.#active;
  }

  /**
   * Starts polling (no-op when already on): one round now, the next after the initial interval.
   *
   * @example
   * poller.start();
   */
  start(): void {
    if (this.#active) return;
    this.#active = true;
    this.#intervalMs = this.#initialMs;
    this.#tick();
  }

  /**
   * Stops polling; a round in flight finishes but its outcome is ignored.
   *
   * @example
   * poller.stop();
   */
  stop(): void {
    if (!this.#active) return;
    this.#active = false;
    this.#generation++;
    this.#clear();
  }

  /**
   * Whether a round started under the current `start()` may still deliver (false once stopped).
   *
   * @example
   * const token = poller.generation; await fetchSomething(); if (!poller.isCurrent(token)) return;
   */
  isCurrent(generation: number): boolean {
    return this.#active && generation === this.#generation;
  }

  /** Identifies the current `start()`..`stop()` span. @example const g = poller.generation; */
  get generation(): number {
    return this.#generation;
  }

  #tick(): void {
    if (!this.#active) return;
    const delay = this.#intervalMs;
    this.#intervalMs = Math.min(this.#intervalMs * 2, this.#maxMs);
    this.#schedule(delay);
    if (this.#running) return;
    this.#running = true;
    const generation = this.#generation;
    this.#round().then(
      (outcome) => {
        this.#running = false;
        const retryAfterMs = outcome?.retryAfterMs;
        // Retry-After only ever pushes the next round later.
        if (retryAfterMs !== undefined && retryAfterMs > delay && this.isCurrent(generation)) this.#schedule(retryAfterMs);
      },
      (error: unknown) => {
        this.#running = false;
        if (this.isCurrent(generation)) this.#onError(error);
      },
    );
  }

  #schedule(ms: number): void {
    this.#clear();
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      this.#tick();
    }, ms);
  }

  #clear(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
