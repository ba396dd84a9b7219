/**
 * Connection handling around `Bun.RedisClient`: fail fast instead of queueing, bound every
 * command, and reconnect after Bun gives up. See BUN-NOTES.md: Bun retries 20 times, then runs
 * `onclose` and stays closed until `connect()` is called again.
 */
import { RedisClient } from "bun";
import { StoreUnavailableError } from "./types.ts";

export type LogFn = (level: string, msg: string, fields?: object) => void;

/**
 * Options for every Courier Redis connection. The offline queue is off: a command sent while the
 * connection is down rejects at once (a publish answers 503 instead of waiting, and is never
 * sent later behind the caller's back).
 */
export const CLIENT_OPTIONS = { enableOfflineQueue: false, autoReconnect: true, connectionTimeout: 2_000 } as const;

/**
 * Rejects with `StoreUnavailableError` when `promise` does not settle within `ms`, and turns every
 * Redis failure into one. The command may still run later; callers rely on idempotency for that.
 *
 * @example
 * await withTimeout(client.send("PING", []), 1_000, "ping");
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const { promise: result, resolve, reject } = Promise.withResolvers<T>();
  const timer = setTimeout(() => reject(new StoreUnavailableError(`Redis ${what}: no answer within ${ms} ms`)), ms);
  promise.then(
    (value) => {
      clearTimeout(timer);
      resolve(value);
    },
    (error: unknown) => {
      clearTimeout(timer);
      reject(error instanceof StoreUnavailableError ? error : new StoreUnavailableError(`Redis ${what}: ${(error as Error)?.message ?? error}`, { cause: error }));
    },
  );
  return result;
}

/**
 * Keeps `client` connected: when Bun runs `onclose` after its own retries (and the close was not
 * ours), calls `connect()` again every `retryMs` until it succeeds or `stop` is called. `onConnect`
 * runs on every connect, including reconnects Bun makes by itself. Returns the stop function.
 *
 * @example
 * const stop = keepConnected(sub, { name: "subscriber", retryMs: 1_000, log, onConnect: resubscribe });
 */
export function keepConnected(
  client: RedisClient,
  o: { name: string; clientName?: string; retryMs: number; log: LogFn; onConnect?: () => void },
): () => void {
  // Named connections let operators (and tests) find a node's connections in CLIENT LIST.
  const setName = () => {
    if (!o.clientName) return;
    client.send("CLIENT", ["SETNAME", o.clientName.replace(/[^\w.:@#-]/g, "_")]).catch(() => {});
  };
  if (client.connected) setName();
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const retry = () => {
    timer = null;
    if (stopped || client.connected) return;
    client.connect().catch(() => {
      // Bun reports the final failure through onclose, which schedules the next attempt.
    });
  };
  /** When the current outage began (0: connected); one warning per outage, not per attempt. */
  let downSince = 0;
  client.onconnect = () => {
    o.log("info", "redis connected", downSince ? { connection: o.name, downMs: Date.now() - downSince } : { connection: o.name });
    downSince = 0;
    setName();
    o.onConnect?.();
  };
  client.onclose = (error: Error) => {
    if (stopped) return;
    if (!downSince) {
      downSince = Date.now();
      o.log("warn", "redis connection lost; reconnecting", { connection: o.name, error: error?.message });
    }
    timer ??= setTimeout(retry, o.retryMs);
    timer.unref?.();
  };
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

/** Connects within `ms`, or resolves false and leaves Bun (and `keepConnected`) retrying. */
export async function connectWithin(client: RedisClient, ms: number): Promise<boolean> {
  try {
    await withTimeout(client.connect(), ms, "connect");
    return true;
  } catch {
    return false;
  }
}

/**
 * Unsubscribes `channels`, then subscribes them with `onMessage`. BUN-NOTES: after a reconnect
 * Bun's subscriber receives nothing until it does both, and subscribing without unsubscribing
 * first delivers every message twice. A failed unsubscribe is ignored (Bun throws synchronously on
 * a connection not in subscriber mode yet: nothing to undo); a failed subscribe rejects. With
 * `bound`, each command is bounded by `timeoutMs` and named `<what> unsubscribe`/`<what> subscribe`.
 *
 * @example
 * await resubscribe(sub, ["courier:{ctl}"], onMessage, { timeoutMs: 1_000, what: "control" });
 */
export async function resubscribe(
  sub: Pick<RedisClient, "subscribe" | "unsubscribe">,
  channels: string[],
  onMessage: (message: string, channel: string) => void,
  bound?: { timeoutMs: number; what?: string },
): Promise<void> {
  const within = <T>(promise: Promise<T>, command: string) =>
    bound ? withTimeout(promise, bound.timeoutMs, bound.what ? `${bound.what} ${command}` : command) : promise;
  try {
    await within(sub.unsubscribe(channels), "unsubscribe");
  } catch {
    // Not subscribed: nothing to undo.
  }
  await within(sub.subscribe(channels, onMessage), "subscribe");
}

export { RedisClient };
