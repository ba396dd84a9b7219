/**
 * The connection side of the client, as socket.io-client keeps its `Manager`: one WebSocket at a
 * time, the token, URL failover, the session, the reconnect schedule with server hints, the idle
 * probe and the requests awaiting an answer. What the connection carries (channels, offsets, acks,
 * polling) belongs to `CourierClient`, which hears about the connection through `ConnectionHooks`.
 *
 * Why one file over 300 lines: dialling, welcome, close advice, refusal checks and status are one
 * state machine; reconnect timing, the idle probe and token caching are already apart.
 */
import type { ResolvedClientOptions } from "./client-options.ts";
import { CourierError } from "./errors.ts";
import { IdleProbe } from "./idle-probe.ts";
import { PendingRequests } from "./pending-requests.ts";
import { httpBaseFromWsUrl } from "./history.ts";
import { closeAdvice, ErrorCode, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, type CloseCode } from "./protocol/codes.ts";
import type { WelcomeFrame } from "./protocol/frames.ts";
import { ReconnectSchedule } from "./reconnect-schedule.ts";
import { SocketConnection } from "./socket-connection.ts";
import { TokenCache } from "./token-cache.ts";
import { checkConnection, refusalHeals } from "./ws-check.ts";
import type { Status, StatusChange } from "./types.ts";

type Frame = Record<string, unknown>;

/** What the connection tells its owner. Hooks run synchronously, in the order listed per event. */
export interface ConnectionHooks {
  /** A `welcome` arrived; `status` goes `live` right after. */
  welcome(frame: WelcomeFrame): void;
  /**
   * A frame for the channels (`event`, `subscribed`, an `unsubscribed` the server decided on); a
   * `subscribed`'s request is already settled.
   */
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
  #session: string | undefined;
  #pending: PendingRequests;
  #schedule: ReconnectSchedule;
  #probe: IdleProbe;
  /** The token of the current attempt; the polling path reads and refreshes it too. */
  readonly tokens: TokenCache;

  #status: StatusChange = { status: "offline", polling: false };
  #started = false;
  #conn: SocketConnection | undefined;
  #welcomed = false;
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
    this.#schedule = new ReconnectSchedule(options);
    this.#probe = new IdleProbe(options.timers);
    this.tokens = new TokenCache(options.token);
  }

  /** The current state. @example manager.status; // "live" */
  get status(): Status {
    return this.#status.status;
  }

  /** Whether a `welcome` arrived on the current socket. @example if (manager.live) send(); */
  get live(): boolean {
    return this.#welcomed;
  }

  /** Identifies the attempt: an outcome seen under another one is of a gone connection. @example const a = manager.attempt; */
  get attempt(): number {
    return this.#generation;
  }

  /** The session id of the last `welcome`. @example manager.session; */
  get session(): string | undefined {
    return this.#session;
  }

  /** The endpoint of the current (or next) attempt. @example httpBaseFromWsUrl(manager.url); */
  get url(): string {
    return this.#schedule.url;
  }

  /** The HTTP base for the current endpoint (`httpBase`, else derived from `url`). @example fetch(`${manager.httpBase}/v1/history`); */
  get httpBase(): string {
    return this.#o.httpBase ?? httpBaseFromWsUrl(this.url);
  }

  /** Starts connecting (no-op when started); without a WebSocket, polling instead. @example manager.connect(); */
  connect(): void {
    if (this.#started) return;
    this.#started = true;
    this.#schedule.reset();
    if (this.#o.WebSocket) return this.#open();
    if (this.#hooks.startPolling()) return this.setStatus("connecting", { reason: "no_websocket" });
    this.#started = false;
    this.setStatus("offline", { reason: "no_transport" });
  }

  /** Stops for good, rejecting pending requests with `error`. @example manager.close(new CourierError("unavailable", "closed")); */
  close(error: CourierError): void {
    this.#shutdown(error);
    this.setStatus("offline", { reason: "closed" });
  }

  /** The next reconnect waits `ms` instead of the schedule (a `Retry-After`). @example manager.hint(3000); */
  hint(ms: number): void {
    this.#schedule.hint(ms);
  }

  /** Sends a frame on the live connection; false when there is none. @example manager.send({ type: "ack", channel: "user:a", offset: 7 }); */
  send(frame: Frame): boolean {
    return this.#welcomed && this.#conn !== undefined && this.#conn.send(frame);
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

  /** Records a state change; the `status` hook hears only real changes. @example manager.setStatus("live", {}); */
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
    const generation = ++this.#generation;
    if (this.#status.status !== "connecting") this.setStatus("connecting", {});
    let token: string | Promise<string>;
    try {
      token = this.tokens.get();
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
    this.tokens.keep(token);
    const url = new URL(this.url);
    const viaQuery = this.#o.tokenTransport === "query";
    if (viaQuery) url.searchParams.set("token", token);
    if (this.#session !== undefined) url.searchParams.set("session", this.#session);
    let conn: SocketConnection;
    try {
      conn = new SocketConnection({
        WebSocket: this.#o.WebSocket!,
        url: url.toString(),
        ...(viaQuery ? {} : { protocols: [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token] }),
        timers: this.#o.timers,
        connectTimeoutMs: this.#o.connectTimeoutMs,
        frame: (frame) => this.#onFrame(frame),
        lost: (code, reason) => this.#onLost(conn, code, reason),
      });
    } catch (error) {
      this.#hooks.error(error);
      return this.#attemptFailed({ reason: "connect_error" });
    }
    this.#conn = conn;
    this.#welcomed = false;
  }

  #onFrame(frame: Frame): void {
    this.#probe.saw();
    if (!this.#welcomed) {
      if (frame.type === "welcome") this.#onWelcome(frame as unknown as WelcomeFrame);
      else if (frame.type === "error") this.#hooks.error(CourierError.fromFrame(frame));
      return;
    }
    switch (frame.type) {
      case "event":
        return this.#hooks.frame(frame);
      case "subscribed":
        this.#pending.answer(frame);
        return this.#hooks.frame(frame);
      case "unsubscribed":
        // `reason: "server"` answers no request: the server took the channel away (`POST /v1/unsubscribe`).
        if (!this.#pending.answer(frame) && frame.reason === "server") this.#hooks.frame(frame);
        return;
      case "pong":
      case "result":
        this.#pending.answer(frame);
        return;
      case "error":
        if (!this.#pending.answer(frame)) this.#hooks.error(CourierError.fromFrame(frame));
        return;
      case "reconnect":
        if (typeof frame.after === "number" && frame.after >= 0) this.#schedule.hint(frame.after);
        return;
    }
  }

  #onWelcome(frame: WelcomeFrame): void {
    this.#conn?.welcomed();
    if (this.#o.idleProbe && typeof frame.heartbeat === "number" && frame.heartbeat > 0) this.#startProbe(frame.heartbeat * 1000);
    this.#welcomed = true;
    this.#schedule.reset();
    this.#schedule.hint(undefined);
    if (typeof frame.session === "string") this.#session = frame.session;
    this.#hooks.welcome(frame);
    this.setStatus("live", {});
  }

  #onLost(conn: SocketConnection, code: number | undefined, reason?: string): void {
    if (conn !== this.#conn) return;
    this.#detach();
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
    if (advice?.refreshToken) this.tokens.forget();
    if (!wasLive) {
      this.#checkRefusal();
      return this.#attemptFailed({ reason: reason ?? "connect_failed", code });
    }
    this.setStatus("connecting", { reason: advice?.reason ?? reason ?? "connection_lost", code });
    this.#schedule.schedule(() => this.#open());
  }

  /** An attempt that got no welcome: maybe a 401 (invisible in browsers), so the token is refreshed. */
  #attemptFailed(info: { reason: string; code?: number }): void {
    this.tokens.forget();
    if (this.#schedule.failed() >= this.#o.pollAfterFailures) this.#hooks.startPolling();
    this.setStatus("connecting", info);
    this.#schedule.schedule(() => this.#open());
  }

  /**
   * Asks `/v1/ws/check` why the attempt just lost got no welcome, with the token it used. The
   * answer only counts while no newer attempt has succeeded or been stopped: it reports the
   * reason, moves the next attempt to the `Retry-After`, or stops on a refusal that cannot heal.
   */
  #checkRefusal(): void {
    const fetch = this.#o.fetch;
    const token = this.tokens.kept;
    if (!this.#o.checkRefusals || !fetch || token === undefined) return;
    const attempt = this.#generation;
    void checkConnection({ fetch, httpBase: this.httpBase, token, nowMs: this.#o.clock.now() }).then((refusal) => {
      // A later attempt may already be dialling: it counts unless it was welcomed or stopped.
      if (!refusal || !this.#started || this.#welcomed || this.#generation > attempt + 1) return;
      if (!refusalHeals(refusal, typeof this.#o.token === "function")) {
        this.#started = false;
        this.#shutdown(undefined);
        return this.setStatus("offline", { reason: refusal.reason });
      }
      if (refusal.retryAfterMs !== undefined) this.#schedule.hint(refusal.retryAfterMs);
      this.setStatus("connecting", { reason: refusal.reason });
    });
  }

  /** A ping unanswered within a heartbeat means the connection is stale (see `IdleProbe`). */
  #startProbe(heartbeatMs: number): void {
    const conn = this.#conn;
    this.#probe.start(heartbeatMs, () => {
      this.request({ type: "ping" }, heartbeatMs, () => undefined).catch((error: unknown) => {
        if (conn && error instanceof CourierError && error.code === ErrorCode.Timeout) this.#onLost(conn, undefined, "stale");
      });
    });
  }

  #detach(): void {
    this.#probe.stop();
    this.#conn?.close();
    this.#conn = undefined;
  }

  /** Stops everything that runs on its own; `error` rejects pending requests. */
  #shutdown(error: CourierError | undefined): void {
    this.#generation++;
    this.#schedule.cancel();
    this.#hooks.stopped();
    this.#detach();
    this.#welcomed = false;
    this.#hooks.lost();
    if (error) this.#pending.rejectAll(error);
  }
}
