/**
 * The server's timers, injected the way the SDK injects its own (packages/client/src/timers.ts): the
 * housekeeping loops take a `Scheduler`, tests drive a fake one, `src/main.ts` passes the real one.
 */

/** Runs work later; each call returns its cancel function. */
export interface Scheduler {
  /** Calls `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void): () => void;
  /** Calls `fn` once after `ms` unless cancelled. */
  after(ms: number, fn: () => void): () => void;
}

/**
 * `globalThis.setInterval`/`setTimeout`, looked up on each call so fake timers installed later apply.
 *
 * @example
 * const cancel = systemScheduler.every(1000, sweep);
 * cancel();
 */
export const systemScheduler: Scheduler = {
  every(ms, fn) {
    const handle = globalThis.setInterval(fn, ms);
    return () => globalThis.clearInterval(handle);
  },
  after(ms, fn) {
    const handle = globalThis.setTimeout(fn, ms);
    return () => globalThis.clearTimeout(handle);
  },
};
