/**
 * A circuit breaker for calls to a dependency (the agent backend, Redis, the store): after enough
 * failures it fails fast instead of piling requests onto something that is down, then lets one
 * probe through to find out whether it came back.
 *
 * State is derived from timestamps and the injected clock whenever it is read: no timers, so a
 * breaker costs nothing while idle and tests drive time by hand.
 *
 * Why one file over 300 lines: most of it is the documented options and state union with examples;
 * the logic is ~120 lines.
 */

/** The breaker's state name, as reported in `/ws/stats`. */
export type CircuitStateName = "closed" | "half_open" | "open";

/**
 * The breaker's state, computed from the clock when read.
 *
 * - `closed`: calls pass; `failures` counts failures within the window.
 * - `open`: calls are rejected with {@linkcode BreakerOpenError} until the cooldown ends.
 * - `half_open`: the cooldown ended; one probe call may pass (`probing` while it runs).
 */
export type CircuitState =
  | { readonly kind: "closed"; readonly failures: number }
  | { readonly kind: "open"; readonly failures: number; readonly openedAt: number; readonly remainingCooldownMs: number }
  | { readonly kind: "half_open"; readonly failures: number; readonly openedAt: number; readonly probing: boolean };

/**
 * Numeric state for a gauge: 0 closed, 1 half open, 2 open (higher is worse).
 *
 * @example
 * CIRCUIT_STATE_VALUE[breaker.state.kind] // 0
 */
export const CIRCUIT_STATE_VALUE: Readonly<Record<CircuitStateName, 0 | 1 | 2>> = {
  closed: 0,
  half_open: 1,
  open: 2,
};

/**
 * The `Retry-After` (whole seconds) that stays honest for an answer guarded by a breaker in
 * `state`: while open, the rest of its cooldown (a retry sooner is refused again, however healthy
 * the dependency is by then); otherwise `fallbackS`.
 *
 * @example
 * retryAfterS(breaker.state, 2) // 2 while closed; 9 while open with 8.2 s of cooldown left
 */
export function retryAfterS(state: CircuitState, fallbackS: number): number {
  return state.kind === "open" ? Math.max(1, Math.ceil(state.remainingCooldownMs / 1000)) : fallbackS;
}

/** What {@linkcode CircuitBreaker.snapshot} reports for stats. */
export interface BreakerSnapshot {
  name: string;
  state: CircuitStateName;
  /** Failures counted in the current window (while open: the ones that opened it). */
  failures: number;
  openedAt?: number;
  remainingCooldownMs?: number;
}

/** Options for {@linkcode CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Names the breaker in errors, logs and stats. @default "breaker" */
  name?: string;
  /** Failures within `windowMs` that open the breaker. @default 5 */
  failureThreshold?: number;
  /** Sliding window in which failures are counted. @default 10_000 */
  windowMs?: number;
  /** How long the breaker stays open before it lets a probe through. @default 10_000 */
  recoveryMs?: number;
  /** The clock, in ms. @default Date.now */
  now?: () => number;
  /** Called on every transition; a throwing observer is ignored. */
  onStateChange?: (from: CircuitStateName, to: CircuitStateName) => void;
  /** Called for every counted failure with the count in the window; a throwing observer is ignored. */
  onFailure?: (error: unknown, failures: number) => void;
  /**
   * Whether an error counts against the dependency. Errors it rejects (a 4xx, a validation error)
   * pass through uncounted: the dependency answered, so for a probe they count as a success.
   * @default () => true
   */
  isFailure?: (error: unknown) => boolean;
}

/**
 * Thrown by {@linkcode CircuitBreaker.execute} while the breaker is open (or half open with its
 * probe already running): the call was not made.
 *
 * @example
 * try {
 *   await breaker.execute(() => agent.call(req));
 * } catch (error) {
 *   if (error instanceof BreakerOpenError) retryAfterMs = error.remainingCooldownMs;
 * }
 */
export class BreakerOpenError extends Error {
  override readonly name = "BreakerOpenError";
  /** Name of the breaker that refused the call. */
  readonly breaker: string;
  /** Milliseconds until a probe may pass; 0 when a probe is already running. */
  readonly remainingCooldownMs: number;

  constructor(breaker: string, remainingCooldownMs: number) {
    super(`Circuit breaker "${breaker}" is open: retry after ${remainingCooldownMs} ms`);
    this.breaker = breaker;
    this.remainingCooldownMs = remainingCooldownMs;
  }
}

/**
 * Closed → open after `failureThreshold` failures within `windowMs` → half open after
 * `recoveryMs` → closed after one successful probe, or open again if the probe fails.
 *
 * @example
 * const breaker = new CircuitBreaker({ name: "agent", failureThreshold: 5, recoveryMs: 10_000 });
 * const answer = await breaker.execute(() => fetch(agentUrl, { body }));
 * breaker.snapshot(); // { name: "agent", state: "closed", failures: 0 }
 */
export class CircuitBreaker {
  readonly #name: string;
  readonly #failureThreshold: number;
  readonly #windowMs: number;
  readonly #recoveryMs: number;
  readonly #now: () => number;
  readonly #onStateChange: CircuitBreakerOptions["onStateChange"];
  readonly #onFailure: CircuitBreakerOptions["onFailure"];
  readonly #isFailure: (error: unknown) => boolean;

  /** Timestamps of counted failures; pruned to the window on every read. */
  #failures: number[] = [];
  /** Set while open or half open. */
  #openedAt: number | undefined;
  /** The running half-open probe: only the call holding this token may close the breaker. */
  #probe: symbol | undefined;
  /** When the probe started: a probe that never settles must not hold the breaker half open forever. */
  #probeStartedAt = 0;
  /** The last state observers were told about, so clock-driven transitions are reported once. */
  #reported: CircuitStateName = "closed";

  constructor(options: CircuitBreakerOptions = {}) {
    const {
      name = "breaker",
      failureThreshold = 5,
      windowMs = 10_000,
      recoveryMs = 10_000,
      now = Date.now,
      onStateChange,
      onFailure,
      isFailure = () => true,
    } = options;
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1) {
      throw new RangeError(`Cannot create breaker "${name}": failureThreshold must be an integer >= 1, got ${failureThreshold}`);
    }
    if (!Number.isFinite(windowMs) || windowMs <= 0) {
      throw new RangeError(`Cannot create breaker "${name}": windowMs must be finite and > 0, got ${windowMs}`);
    }
    if (!Number.isFinite(recoveryMs) || recoveryMs < 0) {
      throw new RangeError(`Cannot create breaker "${name}": recoveryMs must be finite and >= 0, got ${recoveryMs}`);
    }
    if (typeof now !== "function" || typeof isFailure !== "function") {
      throw new TypeError(`Cannot create breaker "${name}": now and isFailure must be functions`);
    }
    this.#name = name;
    this.#failureThreshold = failureThreshold;
    this.#windowMs = windowMs;
    this.#recoveryMs = recoveryMs;
    this.#now = now;
    this.#onStateChange = onStateChange;
    this.#onFailure = onFailure;
    this.#isFailure = isFailure;
  }

  /**
   * The breaker's name.
   *
   * @example
   * new CircuitBreaker({ name: "redis" }).name // "redis"
   */
  get name(): string {
    return this.#name;
  }

  /**
   * The current state, computed from the clock.
   *
   * @example
   * const state = breaker.state;
   * if (state.kind === "open") console.log(`retry in ${state.remainingCooldownMs} ms`);
   */
  get state(): CircuitState {
    return this.#observe(this.#now());
  }

  /**
   * The current state as a gauge value: 0 closed, 1 half open, 2 open.
   *
   * @example
   * meter.createObservableGauge("courier_breaker_state").addCallback((r) => r.observe(breaker.stateValue));
   */
  get stateValue(): 0 | 1 | 2 {
    return CIRCUIT_STATE_VALUE[this.state.kind];
  }

  /**
   * A plain object for `/ws/stats`.
   *
   * @example
   * breaker.snapshot() // { name: "agent", state: "open", failures: 5, openedAt: 1700000000000, remainingCooldownMs: 8000 }
   */
  snapshot(): BreakerSnapshot {
    const state = this.state;
    const snapshot: BreakerSnapshot = { name: this.#name, state: state.kind, failures: state.failures };
    if (state.kind !== "closed") snapshot.openedAt = state.openedAt;
    if (state.kind === "open") snapshot.remainingCooldownMs = state.remainingCooldownMs;
    return snapshot;
  }

  /**
   * Runs `fn` unless the breaker is open, and counts its outcome.
   *
   * @throws {BreakerOpenError} when open, or when half open with the probe already running.
   * @example
   * const user = await breaker.execute(() => redis.get(key));
   */
  async execute<T>(fn: () => Promise<T>): Promise<T> {
    if (typeof fn !== "function") throw new TypeError(`Cannot execute through breaker "${this.#name}": fn is not a function`);
    const state = this.#observe(this.#now());
    let probe: symbol | undefined;
    if (state.kind === "open") throw new BreakerOpenError(this.#name, state.remainingCooldownMs);
    if (state.kind === "half_open") {
      if (state.probing) throw new BreakerOpenError(this.#name, 0);
      probe = this.#probe = Symbol("probe");
      this.#probeStartedAt = this.#now();
    }
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      if (this.#safeIsFailure(error)) this.#recordFailure(error, probe);
      else this.#recordSuccess(probe);
      throw error;
    }
    this.#recordSuccess(probe);
    return result;
  }

  /**
   * Runs a health check beside the traffic (the readiness loop's store check). When it succeeds
   * while the breaker was already open or half open as it started, the dependency is proven back
   * and the breaker closes at once, rather than refusing callers for the rest of the cooldown. Its
   * failure is not counted and its success while closed changes nothing: traffic decides when to
   * open. The check's error passes through.
   *
   * @example
   * checks.push({ name: "store", run: () => storeBreaker.probe(() => store.check()) });
   */
  async probe(check: () => Promise<void>): Promise<void> {
    const openedAt = this.#openedAt;
    await check();
    // Opened (again) while the check ran: failures newer than the check's start decide, not it.
    if (openedAt === undefined || openedAt !== this.#openedAt) return;
    this.#probe = undefined;
    this.#openedAt = undefined;
    this.#failures = [];
    this.#observe(this.#now());
  }

  #recordSuccess(probe: symbol | undefined): void {
    // A call that started while closed and ends after the breaker opened says nothing about now.
    if (probe === undefined || probe !== this.#probe) return;
    this.#probe = undefined;
    this.#openedAt = undefined;
    this.#failures = [];
    this.#observe(this.#now());
  }

  #recordFailure(error: unknown, probe: symbol | undefined): void {
    const now = this.#now();
    const state = this.#observe(now);
    if (probe !== undefined && probe === this.#probe) {
      this.#probe = undefined;
      this.#openedAt = now;
      this.#failures.push(now);
      this.#notifyFailure(error, this.#failures.length);
      this.#observe(now);
      return;
    }
    // Stragglers finishing while open or half open must not extend the cooldown.
    if (state.kind !== "closed") return;
    this.#failures.push(now);
    this.#prune(now);
    this.#notifyFailure(error, this.#failures.length);
    if (this.#failures.length >= this.#failureThreshold) {
      this.#openedAt = now;
      this.#observe(now);
    }
  }

  #prune(now: number): void {
    const cutoff = now - this.#windowMs;
    if (this.#failures.length > 0 && this.#failures[0]! <= cutoff) {
      this.#failures = this.#failures.filter((at) => at > cutoff);
    }
  }

  /** Computes the state and reports a transition the clock caused since the last read. */
  #observe(now: number): CircuitState {
    const state = this.#compute(now);
    if (state.kind !== this.#reported) {
      const from = this.#reported;
      this.#reported = state.kind;
      if (this.#onStateChange) {
        try {
          this.#onStateChange(from, state.kind);
        } catch {
          // An observer is for logs and metrics: it must never change what the breaker does.
        }
      }
    }
    return state;
  }

  #compute(now: number): CircuitState {
    if (this.#openedAt === undefined) {
      this.#prune(now);
      return { kind: "closed", failures: this.#failures.length };
    }
    const failures = this.#failures.length;
    const remaining = this.#openedAt + this.#recoveryMs - now;
    if (remaining > 0) return { kind: "open", failures, openedAt: this.#openedAt, remainingCooldownMs: remaining };
    // A probe outstanding for longer than a cooldown is presumed lost; a new one may replace it.
    const probing = this.#probe !== undefined && now - this.#probeStartedAt < this.#recoveryMs;
    return { kind: "half_open", failures, openedAt: this.#openedAt, probing };
  }

  #notifyFailure(error: unknown, failures: number): void {
    if (!this.#onFailure) return;
    try {
      this.#onFailure(error, failures);
    } catch {
      // See #observe: observers cannot break control flow.
    }
  }

  #safeIsFailure(error: unknown): boolean {
    try {
      return this.#isFailure(error);
    } catch {
      // A broken classifier should not hide a failing dependency.
      return true;
    }
  }
}
