/**
 * The connection side of the client, as socket.io-client keeps its `Manager`: one WebSocket at a
 * time, the token, URL failover, the session, the reconnect schedule with server hints, the idle
 * probe and the requests awaiting an answer. What the connection carries (channels, offsets, acks,
 * polling) belongs to `CourierClient`, which hears about the connection through `ConnectionHooks`.
 */
import { backoffDelay } from "./backoff.ts";
import type { ResolvedClientOptions } from "./client-options.ts";
import { CourierError } from "./errors.ts";
import { PendingRequests } from "./pending-requests.ts";
import { closeAdvice, ErrorCode, type CloseCode } from "./protocol/codes.ts";
import type { WelcomeFrame } from "./protocol/frames.ts";
import type { Status, StatusChange, WebSocketLike } from "./types.ts";

const OPEN = 1;

type Frame = Record<string, unknown>;

/** What the connection tells its owner. Hooks run synchronously, in the order listed per event. */
export interface ConnectionHooks {
  /** A `welcome` arrived; `status` goes `live` right after. */
  welcome(frame: WelcomeFrame): void;
  /** A frame for the channels (`event`, `subscribed`); a `subscribed`'s request is already settled. */
  frame(frame: Frame): void;
  /** The connection is gone: whatever the server held for it is void until the next welcome. */
  lost(): void;
  /** Nothing runs on its own any more (an offline close or `close()`). */
  stopped(): void;
  /** Attempts keep failing (or there is no WebSocket): start polling; false when it cannot. */
  startPolling(): boolean;
  /** Whether polling runs, for `StatusChange.polling`. */
  polling(): boolean;
  status(change: StatusChange): void;
  error(error: unknown): void;
}

/**
 * Keeps one connection alive: dials, reconnects on the schedule, fails over, and correlates
 * requests with their answers.
 *
 * @example
 * const manager = new ConnectionManager(resolveClientOptions({ url, token }), hooks);
 * manager.connect();
 * await manager.request({ type: "ping" }, 5000, () => undefined);
 */
export class ConnectionManager {
  #o: ResolvedClientOptions;
  #hooks: ConnectionHooks;
  #urlIndex = 0;
  #token: string | undefined;
  #session: string | undefined;
  #pending: PendingRequests;

  #status: StatusChange = { status: "offline", polling: false };
  #started = false;
  #socket: WebSocketLike | undefined;
  #welcomed = false;
  #attempt = 0;
  #failures = 0;
  #hintMs: number | undefined;
  #reconnectTimer: unknown = undefined;
  #connectTimer: unknown = undefined;
  /** Idle probe: frames seen on this connection, and their count at the last probe tick. */
  #framesSeen = 0;
  #framesAtTick = 0;
  #probeTimer: unknown = undefined;
  /** Bumped per attempt and on shutdown: late callbacks of an older attempt are ignored. */
  #generation = 0;

  /**
   * @example
   * new ConnectionManager(resolveClientOptions({ url: "ws://localhost:8080/v1/ws", token: "t" }), hooks);
   */
  constructor(options: ResolvedClientOptions, hooks: ConnectionHooks) {
    this.#o = options;
    this.#hooks = hooks;
    this.#session = options.session;
    this.#pending = new PendingRequests(options.timers);
  }

  /** The current state. @example manager.status; // "live" */
  get status(): Status {
    return this.#status.status;
  }

  /** Whether a `welcome` arrived on the current socket. @example if (manager.live) send(); */
  get live(): boolean {
    return this.#welcomed;
  }

  /**
   * Identifies the current attempt: a request's outcome seen under another one belongs to a
   * connection that is gone.
   *
   * @example
   * const attempt = manager.attempt; await request; if (manager.attempt !== attempt) return;
   */
  get attempt(): number {
    return this.#generation;
  }

  /** The session id of the last `welcome`. @example manager.session; */
  get session(): string | undefined {
    return this.#session;
  }

  /** The endpoint of the current (or next) attempt. @example httpBaseFromWsUrl(manager.url); */
  get url(): string {
    return this.#o.urls[this.#urlIndex]!;
  }

  /**
   * Starts connecting (no-op when started); without a WebSocket, starts polling instead.
   *
   * @example
   * manager.connect();
   */
  connect(): void {
    if (this.#started) return;
    this.#started = true;
    this.#attempt = 0;
    this.#failures = 0;
    if (this.#o.WebSocket) return this.#open();
    if (this.#hooks.startPolling()) return this.setStatus("connecting", { reason: "no_websocket" });
    this.#started = false;
    this.setStatus("offline", { reason: "no_transport" });
  }

  /**
   * Stops for good: no reconnect, socket closed, pending requests rejected with `error`.
   *
   * @example
   * manager.close(new CourierError("unavailable", "client closed"));
   */
  close(error: CourierError): void {
    this.#shutdown(error);
    this.setStatus("offline", { reason: "closed" });
  }

  /**
   * The next reconnect waits `ms` instead of the schedule (a reconnect frame's `after`, a `Retry-After`).
   *
   * @example
   * manager.hint(3000);
   */
  hint(ms: number): void {
    this.#hintMs = ms;
    if (this.#reconnectTimer !== undefined) {
      this.#o.timers.clearTimeout(this.#reconnectTimer);
      this.#scheduleReconnect();
    }
  }

  /**
   * The token of the current attempt, else a fresh one from the provider (the polling path's Bearer).
   *
   * @example
   * const token = await manager.token();
   */
  async token(): Promise<string> {
    const source = this.#o.token;
    return this.#token ?? (typeof source === "string" ? source : await source());
  }

  /**
   * Keeps `token` for the next attempt; `undefined` forgets it, so the provider is asked again.
   *
   * @example
   * manager.useToken(undefined); // after a 401
   */
  useToken(token: string | undefined): void {
    this.#token = token;
  }

  /**
   * Sends a frame on the live connection; false when there is none.
   *
   * @example
   * manager.send({ type: "ack", channel: "user:a", offset: 7 });
   */
  send(frame: Frame): boolean {
    const socket = this.#socket;
    if (!socket || !this.#welcomed || socket.readyState !== OPEN) return false;
    try {
      socket.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Sends `frame` with a fresh `id`; settles with `map(answer)`, or a `CourierError` (`unavailable`
   * when not live or on loss, `timeout`, or the error frame's code).
   *
   * @example
   * await manager.request({ type: "rpc", method: "agent.run", data: {} }, 15_000, (f) => f.data);
   */
  request<T>(frame: Frame, timeoutMs: number, map: (answer: Frame) => T): Promise<T> {
    if (!this.#welcomed) return Promise.reject(new CourierError("unavailable", `Cannot send ${String(frame.type)}: not connected`));
    const { id, promise } = this.#pending.create(timeoutMs, map);
    if (!this.send({ ...frame, id })) this.#pending.reject(id, new CourierError("unavailable", `Cannot send ${String(frame.type)}: socket not open`, { requestId: id }));
    return promise;
  }

  /**
   * Records a state change; `status` hooks hear only real changes.
   *
   * @example
   * manager.setStatus("connecting", { reason: "connection_lost" });
   */
  setStatus(status: Status, info: { reason?: string; code?: number }): void {
    const next: StatusChange = { status, polling: this.#hooks.polling() };
    if (info.reason !== undefined) next.reason = info.reason;
    if (info.code !== undefined) next.code = info.code;
    const prev = this.#status;
    this.#status = next;
    if (prev.status !== next.status || prev.reason !== next.reason || prev.code !== next.code || prev.polling !== next.polling) {
      this.#hooks.status(next);
    }
  }

  #open(): void {
    this.#reconnectTimer = undefined;
    const generation = ++this.#generation;
    if (this.#status.status !== "connecting") this.setStatus("connecting", {});
    let token: string | Promise<string>;
    try {
      const source = this.#o.token;
      token = this.#token ?? (typeof source === "string" ? source : source());
    } catch (error) {
      return this.#tokenFailed(error);
    }
    if (typeof token === "string") return this.#dial(token);
    Promise.resolve(token).then(
      (value) => {
        if (generation === this.#generation && this.#started) this.#dial(value);
      },
      (error: unknown) => {
        if (generation === this.#generation && this.#started) this.#tokenFailed(error);
      },
    );
  }

  #tokenFailed(error: unknown): void {
    this.#hooks.error(error);
    this.#attemptFailed({ reason: "token_error" });
  }

  #dial(token: string): void {
    if (typeof token !== "string" || token.length === 0) return this.#tokenFailed(new TypeError("token provider returned no token"));
    this.#token = token;
    const url = new URL(this.url);
    url.searchParams.set("token", token);
    if (this.#session !== undefined) url.searchParams.set("session", this.#session);
    let socket: WebSocketLike;
    try {
      socket = new this.#o.WebSocket!(url.toString());
    } catch (error) {
      this.#hooks.error(error);
      return this.#attemptFailed({ reason: "connect_error" });
    }
    this.#socket = socket;
    this.#welcomed = false;
    socket.onmessage = (ev: { data: unknown }) => this.#onMessage(socket, ev.data);
    socket.onclose = (ev: { code?: number } | undefined) => this.#onLost(socket, ev?.code);
    // Browsers follow an error with a close (1006); Bun may not: either ends the attempt once.
    socket.onerror = () => this.#onLost(socket, undefined);
    this.#connectTimer = this.#o.timers.setTimeout(() => {
      this.#connectTimer = undefined;
      this.#onLost(socket, undefined, "connect_timeout");
    }, this.#o.connectTimeoutMs);
  }

  #onMessage(socket: WebSocketLike, data: unknown): void {
    if (socket !== this.#socket || typeof data !== "string") return;
    this.#framesSeen++;
    let frame: Frame;
    try {
      const parsed: unknown = JSON.parse(data);
      if (typeof parsed !== "object" || parsed === null) return;
      frame = parsed as Frame;
    } catch {
      return;
    }
    if (!this.#welcomed) {
      if (frame.type === "welcome") this.#onWelcome(frame as unknown as WelcomeFrame);
      else if (frame.type === "error") this.#hooks.error(new CourierError(frame.code as ErrorCode, String(frame.message)));
      return;
    }
    switch (frame.type) {
      case "event":
        return this.#hooks.frame(frame);
      case "subscribed":
        this.#pending.resolve(frame.id, frame);
        return this.#hooks.frame(frame);
      case "unsubscribed":
      case "pong":
      case "result":
        this.#pending.resolve(frame.id, frame);
        return;
      case "error": {
        const requestId = typeof frame.id === "number" || typeof frame.id === "string" ? frame.id : undefined;
        const error = new CourierError(frame.code as ErrorCode, String(frame.message), { requestId });
        if (!this.#pending.reject(frame.id, error)) this.#hooks.error(error);
        return;
      }
      case "reconnect":
        if (typeof frame.after === "number" && frame.after >= 0) this.#hintMs = frame.after;
        return;
    }
  }

  #onWelcome(frame: WelcomeFrame): void {
    this.#clearConnectTimer();
    if (this.#o.idleProbe && typeof frame.heartbeat === "number" && frame.heartbeat > 0) this.#startProbe(frame.heartbeat * 1000);
    this.#welcomed = true;
    this.#attempt = 0;
    this.#failures = 0;
    this.#hintMs = undefined;
    if (typeof frame.session === "string") this.#session = frame.session;
    this.#hooks.welcome(frame);
    this.setStatus("live", {});
  }

  #onLost(socket: WebSocketLike, code: number | undefined, reason?: string): void {
    if (socket !== this.#socket) return;
    this.#detach(socket);
    const wasLive = this.#welcomed;
    this.#welcomed = false;
    this.#hooks.lost();
    this.#pending.rejectAll(new CourierError("unavailable", "connection lost"));
    const advice = code === undefined ? undefined : closeAdvice[code as CloseCode];
    if (advice && !advice.reconnect) {
      this.#started = false;
      this.#shutdown(undefined);
      return this.setStatus("offline", { reason: advice.reason, code });
    }
    if (advice?.refreshToken) this.#token = undefined;
    if (!wasLive) return this.#attemptFailed({ reason: reason ?? "connect_failed", code });
    this.setStatus("connecting", { reason: advice?.reason ?? reason ?? "connection_lost", code });
    this.#scheduleReconnect();
  }

  /** An attempt that got no welcome: maybe a 401 (invisible in browsers), so the token is refreshed. */
  #attemptFailed(info: { reason: string; code?: number }): void {
    this.#token = undefined;
    this.#failures++;
    this.#urlIndex = (this.#urlIndex + 1) % this.#o.urls.length;
    if (this.#failures >= this.#o.pollAfterFailures) this.#hooks.startPolling();
    this.setStatus("connecting", info);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    let delay: number;
    if (this.#hintMs !== undefined) {
      // Server hints win over the schedule and do not advance it.
      delay = this.#hintMs;
      this.#hintMs = undefined;
    } else {
      delay = backoffDelay(this.#attempt++, this.#o.backoff, this.#o.random);
    }
    this.#reconnectTimer = this.#o.timers.setTimeout(() => this.#open(), delay);
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
      this.#probeTimer = this.#o.timers.setTimeout(tick, heartbeatMs);
      if (this.#framesSeen !== this.#framesAtTick) {
        this.#framesAtTick = this.#framesSeen;
        return;
      }
      this.request({ type: "ping" }, heartbeatMs, () => undefined).catch((error: unknown) => {
        if (socket && socket === this.#socket && error instanceof CourierError && error.code === ErrorCode.Timeout) {
          this.#onLost(socket, undefined, "stale");
        }
      });
    };
    this.#probeTimer = this.#o.timers.setTimeout(tick, heartbeatMs);
  }

  #detach(socket: WebSocketLike): void {
    this.#clearConnectTimer();
    if (this.#probeTimer !== undefined) this.#o.timers.clearTimeout(this.#probeTimer);
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
    if (this.#connectTimer !== undefined) this.#o.timers.clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
  }

  /** Stops everything that runs on its own; `error` rejects pending requests. */
  #shutdown(error: CourierError | undefined): void {
    this.#generation++;
    if (this.#reconnectTimer !== undefined) this.#o.timers.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#hooks.stopped();
    if (this.#socket) this.#detach(this.#socket);
    this.#welcomed = false;
    this.#hooks.lost();
    if (error) this.#pending.rejectAll(error);
  }
}
