/**
 * Requests awaiting an answer, socket.io style: a `Map<id, pending>`, each entry settled and deleted
 * exactly once, on answer, error frame, timeout or connection loss.
 */
import { CourierError } from "./errors.ts";
import type { Timers } from "./types.ts";

interface Pending {
  resolve(frame: Record<string, unknown>): void;
  reject(error: unknown): void;
  timer: unknown;
}

/**
 * Pending requests keyed by a numeric id unique for the client's life.
 *
 * @example
 * const pending = new PendingRequests(globalTimers);
 * const { id, promise } = pending.create(15_000, (frame) => frame.data);
 * socket.send(JSON.stringify({ type: "rpc", id, method: "m", data: null }));
 * // later, from the message handler:
 * pending.resolve(id, { type: "result", id, data: 42 });
 */
export class PendingRequests {
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #timers: Timers;

  /**
   * @example
   * new PendingRequests({ setTimeout, clearTimeout });
   */
  constructor(timers: Timers) {
    this.#timers = timers;
  }

  /** How many requests await an answer. @example pending.size; // 0 */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Registers a request; its promise settles with `map(answer)`, or rejects with a `CourierError`
   * (`timeout`) after `timeoutMs`.
   *
   * @example
   * const { id, promise } = pending.create(1000, () => undefined);
   */
  create<T>(timeoutMs: number, map: (frame: Record<string, unknown>) => T): { id: number; promise: Promise<T> } {
    const id = this.#nextId++;
    const promise = new Promise<T>((resolve, reject) => {
      const timer = this.#timers.setTimeout(() => {
        this.reject(id, new CourierError("timeout", `request ${id} timed out after ${timeoutMs} ms`, { requestId: id }));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (frame) => {
          try {
            resolve(map(frame));
          } catch (error) {
            reject(error);
          }
        },
        reject,
        timer,
      });
    });
    return { id, promise };
  }

  /**
   * Settles request `id` with its answer frame; false when no such request is pending.
   *
   * @example
   * pending.resolve(3, { type: "pong", id: 3, ts: 1 });
   */
  resolve(id: unknown, frame: Record<string, unknown>): boolean {
    const entry = this.#take(id);
    entry?.resolve(frame);
    return entry !== undefined;
  }

  /**
   * Rejects request `id`; false when no such request is pending.
   *
   * @example
   * pending.reject(3, new CourierError("forbidden", "not yours", { requestId: 3 }));
   */
  reject(id: unknown, error: unknown): boolean {
    const entry = this.#take(id);
    entry?.reject(error);
    return entry !== undefined;
  }

  /**
   * Settles the request an answer frame (`subscribed`, `unsubscribed`, `pong`, `result` or
   * `error`) names; false when it names none (an error frame then concerns the connection).
   *
   * @example
   * if (!pending.answer(frame)) onConnectionError(CourierError.fromFrame(frame));
   */
  answer(frame: Record<string, unknown>): boolean {
    return frame.type === "error" ? this.reject(frame.id, CourierError.fromFrame(frame)) : this.resolve(frame.id, frame);
  }

  /**
   * Rejects every pending request, e.g. on connection loss.
   *
   * @example
   * pending.rejectAll(new CourierError("unavailable", "connection lost"));
   */
  rejectAll(error: unknown): void {
    for (const id of [...this.#pending.keys()]) this.reject(id, error);
  }

  #take(id: unknown): Pending | undefined {
    if (typeof id !== "number") return undefined;
    const entry = this.#pending.get(id);
    if (!entry) return undefined;
    this.#pending.delete(id);
    this.#timers.clearTimeout(entry.timer);
    return entry;
  }
}
