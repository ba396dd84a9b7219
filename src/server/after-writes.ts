/**
 * Bookkeeping that must not hold back the sockets. Bun sends what `server.publish` queued (and an
 * HTTP answer) only once the current callback and its microtasks have ended, so everything a
 * publish's turn runs after, or before, its `server.publish` delays every delivery of it: a
 * `queueMicrotask` would still run first, a `setImmediate` runs after the writes went out. Metric
 * records of the publish path wait here; their values are taken in the turn, only the recording
 * waits.
 */

/**
 * Runs tasks once the current turn's writes are out: one `setImmediate` per turn, tasks in order.
 *
 * @example
 * const later = new AfterWrites();
 * const ms = performance.now() - started;
 * later.run(() => histogram.record(ms / 1000));
 */
export class AfterWrites {
  readonly #tasks: (() => void)[] = [];
  #scheduled = false;

  run(task: () => void): void {
    this.#tasks.push(task);
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Looked up on each call, so fake timers installed later apply.
    globalThis.setImmediate(this.#drain);
  }

  readonly #drain = (): void => {
    this.#scheduled = false;
    const tasks = this.#tasks.splice(0);
    for (const task of tasks) {
      try {
        task();
      } catch {
        // A record that throws loses itself only: the others, and the server, carry on.
      }
    }
  };
}
