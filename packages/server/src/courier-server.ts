/**
 * The publisher a backend uses to talk to Courier's HTTP API (PROTOCOL.md §2, §8). Every
 * mutating call carries an idempotency key it generates (or the caller's) and keeps across its
 * retries; every call has a deadline; every failure is a {@linkcode CourierApiError}.
 */
import { send, type Clock, type FetchLike } from "./send.js";
import { StreamAppender } from "./stream-appender.js";
import type {
  BatchItem,
  CallOptions,
  CreatedJob,
  HistoryPage,
  HistoryQuery,
  Presence,
  Published,
  PublishMessage,
  SignalMessage,
  StartedStream,
  StreamStart,
  StreamStatus,
} from "./types.js";

/** Options for {@linkcode CourierServer}. */
export interface CourierServerOptions {
  /** Courier's base URL, e.g. `https://courier.example.com`. */
  url: string | URL;
  /** The publish API key (`COURIER_API_KEY`). */
  apiKey: string;
  /** A call's whole budget, retries included. @default 10_000 */
  deadlineMs?: number;
  /** One attempt's budget. @default 5_000 */
  attemptTimeoutMs?: number;
  /** First backoff when the server sends no `Retry-After` (doubled per retry). @default 100 */
  backoffMs?: number;
  /** @default 2_000 */
  maxBackoffMs?: number;
  /** @default globalThis.fetch */
  fetch?: FetchLike;
  /** @default Date.now and setTimeout */
  clock?: Clock;
  /** @default crypto.randomUUID */
  idempotencyKey?: () => string;
  /** When a batch of stream appends is sent. @default the next macrotask (setTimeout 0) */
  deferAppends?: (run: () => void) => void;
}

const realClock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) };

/**
 * A Courier publisher for Bun and Node ≥ 20.
 *
 * @example
 * const courier = new CourierServer({ url: process.env.COURIER_URL!, apiKey: process.env.COURIER_API_KEY! });
 * const { offset } = await courier.publish({ channel: "user:alice", event: "invoice_paid", data: { id: 7 }, critical: true });
 */
export class CourierServer {
  readonly #base: string;
  readonly #apiKey: string;
  readonly #options: Required<Pick<CourierServerOptions, "deadlineMs" | "attemptTimeoutMs" | "backoffMs" | "maxBackoffMs">>;
  readonly #fetch: FetchLike;
  readonly #clock: Clock;
  readonly #key: () => string;
  readonly #appender: StreamAppender;

  constructor(options: CourierServerOptions) {
    if (!options.apiKey) throw new TypeError("Cannot create CourierServer: apiKey is required");
    this.#base = String(options.url).replace(/\/+$/, "");
    this.#apiKey = options.apiKey;
    this.#options = {
      deadlineMs: options.deadlineMs ?? 10_000,
      attemptTimeoutMs: options.attemptTimeoutMs ?? 5_000,
      backoffMs: options.backoffMs ?? 100,
      maxBackoffMs: options.maxBackoffMs ?? 2_000,
    };
    for (const [name, value] of Object.entries(this.#options)) {
      if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number of ms, got ${value}`);
    }
    this.#fetch = options.fetch ?? ((url, init) => fetch(url, init));
    this.#clock = options.clock ?? realClock;
    this.#key = options.idempotencyKey ?? (() => crypto.randomUUID());
    this.#appender = new StreamAppender({
      post: (body) => this.#post<{ offset: number }>("/v1/streams/append", body),
      defer: options.deferAppends,
    });
  }

  /** `POST /v1/publish`: answers once the event is stored as its durability class requires. */
  publish(message: PublishMessage, options?: CallOptions): Promise<Published> {
    return this.#post("/v1/publish", message, options);
  }

  /** `POST /v1/publish/batch`: 1–100 items, all or nothing, answers in item order. */
  async publishBatch(items: BatchItem[], options?: CallOptions): Promise<Published[]> {
    // Keys fixed before the first attempt, so each retry carries the same ones.
    const keyed = items.map((item) => (item.idempotencyKey === undefined ? { ...item, idempotencyKey: this.#key() } : item));
    const answer = await this.#call<{ results: Published[] }>("POST", "/v1/publish/batch", { items: keyed }, options, null);
    return answer.results;
  }

  /** `GET /v1/history`, read as the user whose token is given. */
  history(query: HistoryQuery, options?: CallOptions): Promise<HistoryPage> {
    const params = new URLSearchParams({ channel: query.channel });
    if (query.since !== undefined) params.set("since", String(query.since));
    if (query.epoch !== undefined) params.set("epoch", query.epoch);
    if (query.limit !== undefined) params.set("limit", String(query.limit));
    return this.#call("GET", `/v1/history?${params}`, undefined, options, null, query.token);
  }

  /** `GET /v1/presence`: who is subscribed to `channel`, across every node. */
  presence(channel: string, options?: CallOptions): Promise<Presence> {
    return this.#call("GET", `/v1/presence?${new URLSearchParams({ channel })}`, undefined, options, null);
  }

  /** `POST /v1/disconnect`: closes every connection of `user` with 4403 (the SDK does not reconnect). */
  disconnect(body: { user: string; reason?: string }, options?: CallOptions): Promise<{ closed: number }> {
    return this.#post("/v1/disconnect", body, options);
  }

  /** `POST /v1/unsubscribe`: every connection of `user` leaves `channel`. */
  unsubscribe(body: { user: string; channel: string }, options?: CallOptions): Promise<{ unsubscribed: number }> {
    return this.#post("/v1/unsubscribe", body, options);
  }

  /** `POST /v1/jobs`: registers a job owned by `owner`; its progress goes on `job:<id>`. */
  createJob(body: { owner: string; simulate?: boolean }, options?: CallOptions): Promise<CreatedJob> {
    return this.#post("/v1/jobs", body, options);
  }

  /** `POST /v1/signals`: stored as a critical event, delivered to every user of `tier` or higher. */
  signal(message: SignalMessage, options?: CallOptions): Promise<Published> {
    return this.#post("/v1/signals", message, options);
  }

  /** `POST /v1/streams`: starts an agent stream on `channel` (PROTOCOL §8). */
  startStream(start: StreamStart, options?: CallOptions): Promise<StartedStream> {
    return this.#post("/v1/streams", start, options);
  }

  /**
   * `POST /v1/streams/append`: appends made to one stream within one tick travel as one request.
   * Resolves with the offset of the request it travelled in.
   */
  append(channel: string, stream: string, text: string): Promise<{ offset: number }> {
    return this.#appender.append(channel, stream, text);
  }

  /** `POST /v1/streams/end`, after every pending append of the stream is stored. */
  async end(channel: string, stream: string, status: StreamStatus, data?: unknown, options?: CallOptions): Promise<{ offset: number }> {
    await this.#appender.settled(channel, stream);
    const body: Record<string, unknown> = { channel, stream, status };
    if (data !== undefined) body.data = data;
    const answer = await this.#post<{ offset: number }>("/v1/streams/end", body, options);
    this.#appender.forget(channel, stream);
    return answer;
  }

  #post<T>(path: string, body: unknown, options?: CallOptions): Promise<T> {
    return this.#call("POST", path, body, options, options?.idempotencyKey ?? this.#key());
  }

  #call<T>(method: "GET" | "POST", path: string, body: unknown, options: CallOptions | undefined, idempotencyKey: string | null, bearer = this.#apiKey): Promise<T> {
    return send<T>(
      { method, url: this.#base + path, headers: { authorization: `Bearer ${bearer}` }, body, idempotencyKey: idempotencyKey ?? undefined },
      { ...this.#options, deadlineMs: options?.deadlineMs ?? this.#options.deadlineMs, fetch: this.#fetch, clock: this.#clock, signal: options?.signal },
    );
  }
}
