/** Default timers and clock, resolved at call time so that fake timers installed later apply. */
import type { Clock, Timers } from "./types.ts";

/**
 * `globalThis.setTimeout`/`clearTimeout`, looked up on each call.
 *
 * @example
 * const handle = globalTimers.setTimeout(() => {}, 100);
 * globalTimers.clearTimeout(handle);
 */
export const globalTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * `Date.now()`, looked up on each call.
 *
 * @example
 * const t0 = systemClock.now();
 */
export const systemClock: Clock = { now: () => Date.now() };
