/**
 * Cumulative acks, batched: at most one `ack` per channel per interval, carrying the highest
 * processed offset. Acks that cannot be sent (socket down) wait for the next flush.
 */
import type { Timers } from "./types.ts";

/** Options of `AckBatcher`. */
export interface AckBatcherOptions {
  intervalMs: number;
  timers: Timers;
  /** Sends one ack; returns false when it could not be sent (kept for the next flush). */
  send(channel: string, offset: number): boolean;
}

/**
 * Collects processed offsets and flushes them on a timer started by the first note of a batch.
 *
 * @example
 * const acks = new AckBatcher({ intervalMs: 100, timers: globalTimers, send: (channel, offset) => trySend({ type: "ack", channel, offset }) });
 * acks.note("user:a", 1);
 * acks.note("user:a", 2); // one ack {channel: "user:a", offset: 2} goes out 100 ms after the first note
 */
export class AckBatcher {
  #pending = new Map<string, number>();
  #timer: unknown = undefined;
  #options: AckBatcherOptions;

  /**
   * @example
   * new AckBatcher({ intervalMs: 100, timers: globalTimers, send: () => true });
   */
  constructor(options: AckBatcherOptions) {
    this.#options = options;
  }

  /**
   * Records that `offset` on `channel` is processed.
   *
   * @example
   * acks.note("job:42", 17);
   */
  note(channel: string, offset: number): void {
    const previous = this.#pending.get(channel);
    if (previous === undefined || offset > previous) this.#pending.set(channel, offset);
    if (this.#timer === undefined) {
      this.#timer = this.#options.timers.setTimeout(() => {
        this.#timer = undefined;
        this.flush();
      }, this.#options.intervalMs);
    }
  }

  /**
   * Sends every pending ack now (or only `channel`'s); unsent ones stay pending.
   *
   * @example
   * acks.flush(); // before closing
   */
  flush(channel?: string): void {
    const entries = channel === undefined ? [...this.#pending] : this.#pending.has(channel) ? [[channel, this.#pending.get(channel)!] as const] : [];
    for (const [ch, offset] of entries) {
      if (this.#options.send(ch, offset)) this.#pending.delete(ch);
    }
  }

  /**
   * Forgets `channel`'s pending ack.
   *
   * @example
   * acks.drop("user:a");
   */
  drop(channel: string): void {
    this.#pending.delete(channel);
  }

  /**
   * Cancels the timer (pending acks are kept).
   *
   * @example
   * acks.stop();
   */
  stop(): void {
    if (this.#timer !== undefined) this.#options.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
