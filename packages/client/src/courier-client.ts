/**
 * The Courier client, as socket.io-client's `Socket` over its `Manager`: subscriptions, offsets
 * and dedupe, batched acks, requests and the HTTP polling fallback, on top of a
 * `ConnectionManager` that keeps the WebSocket alive (reconnect, failover, sessions).
 * Zero runtime dependencies: runs in browsers and Bun.
 *
 * Why one file over 300 lines: the public API's JSDoc (each method with an example) is half of it;
 * the connection lifecycle is in connection-manager.ts, joins in channel-joins.ts.
 */
import { AckBatcher } from "./ack-batcher.ts";
import { ChannelJoins } from "./channel-joins.ts";
import {
  resolveClientOptions,
  type ClientEvents,
  type CourierClientOptions,
  type RequestOptions,
  type ResolvedClientOptions,
  type SubscribeOptions,
} from "./client-options.ts";
import { ConnectionManager } from "./connection-manager.ts";
import { Emitter } from "./emitter.ts";
import { CourierError } from "./errors.ts";
import { pollRound } from "./poll-round.ts";
import { Poller, type PollOutcome } from "./poller.ts";
import { parseChannel } from "./protocol/channel.ts";
import type { WelcomeFrame } from "./protocol/frames.ts";
import { StreamTexts } from "./stream-texts.ts";
import { Subscriptions } from "./subscriptions.ts";
import type { AnyEvents, EventFrame, EventHandler, EventMap, Status } from "./types.ts";

export type { ClientEvents, CourierClientOptions, RequestOptions, SubscribeOptions };

/**
 * A Courier connection that keeps itself alive. `E` maps event names to their `data` types; by
 * default any name carries `data: unknown`.
 *
 * @example
 * const client = new CourierClient<{ job_progress: { percent: number } }>({ url: "wss://rt.example.com/v1/ws", token: () => getToken() });
 * const off = client.subscribe("job:42", (e) => render(e.event, e.data));
 * client.on("event:job_progress", (e) => (bar.value = e.data.percent));
 * client.on("recovery", (r) => { if (!r.recovered) refetch(r.channel); });
 * client.connect();
 * // later
 * off();
 * client.close();
 */
export class CourierClient<E extends EventMap = AnyEvents> {
  #o: ResolvedClientOptions;
  #connection: ConnectionManager;
  #emitter: Emitter<ClientEvents>;
  #subs: Subscriptions;
  #joins: ChannelJoins;
  #acks: AckBatcher;
  #poller: Poller;
  #streams = new StreamTexts();
  #closed = false;

  /**
   * Validates options (`TypeError`/`RangeError`); does not connect yet.
   *
   * @example
   * new CourierClient({ urls: ["wss://a.example.com/v1/ws", "wss://b.example.com/v1/ws"], token: "eyJ…" });
   */
  constructor(options: CourierClientOptions) {
    const o = resolveClientOptions(options);
    this.#o = o;
    this.#emitter = new Emitter<ClientEvents>((error, type) => {
      if (type !== "error") this.#emitError(error);
    });
    this.#subs = new Subscriptions(o.store);
    this.#poller = new Poller({
      timers: o.timers,
      initialIntervalMs: o.pollIntervalMs,
      maxIntervalMs: o.maxPollIntervalMs,
      round: () => this.#pollRound(),
      onError: (error) => this.#emitError(error),
    });
    this.#connection = new ConnectionManager(o, {
      welcome: (frame) => this.#onWelcome(frame),
      frame: (frame) => this.#onFrame(frame),
      lost: () => this.#joins.lost(),
      stopped: () => {
        this.#poller.stop();
        this.#acks.stop();
      },
      startPolling: () => {
        if (!o.fetch) return false;
        this.#poller.start();
        return true;
      },
      polling: () => this.#poller.active,
      status: (change) => this.#emitter.emit("status", change),
      error: (error) => this.#emitError(error),
    });
    this.#joins = new ChannelJoins({ ...o, connection: this.#connection, subs: this.#subs, error: (error) => this.#emitError(error) });
    this.#acks = new AckBatcher({
      intervalMs: o.ackIntervalMs,
      maxFramesPerSecond: o.ackFramesPerSecond,
      timers: o.timers,
      send: (channel, offset) => this.#joins.isConfirmed(channel) && this.#connection.send({ type: "ack", channel, offset }),
    });
    if (options.onStatus) this.on("status", options.onStatus);
    if (options.onRecovery) this.on("recovery", options.onRecovery);
  }

  /** The current state. @example if (client.status === "live") hideBanner(); */
  get status(): Status {
    return this.#connection.status;
  }

  /** Whether the HTTP polling fallback is running. @example client.polling; // false while live */
  get polling(): boolean {
    return this.#poller.active;
  }

  /**
   * The session id of the last `welcome`: persist it to resume after a reload.
   *
   * @example
   * sessionStorage.setItem("courier-session", client.session ?? "");
   */
  get session(): string | undefined {
    return this.#connection.session;
  }

  /**
   * Starts connecting (no-op when already started). After an offline close (e.g. 4400) it starts
   * again; after `close()` it throws `TypeError`.
   *
   * @example
   * client.connect();
   */
  connect(): void {
    if (this.#closed) throw new TypeError("Cannot connect: client closed");
    this.#connection.connect();
  }

  /**
   * Closes for good: flushes pending acks, rejects pending requests, stops reconnecting and
   * polling. Idempotent.
   *
   * @example
   * window.addEventListener("pagehide", () => client.close());
   */
  close(): void {
    if (this.#closed) return;
    this.#acks.flush();
    this.#closed = true;
    this.#connection.close(new CourierError("unavailable", "client closed"));
  }

  /**
   * Listens to `status`, `event` (every delivered event), `event:<name>` (delivered events of one
   * name, typed by the client's event map), `error` or `recovery`; returns the unsubscribe function.
   *
   * @example
   * const off = client.on("status", ({ status, reason }) => console.log(status, reason));
   * off();
   */
  on<K extends keyof ClientEvents<E> & string>(type: K, fn: (value: ClientEvents<E>[K]) => void): () => void {
    return this.#emitter.on(type as keyof ClientEvents, fn as (value: unknown) => void);
  }

  /**
   * Tells the client when the server wants to be retried (e.g. an HTTP `Retry-After` the app
   * saw): the next reconnect waits `ms` instead of the schedule.
   *
   * @example
   * const r = await fetch("/ready"); if (r.status === 503) client.hint(Number(r.headers.get("Retry-After")) * 1000);
   */
  hint(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError("hint(ms) needs a finite ms >= 0");
    this.#connection.hint(ms);
  }

  /**
   * Calls `handler` for each event of `channel`, deduped, in offset order; returns the
   * unsubscribe function (idempotent; `unsubscribe` goes out when the channel's last handler goes).
   *
   * @example
   * const off = client.subscribe("job:42", (e) => progress(e.data), { since: { epoch: "e1", offset: 10 } });
   * off();
   */
  subscribe(channel: string, handler: EventHandler<E>, options: SubscribeOptions = {}): () => void {
    if (this.#closed) throw new TypeError("Cannot subscribe: client closed");
    if (!parseChannel(channel)) throw new TypeError(`Cannot subscribe: invalid channel name ${JSON.stringify(channel)}`);
    if (typeof handler !== "function") throw new TypeError("Cannot subscribe: handler is not a function");
    const { since } = options;
    if (since !== undefined && (typeof since.epoch !== "string" || !Number.isSafeInteger(since.offset) || since.offset < 0)) {
      throw new TypeError("Cannot subscribe: since must be {epoch: string, offset: integer >= 0}");
    }
    const { first, registration } = this.#subs.add(channel, handler as EventHandler, since);
    if (first && this.#connection.live) this.#joins.join(channel);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      if (!this.#subs.remove(channel, registration)) return;
      this.#acks.flush(channel);
      this.#acks.drop(channel);
      this.#streams.drop(channel);
      this.#joins.leave(channel);
    };
  }

  /**
   * Calls `method` (`agent.run`, `jobs.simulate`, or one your agent backend answers); resolves
   * with the result's `data`, rejects with a `CourierError` (the error frame's code, `timeout`,
   * or `unavailable` when not live or on loss).
   *
   * @example
   * const { run } = (await client.rpc("agent.run", { prompt: "status?" }, { timeoutMs: 5000 })) as { run: string };
   */
  rpc(method: string, data?: unknown, options: RequestOptions = {}): Promise<unknown> {
    if (this.#closed) throw new TypeError("Cannot call rpc: client closed");
    if (typeof method !== "string" || method.length === 0) throw new TypeError("Cannot call rpc: method must be a non-empty string");
    return this.#connection.request({ type: "rpc", method, data: data ?? null }, this.#timeout(options), (frame) => frame.data);
  }

  /**
   * Asks the producer of an agent stream to stop (PROTOCOL §8): resolves true when this cancel
   * ended it, false when it had already ended or is unknown. Needs a joined `channel`.
   *
   * @example
   * stopButton.onclick = () => client.cancel("user:alice", answer.stream);
   */
  cancel(channel: string, stream: string, options: RequestOptions = {}): Promise<boolean> {
    if (this.#closed) throw new TypeError("Cannot cancel: client closed");
    if (typeof stream !== "string" || stream.length === 0) throw new TypeError("Cannot cancel: stream must be a non-empty string");
    return this.#connection.request({ type: "cancel", channel, stream }, this.#timeout(options), (frame) => (frame.data as { cancelled?: unknown } | null)?.cancelled === true);
  }

  /**
   * The agent streams of subscribed channels still in progress, with their text so far.
   *
   * @example
   * for (const s of client.openStreams()) render(s.stream, s.text);
   */
  openStreams() {
    return this.#streams.open();
  }

  /**
   * An application-level round trip; resolves with the round-trip time in ms.
   *
   * @example
   * const rttMs = await client.ping();
   */
  ping(options: RequestOptions = {}): Promise<number> {
    if (this.#closed) throw new TypeError("Cannot ping: client closed");
    const timeoutMs = this.#timeout(options);
    const startedAt = this.#o.clock.now();
    return this.#connection.request({ type: "ping" }, timeoutMs, () => this.#o.clock.now() - startedAt);
  }

  #timeout(options: RequestOptions): number {
    const timeoutMs = options.timeoutMs ?? this.#o.requestTimeoutMs;
    if (!(timeoutMs > 0)) throw new RangeError("timeoutMs must be > 0");
    return timeoutMs;
  }

  #onWelcome(frame: WelcomeFrame): void {
    this.#poller.stop();
    this.#joins.welcomed(frame.resumed === true);
  }

  #onFrame(frame: Record<string, unknown>): void {
    if (frame.type === "event") return this.#deliver(frame as unknown as EventFrame);
    const channel = String(frame.channel);
    if (frame.type === "unsubscribed") return this.#removedByServer(channel);
    const recovery = this.#subs.reconcile(channel, {
      epoch: String(frame.epoch),
      offset: Number(frame.offset),
      recovered: typeof frame.recovered === "boolean" ? frame.recovered : undefined,
      reason: typeof frame.reason === "string" ? frame.reason : undefined,
    });
    // Acks held while the channel was not joined (polled events, a previous connection).
    if (this.#joins.subscribed(channel)) this.#acks.flush(channel);
    if (recovery) this.#emitter.emit("recovery", recovery);
  }

  /**
   * The server took `channel` away (`POST /v1/unsubscribe`): its handlers are dropped and it is
   * not subscribed again, on this connection or after a reconnect; the app hears `unsubscribed`.
   */
  #removedByServer(channel: string): void {
    if (!this.#subs.drop(channel)) return;
    this.#acks.drop(channel);
    this.#joins.dropped(channel);
    this.#emitter.emit("unsubscribed", { channel, reason: "server" });
  }

  #deliver(frame: EventFrame): void {
    // Before the offset dedupe: a join's snapshot sits at or below the offset `subscribed` named.
    if (StreamTexts.is(frame) && this.#subs.has(frame.channel)) {
      const changed = this.#streams.apply(frame);
      if (changed) this.#emitter.emit("stream", changed);
    }
    const event = this.#subs.accept(frame);
    if (!event) return;
    for (const handler of this.#subs.handlers(event.channel)) {
      try {
        handler(event);
      } catch (error) {
        this.#emitError(error);
      }
    }
    this.#emitter.emit("event", event);
    this.#emitter.emit(`event:${event.event}`, event);
    this.#subs.commit(event);
    this.#acks.note(event.channel, event.offset);
  }

  async #pollRound(): Promise<PollOutcome | void> {
    const fetch = this.#o.fetch;
    if (!fetch) return;
    const generation = this.#poller.generation;
    const isCurrent = () => this.#poller.isCurrent(generation);
    const { tokens } = this.#connection;
    const token = await tokens.get();
    if (!isCurrent()) return;
    tokens.keep(token);
    return pollRound({
      fetch,
      httpBase: this.#connection.httpBase,
      token,
      limit: this.#o.pollLimit,
      nowMs: this.#o.clock.now(),
      subs: this.#subs,
      isCurrent,
      deliver: (event) => this.#deliver(event),
      recovery: (recovery) => this.#emitter.emit("recovery", recovery),
      unauthorized: () => tokens.forget(),
      error: (error) => this.#emitError(error),
    });
  }

  #emitError(error: unknown): void {
    this.#emitter.emit("error", error instanceof Error ? error : new Error(String(error)));
  }
}
