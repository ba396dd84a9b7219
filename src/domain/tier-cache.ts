/**
 * User tiers for tokens that carry no `tier` claim, from a tier provider behind a cache: looked up
 * once when a user connects (never per broadcast: signals reach users through the channels they
 * joined), asked in batches (every user asked within one turn goes into one provider call),
 * refreshed in the background, and dropped when the user's last connection closes.
 */
import { isTier, type Tier } from "../protocol/codes.ts";

/**
 * Answers the tiers of several users at once; a user left out (or null) keeps the default tier.
 * `signal` aborts when the lookup's budget runs out.
 */
export type TierProvider = (users: readonly string[], signal: AbortSignal) => Promise<ReadonlyMap<string, Tier | null> | Readonly<Record<string, Tier | null | undefined>>>;

/** Options for {@linkcode TierCache}. */
export interface TierCacheOptions {
  provider: TierProvider;
  /** How often cached users are asked again, in one batch. @default 60_000 */
  refreshMs?: number;
  /** Budget for one provider call; past it the users connect with the default tier. @default 2_000 */
  timeoutMs?: number;
  /** Most users in one provider call. @default 500 */
  maxBatch?: number;
  /** A refresh changed these users' tiers (open connections may adopt them). */
  onChange?: (changed: ReadonlyMap<string, Tier | null>) => void;
  /** The provider failed; users connect with the default tier and are asked again next time. */
  onError?: (error: unknown) => void;
}

interface Entry {
  tier: Tier | null;
  /** Open connections that use this entry; the last close drops it. */
  connections: number;
  /** Refreshes since the entry had no connection (an upgrade refused after its lookup). */
  idleRefreshes: number;
}

/**
 * Cached, batched tier lookups.
 *
 * @example
 * const tiers = new TierCache({ provider: async (users) => billing.tiersOf(users) });
 * const tier = await tiers.tierOf("alice"); // one provider call for everyone asked this turn
 * tiers.opened("alice"); // … tiers.closed("alice") drops it after the last connection
 */
export class TierCache {
  readonly #provider: TierProvider;
  readonly #refreshMs: number;
  readonly #timeoutMs: number;
  readonly #maxBatch: number;
  readonly #onChange: TierCacheOptions["onChange"];
  readonly #onError: TierCacheOptions["onError"];
  readonly #entries = new Map<string, Entry>();
  /** Users asked and not answered yet: the next batch. */
  readonly #queued = new Map<string, PromiseWithResolvers<Tier | null>>();
  /** Users whose batch is at the provider, so a second ask joins it. */
  readonly #inFlight = new Map<string, Promise<Tier | null>>();
  #flushScheduled = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #refreshing = false;
  #calls = 0;

  constructor(options: TierCacheOptions) {
    const { provider, refreshMs = 60_000, timeoutMs = 2_000, maxBatch = 500 } = options;
    if (typeof provider !== "function") throw new TypeError("Cannot create tier cache: provider must be a function");
    for (const [name, value] of Object.entries({ refreshMs, timeoutMs, maxBatch })) {
      if (!Number.isFinite(value) || value <= 0) throw new RangeError(`Cannot create tier cache: ${name} must be finite and > 0, got ${value}`);
    }
    this.#provider = provider;
    this.#refreshMs = refreshMs;
    this.#timeoutMs = timeoutMs;
    this.#maxBatch = maxBatch;
    this.#onChange = options.onChange;
    this.#onError = options.onError;
  }

  /** Users cached. */
  get size(): number {
    return this.#entries.size;
  }

  /** Provider calls made so far (stats). */
  get providerCalls(): number {
    return this.#calls;
  }

  /**
   * The user's tier: at once when cached, else after the batch that asks for it (null: default).
   *
   * @example
   * principal.tier = (await tiers.tierOf(principal.user)) ?? principal.tier;
   */
  tierOf(user: string): Tier | null | Promise<Tier | null> {
    const entry = this.#entries.get(user);
    if (entry) return entry.tier;
    const inFlight = this.#inFlight.get(user);
    if (inFlight) return inFlight;
    let queued = this.#queued.get(user);
    if (!queued) {
      queued = Promise.withResolvers<Tier | null>();
      this.#queued.set(user, queued);
      this.#scheduleFlush();
    }
    return queued.promise;
  }

  /**
   * A connection of `user` that took its tier from this cache opened.
   *
   * @example
   * tiers.opened("alice");
   */
  opened(user: string): void {
    const entry = this.#entries.get(user);
    if (entry) {
      entry.connections++;
      entry.idleRefreshes = 0;
    }
  }

  /**
   * A connection of `user` that took its tier from this cache closed; the last one drops the entry.
   *
   * @example
   * tiers.closed("alice");
   */
  closed(user: string): void {
    const entry = this.#entries.get(user);
    if (!entry) return;
    if (--entry.connections <= 0) this.#entries.delete(user);
  }

  /**
   * Asks the provider again for every cached user, in batches; reports changes to `onChange`.
   *
   * @example
   * await tiers.refresh();
   */
  async refresh(): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    try {
      const users: string[] = [];
      for (const [user, entry] of this.#entries) {
        // Looked up for an upgrade that never opened: forget it rather than refresh it forever.
        if (entry.connections <= 0 && ++entry.idleRefreshes > 1) this.#entries.delete(user);
        else users.push(user);
      }
      const changed = new Map<string, Tier | null>();
      for (let i = 0; i < users.length; i += this.#maxBatch) {
        const batch = users.slice(i, i + this.#maxBatch);
        let answers: Map<string, Tier | null>;
        try {
          answers = await this.#ask(batch);
        } catch (error) {
          this.#onError?.(error);
          continue; // keep the tiers we had: a provider outage must not demote anyone
        }
        for (const user of batch) {
          const entry = this.#entries.get(user);
          const tier = answers.get(user) ?? null;
          if (entry && entry.tier !== tier) {
            entry.tier = tier;
            changed.set(user, tier);
          }
        }
      }
      if (changed.size > 0) this.#onChange?.(changed);
    } finally {
      this.#refreshing = false;
    }
  }

  /**
   * Starts the background refresh.
   *
   * @example
   * tiers.start(); // … tiers.stop() on shutdown
   */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.refresh(), this.#refreshMs);
    this.#timer.unref?.();
  }

  /**
   * Stops the background refresh; pending lookups still settle.
   *
   * @example
   * tiers.stop();
   */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // A macrotask, not a microtask: upgrades that arrive in the same loop iteration join the batch.
    setTimeout(() => {
      this.#flushScheduled = false;
      void this.#flush();
    }, 0);
  }

  async #flush(): Promise<void> {
    const queued = [...this.#queued];
    this.#queued.clear();
    for (let i = 0; i < queued.length; i += this.#maxBatch) {
      const batch = queued.slice(i, i + this.#maxBatch);
      for (const [user, waiter] of batch) this.#inFlight.set(user, waiter.promise);
      let answers: Map<string, Tier | null> | null = null;
      try {
        answers = await this.#ask(batch.map(([user]) => user));
      } catch (error) {
        this.#onError?.(error);
      }
      for (const [user, waiter] of batch) {
        this.#inFlight.delete(user);
        if (!answers) {
          waiter.resolve(null); // not cached: the next connect asks again
          continue;
        }
        const tier = answers.get(user) ?? null;
        if (!this.#entries.has(user)) this.#entries.set(user, { tier, connections: 0, idleRefreshes: 0 });
        waiter.resolve(tier);
      }
    }
  }

  async #ask(users: string[]): Promise<Map<string, Tier | null>> {
    this.#calls++;
    const signal = AbortSignal.timeout(this.#timeoutMs);
    const { promise: timedOut, reject } = Promise.withResolvers<never>();
    const onAbort = () => reject(new Error(`the tier provider did not answer within ${this.#timeoutMs} ms`));
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const raw = await Promise.race([this.#provider(users, signal), timedOut]);
      const entries = raw instanceof Map ? [...raw] : Object.entries(raw as Record<string, Tier | null | undefined>);
      const answers = new Map<string, Tier | null>();
      for (const [user, tier] of entries) answers.set(user, isTier(tier) ? tier : null);
      return answers;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}
