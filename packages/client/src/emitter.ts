/** A typed observer list whose `on()` returns the unsubscribe function. */

/**
 * Listeners per event name. A throwing listener never breaks the emitter's caller: the error goes
 * to `onListenerError`.
 *
 * @example
 * const e = new Emitter<{ status: string }>(console.error);
 * const off = e.on("status", (s) => console.log(s));
 * e.emit("status", "live");
 * off();
 */
export class Emitter<M> {
  #listeners = new Map<keyof M, Set<(value: never) => void>>();
  #onListenerError: (error: unknown, type: keyof M) => void;

  /**
   * @example
   * new Emitter<{ tick: number }>((err) => console.error(err));
   */
  constructor(onListenerError: (error: unknown, type: keyof M) => void) {
    this.#onListenerError = onListenerError;
  }

  /**
   * Adds a listener; returns the function that removes it (idempotent).
   *
   * @example
   * const off = emitter.on("tick", (n) => console.log(n));
   * off();
   */
  on<K extends keyof M>(type: K, fn: (value: M[K]) => void): () => void {
    if (typeof fn !== "function") throw new TypeError(`Cannot listen to ${String(type)}: listener is not a function`);
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    // Wrapping makes each on() independent, even for the same function twice.
    const entry = (value: never) => fn(value as M[K]);
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  /**
   * Calls every listener of `type` with `value`.
   *
   * @example
   * emitter.emit("tick", 1);
   */
  emit<K extends keyof M>(type: K, value: M[K]): void {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as (v: M[K]) => void)(value);
      } catch (error) {
        this.#onListenerError(error, type);
      }
    }
  }
}
