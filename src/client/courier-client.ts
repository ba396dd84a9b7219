/**
 * The Courier client: one WebSocket with sessions, resume by `since`, dedupe, batched acks,
 * reconnect with backoff and failover, requests with timeouts, and an HTTP polling fallback.
 * Zero runtime dependencies: runs in browsers and Bun.
 */
import { parseChannel } from "../protocol/channel.ts";
import { closeAdvice, ErrorCode, type CloseCode } from "../protocol/codes.ts";
import { AckBatcher } from "./ack-batcher.ts";
import { backoffDelay, type ResolvedBackoff } from "./backoff.ts";
import {
  resolveClientOptions,
  type ClientEvents,
  type CourierClientOptions,
  type RequestOptions,
  type ResolvedClientOptions,
  type SubscribeOptions,
} from "./client-options.ts";
import { Emitter } from "./emitter.ts";
import { CourierError } from "./errors.ts";
import { fetchHistory, httpBaseFromWsUrl } from "./history.ts";
import { PendingRequests } from "./pending-requests.ts";
import { Poller, type PollOutcome } from "./poller.ts";
import { Subscriptions } from "./subscriptions.ts";
import type { Clock, EventFrame, EventHandler, Status, StatusChange, Timers, TokenSource, WebSocketLike } from "./types.ts";

export type { ClientEvents, CourierClientOptions, RequestOptions, SubscribeOptions };

const OPEN = 1;

/**
 * A Courier connection that keeps itself alive.
 *
 * @example
 * const client = new CourierClient({ url: "wss://rt.example.com/v1/ws", token: () => getToken() });
 * const off = client.subscribe("user:alice", (e) => render(e.event, e.data));
 * client.on("recovery", (r) => { if (!r.recovered) refetch(r.channel); });
 * client.connect();
 * // later
 * off();
 * client.close();
 */
export class CourierClient {
  #o: ResolvedClientOptions;
  #urls: readonly string[];
  #urlIndex = 0;
  #tokenSource: TokenSource;
  #token: string | undefined;
  #session: string | undefined;
  #backoff: ResolvedBackoff;
  #timers: Timers;
  #clock: Clock;

  #emitter: Emitter<ClientEvents>;
  #subs: Subscriptions;
  #acks: AckBatcher;
  #pending: PendingRequests;
  #poller: Poller;

  #status: StatusChange = { status: "offline", polling: false };
  #started = false;
  #closed = false;
  #socket: WebSocketLike | undefined;
  #welcomed = false;
  /** Channels the server holds for this session: a resumed session needs only the difference. */
  #serverChannels = new Set<string>();
  /**
   * Channels confirmed by a `subscribed` on the current connection. Only these may be acked: the
   * server counts an ack for a channel it has not joined yet as a protocol error.
   */
  #ready = new Set<string>();
  /** Subscribe retries after a transient refusal (`unavailable`, `timeout`…), per channel. */
  #retries = new Map<string, { count: number; timer: unknown }>();
  #attempt = 0;
  #failures = 0;
  #hintMs: number | undefined;
  #reconnectTimer: unknown = undefined;
  #connectTimer: unknown = undefined;
  /** Idle probe: frames seen on this connection, and their count at the last probe tick. */
  #framesSeen = 0;
  #framesAtTick = 0;
  #probeTimer: unknown = undefined;
  /** Bumped per attempt and on close: late callbacks of an older attempt are ignored. */
  #generation = 0;

  /**
   * Validates options (`TypeError`/`RangeError`); does not connect yet.
   *
   * @example
   * new CourierClient({ urls: ["wss://a.example.com/v1/ws", "wss://b.example.com/v1/ws"], token: "eyJ…" });
   */
  constructor(options: CourierClientOptions) {
    const o = resolveClientOptions(options);
    this.#o = o;
    this.#urls = o.urls;
    this.#tokenSource = o.token;
    this.#session = o.session;
    this.#timers = o.timers;
    this.#clock = o.clock;
    this.#backoff = o.backoff;

    this.#emitter = new Emitter<ClientEvents>((error, type) => {
      if (type !== "error") this.#emitError(error);
    });
    this.#subs = new Subscriptions(o.store);
    this.#acks = new AckBatcher({
      intervalMs: o.ackIntervalMs,
      timers: this.#timers,
      send: (channel, offset) => this.#ready.has(channel) && this.#send({ type: "ack", channel, offset }),
    });
    this.#pending = new PendingRequests(this.#timers);
    this.#poller = new Poller({
      timers: this.#timers,
      initialIntervalMs: o.pollIntervalMs,
      maxIntervalMs: o.maxPollIntervalMs,
      round: () => this.#pollRound(),
      onError: (error) => this.#emitError(error),
    });
    if (options.onStatus) this.on("status", options.onStatus);
    if (options.onRecovery) this.on("recovery", options.onRecovery);
  }

  /** The current state. @example if (client.status === "live") hideBanner(); */
  get status(): Status {
    return this.#status.status;
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
    return this.#session;
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
    if (this.#started) return;
    this.#started = true;
    this.#attempt = 0;
    this.#failures = 0;
    if (!this.#o.WebSocket) {
      if (!this.#o.fetch) {
        this.#started = false;
        this.#setStatus("offline", { reason: "no_transport" });
        return;
      }
      this.#poller.start();
      this.#setStatus("connecting", { reason: "no_websocket" });
      return;
    }
    this.#open();
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
    this.#shutdown(new CourierError("unavailable", "client closed"));
    this.#setStatus("offline", { reason: "closed" });
  }

  /**
   * Listens to `status`, `event` (every delivered event), `error` or `recovery`; returns the
   * unsubscribe function.
   *
   * @example
   * const off = client.on("status", ({ status, reason }) => console.log(status, reason));
   * off();
   */
  on<K extends keyof ClientEvents>(type: K, fn: (value: ClientEvents[K]) => void): () => void {
    return this.#emitter.on(type, fn);
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
    this.#hintMs = ms;
    if (this.#reconnectTimer !== undefined) {
      this.#timers.clearTimeout(this.#reconnectTimer);
      this.#scheduleReconnect();
    }
  }

  /**
   * Calls `handler` for each event of `channel`, deduped, in offset order; returns the
   * unsubscribe function (idempotent; `unsubscribe` goes out when the channel's last handler goes).
   *
   * @example
   * const off = client.subscribe("job:42", (e) => progress(e.data), { since: { epoch: "e1", offset: 10 } });
   * off();
   */
  subscribe(channel: string, handler: EventHandler, options: SubscribeOptions = {}): () => void {
    if (this.#closed) throw new TypeError("Cannot subscribe: client closed");
    if (!parseChannel(channel)) throw new TypeError(`Cannot subscribe: invalid channel name ${JSON.stringify(channel)}`);
    if (typeof handler !== "function") throw new TypeError("Cannot subscribe: handler is not a function");
    const { since } = options;
    if (since !== undefined && (typeof since.epoch !== "string" || !Number.isSafeInteger(since.offset) || since.offset < 0)) {
      throw new TypeError("Cannot subscribe: since must be {epoch: string, offset: integer >= 0}");
    }
    const { first, registration } = this.#subs.add(channel, handler, since);
    if (first && this.#welcomed) this.#sendSubscribe(channel);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      if (!this.#subs.remove(channel, registration)) return;
      this.#acks.flush(channel);
      this.#acks.drop(channel);
      this.#ready.delete(channel);
      this.#cancelRetry(channel);
      // While down, a channel the session holds stays listed: the resume sends its unsubscribe.
      if (this.#welcomed && this.#serverChannels.delete(channel)) {
        this.#request({ type: "unsubscribe", channel }, this.#o.requestTimeoutMs, () => undefined).catch(() => {});
      }
    };
  }

  /**
   * Calls `method` on the agent backend; resolves with the result's `data`, rejects with a
   * `CourierError` (the error frame's code, `timeout`, or `unavailable` when not live or on loss).
   *
   * @example
   * const answer = await client.rpc("agent.ask", { q: "status?" }, { timeoutMs: 5000 });
   */
  rpc(method: string, data?: unknown, options: RequestOptions = {}): Promise<unknown> {
    if (this.#closed) throw new TypeError("Cannot call rpc: client closed");
    if (typeof method !== "string" || method.length === 0) throw new TypeError("Cannot call rpc: method must be a non-empty string");
    const timeoutMs = this.#timeout(options);
    return this.#request({ type: "rpc", method, data: data ?? null }, timeoutMs, (frame) => frame.data);
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
    const startedAt = this.#clock.now();
    return this.#request({ type: "ping" }, timeoutMs, () => this.#clock.now() - startedAt);
  }

  #timeout(options: RequestOptions): number {
    const timeoutMs = options.timeoutMs ?? this.#o.requestTimeoutMs;
    if (!(timeoutMs > 0)) throw new RangeError("timeoutMs must be > 0");
    return timeoutMs;
  }

  #request<T>(frame: Record<string, unknown>, timeoutMs: number, map: (answer: Record<string, unknown>) => T): Promise<T> {
    if (!this.#welcomed) return Promise.reject(new CourierError("unavailable", `Cannot send ${String(frame.type)}: not connected`));
    const { id, promise } = this.#pending.create(timeoutMs, map);
    if (!this.#send({ ...frame, id })) this.#pending.reject(id, new CourierError("unavailable", `Cannot send ${String(frame.type)}: socket not open`, { requestId: id }));
    return promise;
  }

  #sendSubscribe(channel: string): void {
    const since = this.#subs.position(channel);
    const socket = this.#socket;
    this.#serverChannels.add(channel);
    this.#request(since ? { type: "subscribe", channel, since } : { type: "subscribe", channel }, this.#o.requestTimeoutMs, () => undefined).catch(
      (error: unknown) => {
        if (this.#socket !== socket || !this.#welcomed) {
          // Lost with the connection: unknown whether the server got it, so the next welcome sends it again.
          this.#serverChannels.delete(channel);
          return;
        }
        const code = error instanceof CourierError ? error.code : ErrorCode.Internal;
        // Names and frames are checked here, so bad_request means "already subscribed": a
        // resumed session the client did not know (a reload) or a retry racing a slow join.
        // The server holds the channel and sends its own `subscribed`.
        if (code === ErrorCode.BadRequest) return;
        this.#serverChannels.delete(channel);
        const transient: string[] = [ErrorCode.Unavailable, ErrorCode.Timeout, ErrorCode.Internal, ErrorCode.RateLimited];
        if (transient.includes(code)) this.#retrySubscribe(channel);
        const message = error instanceof Error ? error.message : String(error);
        this.#emitError(new CourierError(code, message, { requestId: error instanceof CourierError ? error.requestId : undefined, channel, cause: error }));
      },
    );
  }

  #retrySubscribe(channel: string): void {
    const previous = this.#retries.get(channel);
    if (previous?.timer !== undefined) return;
    const count = (previous?.count ?? 0) + 1;
    // Same schedule as reconnects, starting at its 2 s step: 2 s, 4 s, then the cap.
    const delay = backoffDelay(this.#backoff.stepsMs.length - 1 + count, this.#backoff, this.#o.random);
    const timer = this.#timers.setTimeout(() => {
      this.#retries.set(channel, { count, timer: undefined });
      if (this.#welcomed && this.#subs.has(channel) && !this.#serverChannels.has(channel)) this.#sendSubscribe(channel);
    }, delay);
    this.#retries.set(channel, { count, timer });
  }

  #cancelRetry(channel?: string): void {
    for (const [ch, retry] of this.#retries) {
      if (channel !== undefined && ch !== channel) continue;
      if (retry.timer !== undefined) this.#timers.clearTimeout(retry.timer);
      this.#retries.delete(ch);
    }
  }

  #send(frame: Record<string, unknown>): boolean {
    const socket = this.#socket;
    if (!socket || !this.#welcomed || socket.readyState !== OPEN) return false;
    try {
      socket.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  // --- connection lifecycle -------------------------------------------------------------------

  #open(): void {
    this.#reconnectTimer = undefined;
    const generation = ++this.#generation;
    if (this.#status.status !== "connecting") this.#setStatus("connecting", {});
    let token: string | Promise<string>;
    try {
      token = this.#token ?? (typeof this.#tokenSource === "string" ? this.#tokenSource : this.#tokenSource());
    } catch (error) {
      this.#emitError(error);
      this.#attemptFailed({ reason: "token_error" });
      return;
    }
    if (typeof token === "string") {
      this.#dial(token);
      return;
    }
    Promise.resolve(token).then(
      (value) => {
        if (generation === this.#generation && this.#started) this.#dial(value);
      },
      (error: unknown) => {
        if (generation !== this.#generation || !this.#started) return;
        this.#emitError(error);
        this.#attemptFailed({ reason: "token_error" });
      },
    );
  }

  #dial(token: string): void {
    if (typeof token !== "string" || token.length === 0) {
      this.#emitError(new TypeError("token provider returned no token"));
      this.#attemptFailed({ reason: "token_error" });
      return;
    }
    this.#token = token;
    const url = new URL(this.#urls[this.#urlIndex]!);
    url.searchParams.set("token", token);
    if (this.#session !== undefined) url.searchParams.set("session", this.#session);
    let socket: WebSocketLike;
    try {
      socket = new this.#o.WebSocket!(url.toString());
    } catch (error) {
      this.#emitError(error);
      this.#attemptFailed({ reason: "connect_error" });
      return;
    }
    this.#socket = socket;
    this.#welcomed = false;
    socket.onmessage = (ev: { data: unknown }) => this.#onMessage(socket, ev.data);
    socket.onclose = (ev: { code?: number; reason?: string } | undefined) => this.#onLost(socket, ev?.code);
    // Browsers follow an error with a close (1006); Bun may not: either ends the attempt once.
    socket.onerror = () => this.#onLost(socket, undefined);
    this.#connectTimer = this.#timers.setTimeout(() => {
      this.#connectTimer = undefined;
      this.#onLost(socket, undefined, "connect_timeout");
    }, this.#o.connectTimeoutMs);
  }

  #onMessage(socket: WebSocketLike, data: unknown): void {
    if (socket !== this.#socket || typeof data !== "string") return;
    this.#framesSeen++;
    let frame: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(data);
      if (typeof parsed !== "object" || parsed === null) return;
      frame = parsed as Record<string, unknown>;
    } catch {
      return;
    }
    if (!this.#welcomed) {
      if (frame.type === "welcome") this.#onWelcome(frame);
      else if (frame.type === "error") this.#emitError(new CourierError(frame.code as CourierError["code"], String(frame.message)));
      return;
    }
    switch (frame.type) {
      case "event":
        this.#deliver(frame as unknown as EventFrame);
        return;
      case "subscribed": {
        this.#pending.resolve(frame.id, frame);
        const recovery = this.#subs.reconcile(String(frame.channel), {
          epoch: String(frame.epoch),
          offset: Number(frame.offset),
          recovered: typeof frame.recovered === "boolean" ? frame.recovered : undefined,
          reason: typeof frame.reason === "string" ? frame.reason : undefined,
        });
        const channel = String(frame.channel);
        if (!this.#subs.has(channel)) {
          // A restored session may hold channels this page no longer wants: unacked, they would look stale.
          this.#serverChannels.delete(channel);
          this.#request({ type: "unsubscribe", channel }, this.#o.requestTimeoutMs, () => undefined).catch(() => {});
        } else {
          this.#serverChannels.add(channel);
          this.#ready.add(channel);
          this.#cancelRetry(channel);
          // Acks held while the channel was not joined (polled events, a previous connection).
          this.#acks.flush(channel);
        }
        if (recovery) this.#emitter.emit("recovery", recovery);
        return;
      }
      case "unsubscribed":
      case "pong":
      case "result":
        this.#pending.resolve(frame.id, frame);
        return;
      case "error": {
        const error = new CourierError(frame.code as CourierError["code"], String(frame.message), {
          requestId: typeof frame.id === "number" || typeof frame.id === "string" ? frame.id : undefined,
        });
        if (!this.#pending.reject(frame.id, error)) this.#emitError(error);
        return;
      }
      case "reconnect":
        if (typeof frame.after === "number" && frame.after >= 0) this.#hintMs = frame.after;
        return;
    }
  }

  #onWelcome(frame: Record<string, unknown>): void {
    this.#clearConnectTimer();
    if (this.#o.idleProbe && typeof frame.heartbeat === "number" && frame.heartbeat > 0) this.#startProbe(frame.heartbeat * 1000);
    this.#welcomed = true;
    this.#attempt = 0;
    this.#failures = 0;
    this.#hintMs = undefined;
    if (typeof frame.session === "string") this.#session = frame.session;
    this.#poller.stop();
    const local = this.#subs.channels();
    if (frame.resumed === true) {
      // The server restored its channels and replays them itself: only the difference goes out.
      for (const channel of [...this.#serverChannels]) {
        if (!this.#subs.has(channel)) {
          this.#serverChannels.delete(channel);
          this.#request({ type: "unsubscribe", channel }, this.#o.requestTimeoutMs, () => undefined).catch(() => {});
        }
      }
      for (const channel of local) if (!this.#serverChannels.has(channel)) this.#sendSubscribe(channel);
    } else {
      this.#serverChannels.clear();
      for (const channel of local) this.#sendSubscribe(channel);
    }
    this.#setStatus("live", {});
  }

  #deliver(frame: EventFrame): void {
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
    this.#subs.commit(event);
    this.#acks.note(event.channel, event.offset);
  }

  #onLost(socket: WebSocketLike, code: number | undefined, reason?: string): void {
    if (socket !== this.#socket) return;
    this.#detach(socket);
    const wasLive = this.#welcomed;
    this.#welcomed = false;
    this.#ready.clear();
    this.#cancelRetry();
    this.#pending.rejectAll(new CourierError("unavailable", "connection lost"));
    const advice = code === undefined ? undefined : closeAdvice[code as CloseCode];
    if (advice && !advice.reconnect) {
      this.#started = false;
      this.#shutdown(undefined);
      this.#setStatus("offline", { reason: advice.reason, code });
      return;
    }
    if (advice?.refreshToken) this.#token = undefined;
    if (wasLive) {
      this.#setStatus("connecting", { reason: advice?.reason ?? reason ?? "connection_lost", code });
      this.#scheduleReconnect();
    } else {
      this.#attemptFailed({ reason: reason ?? "connect_failed", code });
    }
  }

  /** An attempt that got no welcome: maybe a 401 (invisible in browsers), so the token is refreshed. */
  #attemptFailed(info: { reason: string; code?: number }): void {
    this.#token = undefined;
    this.#failures++;
    this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    if (this.#failures >= this.#o.pollAfterFailures && this.#o.fetch) this.#poller.start();
    this.#setStatus("connecting", info);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    let delay: number;
    if (this.#hintMs !== undefined) {
      // Server hints win over the schedule and do not advance it.
      delay = this.#hintMs;
      this.#hintMs = undefined;
    } else {
      delay = backoffDelay(this.#attempt++, this.#backoff, this.#o.random);
    }
    this.#reconnectTimer = this.#timers.setTimeout(() => this.#open(), delay);
  }

  /**
   * Browsers answer the server's WebSocket pings without showing them, so a half-open connection
   * (a sleeping laptop, a dead NAT entry) can look open for minutes. After a heartbeat with no
   * frame at all, a `ping` frame goes out; no answer within another heartbeat means stale.
   */
  #startProbe(heartbeatMs: number): void {
    const socket = this.#socket;
    this.#framesAtTick = this.#framesSeen;
    const tick = () => {
      this.#probeTimer = this.#timers.setTimeout(tick, heartbeatMs);
      if (this.#framesSeen !== this.#framesAtTick) {
        this.#framesAtTick = this.#framesSeen;
        return;
      }
      this.#request({ type: "ping" }, heartbeatMs, () => undefined).catch((error: unknown) => {
        if (socket && socket === this.#socket && error instanceof CourierError && error.code === ErrorCode.Timeout) {
          this.#onLost(socket, undefined, "stale");
        }
      });
    };
    this.#probeTimer = this.#timers.setTimeout(tick, heartbeatMs);
  }

  #detach(socket: WebSocketLike): void {
    this.#clearConnectTimer();
    if (this.#probeTimer !== undefined) this.#timers.clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    this.#socket = undefined;
    try {
      if (socket.readyState <= OPEN) socket.close(1000);
    } catch {
      // Already closing.
    }
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== undefined) this.#timers.clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
  }

  /** Stops everything that runs on its own; `error` rejects pending requests. */
  #shutdown(error: CourierError | undefined): void {
    this.#generation++;
    if (this.#reconnectTimer !== undefined) this.#timers.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#poller.stop();
    this.#acks.stop();
    if (this.#socket) this.#detach(this.#socket);
    this.#welcomed = false;
    this.#ready.clear();
    this.#cancelRetry();
    if (error) this.#pending.rejectAll(error);
  }

  // --- polling fallback -------------------------------------------------------------------------

  async #pollRound(): Promise<PollOutcome | void> {
    const fetch = this.#o.fetch;
    if (!fetch) return;
    const generation = this.#poller.generation;
    const token = this.#token ?? (typeof this.#tokenSource === "string" ? this.#tokenSource : await this.#tokenSource());
    if (!this.#poller.isCurrent(generation)) return;
    this.#token = token;
    const httpBase = this.#o.httpBase ?? httpBaseFromWsUrl(this.#urls[this.#urlIndex]!);
    let retryAfterMs: number | undefined;
    await Promise.all(
      this.#subs.channels().map(async (channel) => {
        const result = await fetchHistory({
          fetch,
          httpBase,
          token,
          channel,
          since: this.#subs.position(channel),
          limit: this.#o.pollLimit,
          nowMs: this.#clock.now(),
        });
        // Once the WebSocket is live again, late answers are dropped: it replays by itself.
        if (!this.#poller.isCurrent(generation)) return;
        if (!result.ok) {
          if (result.status === 401) this.#token = undefined;
          if (result.retryAfterMs !== undefined) retryAfterMs = Math.max(retryAfterMs ?? 0, result.retryAfterMs);
          this.#emitError(new CourierError(result.status === 401 ? "unauthorized" : "unavailable", `history of ${channel} answered ${result.status}`, { channel }));
          return;
        }
        const { page } = result;
        const before = this.#subs.position(channel);
        if (!before) {
          // Like a subscribe without since: start at the head, only later events follow.
          this.#subs.reconcile(channel, { epoch: page.epoch, offset: page.offset });
          return;
        }
        const reason =
          page.reason ??
          (before.epoch !== page.epoch ? "epoch_changed" : page.offset < before.offset ? "offset_ahead" : "history_trimmed");
        const recovery = this.#subs.reconcile(channel, { epoch: page.epoch, offset: page.offset, recovered: page.recovered, reason: page.recovered ? undefined : reason });
        // Recovered polls are the normal case: only a gap is worth telling.
        if (recovery && !recovery.recovered) this.#emitter.emit("recovery", recovery);
        for (const event of page.events) if (event && event.channel === channel) this.#deliver(event);
      }),
    );
    return retryAfterMs === undefined ? undefined : { retryAfterMs };
  }

  // --- observers --------------------------------------------------------------------------------

  #setStatus(status: Status, info: { reason?: string; code?: number }): void {
    const next: StatusChange = { status, polling: this.#poller.active };
    if (info.reason !== undefined) next.reason = info.reason;
    if (info.code !== undefined) next.code = info.code;
    const prev = this.#status;
    this.#status = next;
    if (prev.status !== next.status || prev.reason !== next.reason || prev.code !== next.code || prev.polling !== next.polling) {
      this.#emitter.emit("status", next);
    }
  }

  #emitError(error: unknown): void {
    this.#emitter.emit("error", error instanceof Error ? error : new Error(String(error)));
  }
}
