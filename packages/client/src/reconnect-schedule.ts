/**
 * When and where the next connection attempt goes: the backoff schedule (server hints first, and
 * they do not advance it) and URL failover (the next URL after each failed attempt).
 */
import { backoffDelay, type ResolvedBackoff } from "./backoff.ts";
import type { Timers } from "./types.ts";

/** Options of `ReconnectSchedule`. */
export interface ReconnectScheduleOptions {
  urls: readonly string[];
  backoff: ResolvedBackoff;
  random: () => number;
  timers: Timers;
}

/**
 * One timer at a time; `reset()` after a welcome starts the schedule over.
 *
 * @example
 * const schedule = new ReconnectSchedule({ urls, backoff: resolveBackoff(), random: Math.random, timers: globalTimers });
 * schedule.failed(); // next URL
 * schedule.schedule(() => dial(schedule.url)); // in 100 ms, then 500 ms, 1 s, 2 s …
 */
export class ReconnectSchedule {
  #o: ReconnectScheduleOptions;
  #attempt = 0;
  #failures = 0;
  #urlIndex = 0;
  #hintMs: number | undefined;
  #timer: unknown = undefined;
  #next: (() => void) | undefined;

  /** @example new ReconnectSchedule(options); */
  constructor(options: ReconnectScheduleOptions) {
    this.#o = options;
  }

  /** The endpoint of the next (or current) attempt. @example new URL(schedule.url); */
  get url(): string {
    return this.#o.urls[this.#urlIndex]!;
  }

  /**
   * Starts the schedule over (a welcome, or `connect()` after an offline close).
   *
   * @example
   * schedule.reset();
   */
  reset(): void {
    this.#attempt = 0;
    this.#failures = 0;
  }

  /**
   * Counts an attempt that got no welcome and moves to the next URL; returns the failures since
   * the last reset.
   *
   * @example
   * if (schedule.failed() >= 3) startPolling();
   */
  failed(): number {
    this.#urlIndex = (this.#urlIndex + 1) % this.#o.urls.length;
    return ++this.#failures;
  }

  /**
   * The next attempt waits `ms` instead of the schedule (a reconnect frame's `after`, a
   * `Retry-After`); `undefined` drops a hint. A scheduled attempt is moved at once.
   *
   * @example
   * schedule.hint(3000);
   */
  hint(ms: number | undefined): void {
    this.#hintMs = ms;
    if (ms !== undefined && this.#timer !== undefined && this.#next) this.schedule(this.#next);
  }

  /**
   * Runs `next` after the hint, else the schedule's next delay.
   *
   * @example
   * schedule.schedule(() => open());
   */
  schedule(next: () => void): void {
    this.cancel();
    let delay: number;
    if (this.#hintMs !== undefined) {
      delay = this.#hintMs;
      this.#hintMs = undefined;
    } else {
      delay = backoffDelay(this.#attempt++, this.#o.backoff, this.#o.random);
    }
    this.#next = next;
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = undefined;
      next();
    }, delay);
  }

  /** Cancels a scheduled attempt. @example schedule.cancel(); */
  cancel(): void {
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
