/**
 * Deadlines: one absolute point in time passed down a call chain, so nested work shares one budget
 * instead of stacking timeouts (an rpc with 15 s whose store call adds its own 3 s still ends at 15 s).
 */

/**
 * The deadline passed before the work finished. `budgetMs` is the time the work was given.
 *
 * @example
 * try {
 *   await Deadline.after(50).run((signal) => fetch(url, { signal }));
 * } catch (error) {
 *   if (error instanceof DeadlineExceededError) console.log(`gave up after ${error.budgetMs} ms`);
 * }
 */
export class DeadlineExceededError extends Error {
  override readonly name = "DeadlineExceededError";
  /** The budget, in ms, that ran out. */
  readonly budgetMs: number;

  constructor(budgetMs: number) {
    super(`Deadline of ${budgetMs} ms exceeded`);
    this.budgetMs = budgetMs;
  }
}

/** setTimeout fires at once past this (about 24.8 days): treat longer budgets as unbounded. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function checkMs(what: string, ms: number): void {
  if (typeof ms !== "number" || Number.isNaN(ms) || ms < 0) {
    throw new RangeError(`Cannot create deadline: ${what} must be a number >= 0, got ${ms}`);
  }
}

/**
 * A point in time by which work must finish, read through an injectable clock.
 *
 * @example
 * const deadline = Deadline.after(15_000);
 * const session = await deadline.child(3_000).run((signal) => store.loadSession(id, signal));
 * const answer = await deadline.run((signal) => agent.call(req, signal)); // what is left of 15 s
 */
export class Deadline {
  readonly #at: number;
  readonly #budgetMs: number;
  readonly #now: () => number;
  #signal: AbortSignal | undefined;

  private constructor(budgetMs: number, now: () => number) {
    this.#budgetMs = budgetMs;
    this.#now = now;
    this.#at = now() + budgetMs;
  }

  /**
   * A deadline `ms` from now. `Infinity` means none.
   *
   * @throws {RangeError} when `ms` is negative or NaN.
   * @example
   * const deadline = Deadline.after(5_000);
   * const fake = Deadline.after(100, () => clock.now); // tests drive the clock
   */
  static after(ms: number, now: () => number = Date.now): Deadline {
    checkMs("ms", ms);
    if (typeof now !== "function") throw new TypeError("Cannot create deadline: now must be a function");
    return new Deadline(ms, now);
  }

  /**
   * The budget this deadline was created with, in ms.
   *
   * @example
   * Deadline.after(50).budgetMs // 50
   */
  get budgetMs(): number {
    return this.#budgetMs;
  }

  /**
   * The absolute time (on this deadline's clock) at which it expires.
   *
   * @example
   * Deadline.after(50, () => 1000).at // 1050
   */
  get at(): number {
    return this.#at;
  }

  /**
   * Milliseconds left, never negative.
   *
   * @example
   * Deadline.after(50).remainingMs() // 50 (or a little less)
   */
  remainingMs(): number {
    return Math.max(0, this.#at - this.#now());
  }

  /**
   * Whether the deadline has passed.
   *
   * @example
   * if (deadline.expired) return reply503();
   */
  get expired(): boolean {
    return this.#now() >= this.#at;
  }

  /**
   * A deadline for a sub-step: `timeoutMs` or what is left of this one, whichever is shorter.
   *
   * @example
   * Deadline.after(100).child(1_000).budgetMs // 100: a child never outlives its parent
   */
  child(timeoutMs: number): Deadline {
    checkMs("timeoutMs", timeoutMs);
    return new Deadline(Math.min(timeoutMs, this.remainingMs()), this.#now);
  }

  /**
   * An `AbortSignal` that aborts when the deadline passes, created on first read. It uses
   * `AbortSignal.timeout`, whose timer the runtime owns: it does not keep the process alive and
   * needs no clearing. Its reason is a `DOMException` named `TimeoutError`.
   *
   * @example
   * await fetch(url, { signal: deadline.signal });
   */
  get signal(): AbortSignal {
    if (this.#signal) return this.#signal;
    const remaining = this.remainingMs();
    if (remaining === 0) {
      this.#signal = AbortSignal.abort(new DOMException("Deadline exceeded", "TimeoutError"));
    } else if (remaining > MAX_TIMER_MS) {
      this.#signal = new AbortController().signal;
    } else {
      this.#signal = AbortSignal.timeout(Math.ceil(remaining));
    }
    return this.#signal;
  }

  /**
   * Runs `fn` with a signal that aborts at the deadline, and rejects with
   * {@linkcode DeadlineExceededError} as soon as the deadline passes, whether or not `fn` heeds the
   * signal. An already expired deadline rejects without calling `fn`.
   *
   * @example
   * const rows = await Deadline.after(3_000).run((signal) => db.query(sql, { signal }));
   */
  run<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (typeof fn !== "function") return Promise.reject(new TypeError("Cannot run: fn is not a function"));
    if (this.expired) return Promise.reject(new DeadlineExceededError(this.#budgetMs));
    const controller = new AbortController();
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const remaining = this.remainingMs();
    const timer =
      remaining > MAX_TIMER_MS
        ? undefined
        : setTimeout(() => {
            const error = new DeadlineExceededError(this.#budgetMs);
            controller.abort(error);
            reject(error);
          }, remaining);
    let work: Promise<T>;
    try {
      work = Promise.resolve(fn(controller.signal));
    } catch (error) {
      work = Promise.reject(error);
    }
    // Cleared before settling, so no timer outlives the awaited result.
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
    return promise;
  }
}

/**
 * Rejects with {@linkcode DeadlineExceededError} if `promise` has not settled within `ms`. The
 * underlying work is not cancelled (use {@linkcode Deadline.run} to pass a signal); its timer is
 * cleared either way.
 *
 * @example
 * const pong = await withTimeout(client.ping(), 5_000);
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  checkMs("ms", ms);
  return Deadline.after(ms).run(() => promise);
}
