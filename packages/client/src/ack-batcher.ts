/**
 * Cumulative acks, batched across channels: one flush every interval for all channels, each
 * channel's ack carrying its highest processed offset, and at most `maxFramesPerSecond` ack frames
 * per second in all however many channels are busy (the server counts acks apart from other
 * frames, with a generous bound; an older server counts them as frames: either way the SDK stays
 * well inside). Channels left over wait for the next flush, longest-waiting first; an ack is
 * cumulative, so waiting loses nothing. Acks that cannot be sent (socket down) wait too.
 */
import type { Timers } from "./types.ts";

/** Ack frames per second the batcher sends at most, by default: under half of the server's 50 frames/s. */
export const ACK_FRAMES_PER_SECOND = 20;

/** Options of `AckBatcher`. */
export interface AckBatcherOptions {
  intervalMs: number;
  /** Most ack frames sent per second by the timed flushes. @default ACK_FRAMES_PER_SECOND */
  maxFramesPerSecond?: number;
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
  /** Insertion order is waiting order: a sent channel is deleted and queues again at the end. */
  #pending = new Map<string, number>();
  #timer: unknown = undefined;
  #options: AckBatcherOptions;
  /** Frames one timed flush may send, so the flushes of one second stay within the cap. */
  #perFlush: number;

  /**
   * @example
   * new AckBatcher({ intervalMs: 100, timers: globalTimers, send: () => true });
   */
  constructor(options: AckBatcherOptions) {
    const perSecond = options.maxFramesPerSecond ?? ACK_FRAMES_PER_SECOND;
    if (!(perSecond > 0) || !Number.isFinite(perSecond)) throw new RangeError(`maxFramesPerSecond must be a finite number > 0, got ${perSecond}`);
    this.#options = options;
    // At least one frame per flush: a cap below one per interval would stretch the interval instead.
    this.#perFlush = Math.max(1, Math.floor((perSecond * options.intervalMs) / 1000));
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
    this.#arm();
  }

  /**
   * Sends every pending ack now (or only `channel`'s); unsent ones stay pending. Not capped: for
   * closing, and for a channel the server has just joined again.
   *
   * @example
   * acks.flush(); // before closing
   */
  flush(channel?: string): void {
    const entries = channel === undefined ? [...this.#pending] : this.#pending.has(channel) ? [[channel, this.#pending.get(channel)!] as const] : [];
    this.#send(entries);
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

  #arm(): void {
    if (this.#timer !== undefined) return;
    this.#timer = this.#options.timers.setTimeout(() => {
      this.#timer = undefined;
      this.#flushCapped();
    }, this.#options.intervalMs);
  }

  /** The timed flush: the longest-waiting channels first, at most `#perFlush` frames sent. */
  #flushCapped(): void {
    let sent = 0;
    for (const [ch, offset] of [...this.#pending]) {
      if (sent === this.#perFlush) {
        // Over the cap: the rest go next time. (Unsendable ones wait for a note or a flush.)
        this.#arm();
        return;
      }
      if (this.#options.send(ch, offset)) {
        this.#pending.delete(ch);
        sent++;
      }
    }
  }

  #send(entries: readonly (readonly [string, number])[]): void {
    for (const [ch, offset] of entries) {
      if (this.#options.send(ch, offset)) this.#pending.delete(ch);
    }
  }
}
