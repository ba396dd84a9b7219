/**
 * The serializer slow path for publish bodies (PROTOCOL §2): large bodies are parsed in a worker
 * under a time budget, so one pathological payload costs a 503/400 instead of freezing the event
 * loop that every WebSocket shares. Small bodies take {@linkcode parsePublishSync} on the main
 * thread; both produce the same output because the worker runs that same function.
 *
 * Output: each publish item's `data` is replaced by its JSON text in `dataJson`, ready for
 * `eventFrame()`, so the payload is serialized exactly once.
 */
import { serializeData } from "./serializer.ts";
import { batchItemsExceed, exceedsDepth } from "./json-depth.ts";

/** Why a body was refused: not JSON, nested deeper than allowed, not a JSON object, or a batch over its item limit. */
export type JsonGuardErrorCode = "bad_json" | "too_deep" | "not_object" | "too_many_items";

/**
 * The body was refused; answer 400 with `code`.
 *
 * @example
 * try {
 *   parsePublishSync(text, 32);
 * } catch (error) {
 *   if (error instanceof JsonGuardError) return badRequest(error.code, error.message);
 * }
 */
export class JsonGuardError extends Error {
  override readonly name = "JsonGuardError";
  readonly code: JsonGuardErrorCode;

  constructor(code: JsonGuardErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * The worker did not finish within the budget; it was terminated. Answer 503 with `Retry-After`.
 *
 * @example
 * if (error instanceof SerializeTimeoutError) return unavailable(`parse exceeded ${error.timeoutMs} ms`);
 */
export class SerializeTimeoutError extends Error {
  override readonly name = "SerializeTimeoutError";
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super(`Publish body not parsed within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A parsed publish body: a single publish has `dataJson` instead of `data`; a batch keeps its
 * `items`, each item object having `dataJson` instead of `data`. Nothing is validated beyond that.
 */
export interface ParsedPublish {
  [field: string]: unknown;
  dataJson?: string;
  items?: unknown;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** In place: a client-sent `dataJson` is always overwritten, never trusted. */
function serializeItem(item: Record<string, unknown>): void {
  item.dataJson = serializeData(item.data);
  delete item.data;
}

/**
 * Bodies longer than this have their batch counted by a scan before JSON.parse: a million `{}`
 * fit in 4 MiB, and building them only to refuse the count took a loaded machine's worker past the
 * serializer budget (a 503 instead of the 400). Shorter bodies hold too few items to matter.
 */
const PRESCAN_BYTES = 64 * 1024;

const tooManyItems = (maxItems: number) => new JsonGuardError("too_many_items", `a batch holds at most ${maxItems} items`);

/**
 * Parses a publish body on the calling thread: checks depth, parses, and turns `data` into
 * `dataJson` (the top-level object unless it is a pure batch: `items` and no `channel`, `event`
 * or `data`; every object in `items`). A client-sent `dataJson` never survives.
 * Use it for bodies under `delivery.slowPathBytes`; larger ones go through {@linkcode createJsonGuard}.
 *
 * @throws {JsonGuardError} `bad_json`, `too_deep`, `not_object` or `too_many_items`.
 * @example
 * parsePublishSync('{"channel":"user:a","event":"x","data":{"n":1}}', 32)
 * // { channel: "user:a", event: "x", dataJson: '{"n":1}' }
 * parsePublishSync('{"items":[{"channel":"user:a","event":"x"}]}', 32)
 * // { items: [{ channel: "user:a", event: "x", dataJson: "null" }] }
 */
export function parsePublishSync(text: string, maxDepth = 32, maxItems = Number.POSITIVE_INFINITY): ParsedPublish {
  if (typeof text !== "string") throw new TypeError("Cannot parse publish body: text must be a string");
  if (!Number.isInteger(maxDepth) || maxDepth < 1) {
    throw new RangeError(`Cannot parse publish body: maxDepth must be an integer >= 1, got ${maxDepth}`);
  }
  if (exceedsDepth(text, maxDepth)) {
    throw new JsonGuardError("too_deep", `JSON nests deeper than ${maxDepth} levels`);
  }
  // A large batch is counted before it is parsed (the count after parsing below stays the rule).
  if (text.length > PRESCAN_BYTES && Number.isFinite(maxItems) && batchItemsExceed(text, maxItems)) throw tooManyItems(maxItems);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new JsonGuardError("bad_json", `Body is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(body)) throw new JsonGuardError("not_object", "Body must be a JSON object");
  const isBatch = Array.isArray(body.items);
  // Refused before any per-item work: a 4 MiB batch of `{}` is a million items to serialize and
  // to clone back from the worker.
  if (isBatch && (body.items as unknown[]).length > maxItems) throw tooManyItems(maxItems);
  if (isBatch) {
    for (const item of body.items as unknown[]) if (isObject(item)) serializeItem(item);
  }
  // `dataJson` goes into event frames as it is: the top level gets one only from `data`, and a
  // single publish that happens to carry an `items` array is still a single publish.
  if (isBatch && !("data" in body) && !("channel" in body) && !("event" in body)) delete body.dataJson;
  else serializeItem(body);
  return body as ParsedPublish;
}

/** Main thread → worker. */
export interface GuardRequest {
  id: number;
  text: string;
  maxDepth: number;
  maxItems: number;
}

/** Worker → main thread. `code` is a {@linkcode JsonGuardErrorCode}, or `internal` for anything else. */
export type GuardResponse =
  | { id: number; ok: true; value: ParsedPublish }
  | { id: number; ok: false; code: JsonGuardErrorCode | "internal"; message: string };

/** Options for {@linkcode createJsonGuard}. */
export interface JsonGuardOptions {
  /** Budget for one body, from hand-off to answer (`delivery.serializeTimeoutMs`). @default 1000 */
  timeoutMs?: number;
  /** Deepest nesting accepted (`limits.maxJsonDepth`). @default 32 */
  maxDepth?: number;
}

/** Counters for `/ws/stats` and metrics. */
export interface JsonGuardStats {
  calls: number;
  timeouts: number;
}

/** A worker-backed publish body parser. */
export interface JsonGuard {
  /**
   * Parses `text` in the worker, like {@linkcode parsePublishSync} (`maxItems` for batches).
   * @throws {JsonGuardError} for a refused body; {@linkcode SerializeTimeoutError} past the budget.
   */
  parsePublish(text: string, maxItems?: number): Promise<ParsedPublish>;
  stats(): JsonGuardStats;
  /** Terminates the worker and rejects whatever is pending. Idempotent. */
  close(): void;
  [Symbol.dispose](): void;
}

interface Pending {
  text: string;
  maxItems: number;
  resolve: (value: ParsedPublish) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Starts a guard whose worker is created on first use, and again after a timeout kills it.
 * Requests run one at a time in the worker; each has its own timer from the moment it is sent.
 * When one times out, the worker is terminated and the requests queued behind it are re-sent to
 * a fresh worker, still under their own timers.
 *
 * @example
 * const guard = createJsonGuard({ timeoutMs: config.delivery.serializeTimeoutMs, maxDepth: config.limits.maxJsonDepth });
 * const body = text.length > config.delivery.slowPathBytes
 *   ? await guard.parsePublish(text)
 *   : parsePublishSync(text, config.limits.maxJsonDepth);
 */
export function createJsonGuard(options: JsonGuardOptions = {}): JsonGuard {
  const { timeoutMs = 1000, maxDepth = 32 } = options;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`Cannot create JSON guard: timeoutMs must be finite and > 0, got ${timeoutMs}`);
  }
  if (!Number.isInteger(maxDepth) || maxDepth < 1) {
    throw new RangeError(`Cannot create JSON guard: maxDepth must be an integer >= 1, got ${maxDepth}`);
  }

  const pending = new Map<number, Pending>();
  let worker: Worker | undefined;
  let nextId = 1;
  let closed = false;
  let calls = 0;
  let timeouts = 0;

  function currentWorker(): Worker {
    if (worker) return worker;
    // `ref: false`: an idle guard must not keep the process alive; a waiting request's timer does.
    const spawned = new Worker(new URL("./json-guard-worker.ts", import.meta.url), { name: "courier-json-guard", ref: false });
    spawned.onmessage = (event: MessageEvent<GuardResponse>) => answer(event.data);
    spawned.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      if (worker !== spawned) return;
      worker = undefined;
      spawned.terminate();
      failAll(new Error(`JSON guard worker failed: ${event.message}`));
    };
    worker = spawned;
    return spawned;
  }

  function answer(response: GuardResponse): void {
    const entry = pending.get(response.id);
    // Already timed out, or answered twice after a re-send: the first outcome stands.
    if (!entry) return;
    pending.delete(response.id);
    clearTimeout(entry.timer);
    if (response.ok) entry.resolve(response.value);
    else if (response.code === "internal") entry.reject(new Error(response.message));
    else entry.reject(new JsonGuardError(response.code, response.message));
  }

  function timedOut(id: number): void {
    const entry = pending.get(id);
    if (!entry) return;
    pending.delete(id);
    timeouts++;
    // The worker is stuck on this body (or on one before it): only terminating it frees the core.
    worker?.terminate();
    worker = undefined;
    entry.reject(new SerializeTimeoutError(timeoutMs));
    if (pending.size === 0) return;
    const fresh = currentWorker();
    for (const [otherId, other] of pending) fresh.postMessage({ id: otherId, text: other.text, maxDepth, maxItems: other.maxItems } satisfies GuardRequest);
  }

  function failAll(error: Error): void {
    for (const entry of pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(error);
    }
    pending.clear();
  }

  return {
    parsePublish(text: string, maxItems = Number.POSITIVE_INFINITY): Promise<ParsedPublish> {
      if (closed) return Promise.reject(new TypeError("Cannot parse publish body: JSON guard closed"));
      if (typeof text !== "string") return Promise.reject(new TypeError("Cannot parse publish body: text must be a string"));
      calls++;
      const id = nextId++;
      const { promise, resolve, reject } = Promise.withResolvers<ParsedPublish>();
      const timer = setTimeout(() => timedOut(id), timeoutMs);
      pending.set(id, { text, maxItems, resolve, reject, timer });
      currentWorker().postMessage({ id, text, maxDepth, maxItems } satisfies GuardRequest);
      return promise;
    },
    stats(): JsonGuardStats {
      return { calls, timeouts };
    },
    close(): void {
      if (closed) return;
      closed = true;
      worker?.terminate();
      worker = undefined;
      failAll(new TypeError("Cannot parse publish body: JSON guard closed"));
    },
    [Symbol.dispose](): void {
      this.close();
    },
  };
}
