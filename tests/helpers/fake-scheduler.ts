/**
 * A scheduler whose time moves only when a test says so: `advance(ms)` runs every task due by then,
 * in time order, synchronously. Give the server the same clock (`now: scheduler.clock`).
 */
import type { Scheduler } from "../../src/server/scheduler.ts";

/** Runs what is due as the test moves time; records what is scheduled and what is cancelled. */
export class FakeScheduler implements Scheduler {
  /** The fake clock: starts where the test says, moves only with `advance`. */
  constructor(public now = 0) {}

  /** The clock as a function, for `now` options. */
  readonly clock = (): number => this.now;

  readonly #tasks = new Set<{ at: number; ms: number; repeat: boolean; fn: () => void }>();

  every(ms: number, fn: () => void): () => void {
    return this.#add(ms, fn, true);
  }

  after(ms: number, fn: () => void): () => void {
    return this.#add(ms, fn, false);
  }

  /** Scheduled tasks not cancelled nor run out. */
  get pending(): number {
    return this.#tasks.size;
  }

  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      let next: { at: number; ms: number; repeat: boolean; fn: () => void } | undefined;
      for (const task of this.#tasks) if (task.at <= until && (!next || task.at < next.at)) next = task;
      if (!next) break;
      this.now = next.at;
      if (next.repeat) next.at += next.ms;
      else this.#tasks.delete(next);
      next.fn();
    }
    this.now = until;
  }

  #add(ms: number, fn: () => void, repeat: boolean): () => void {
    const task = { at: this.now + ms, ms, repeat, fn };
    this.#tasks.add(task);
    return () => void this.#tasks.delete(task);
  }
}

