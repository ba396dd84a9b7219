/**
 * Which channels the server holds for this client: `subscribe` requests with their `since`, the
 * difference sent after a resumed session, retries after transient refusals, and which channels
 * are confirmed on the current connection (only those may be acked).
 */
import { backoffDelay, type ResolvedBackoff } from "./backoff.ts";
import type { ConnectionManager } from "./connection-manager.ts";
import { CourierError } from "./errors.ts";
import { ErrorCode } from "./protocol/codes.ts";
import type { Subscriptions } from "./subscriptions.ts";
import type { Timers } from "./types.ts";

/** Refusals worth another try: the server or the store was busy, not the request wrong. */
const TRANSIENT: readonly string[] = [ErrorCode.Unavailable, ErrorCode.Timeout, ErrorCode.Internal, ErrorCode.RateLimited];

/** Options of `ChannelJoins`. */
export interface ChannelJoinsOptions {
  connection: Pick<ConnectionManager, "request" | "live" | "attempt">;
  subs: Subscriptions;
  timers: Timers;
  backoff: ResolvedBackoff;
  random: () => number;
  requestTimeoutMs: number;
  /** A refused subscribe, as a `CourierError` carrying the channel. */
  error(error: CourierError): void;
}

/**
 * The server side of the client's subscriptions.
 *
 * @example
 * const joins = new ChannelJoins({ connection, subs, timers, backoff, random: Math.random, requestTimeoutMs: 15_000, error: console.error });
 * joins.welcomed(false); // after a welcome: subscribe every channel, with since
 */
export class ChannelJoins {
  #o: ChannelJoinsOptions;
  /** Channels the server holds for this session: a resumed session needs only the difference. */
  #held = new Set<string>();
  /**
   * Channels confirmed by a `subscribed` on the current connection. Only these may be acked: the
   * server counts an ack for a channel it has not joined yet as a protocol error.
   */
  #confirmed = new Set<string>();
  /** Subscribe retries after a transient refusal (`unavailable`, `timeout`…), per channel. */
  #retries = new Map<string, { count: number; timer: unknown }>();

  /** @example new ChannelJoins(options); */
  constructor(options: ChannelJoinsOptions) {
    this.#o = options;
  }

  /** Whether `channel` may be acked now. @example if (joins.isConfirmed("user:a")) send(ack); */
  isConfirmed(channel: string): boolean {
    return this.#confirmed.has(channel);
  }

  /**
   * Sends `subscribe` (with the channel's position as `since`).
   *
   * @example
   * if (first && connection.live) joins.join("job:42");
   */
  join(channel: string): void {
    const since = this.#o.subs.position(channel);
    const attempt = this.#o.connection.attempt;
    this.#held.add(channel);
    this.#o.connection.request(since ? { type: "subscribe", channel, since } : { type: "subscribe", channel }, this.#o.requestTimeoutMs, () => undefined).catch(
      (error: unknown) => {
        if (this.#o.connection.attempt !== attempt || !this.#o.connection.live) {
          // Lost with the connection: unknown whether the server got it, so the next welcome sends it again.
          this.#held.delete(channel);
          return;
        }
        const code = error instanceof CourierError ? error.code : ErrorCode.Internal;
        // Names and frames are checked here, so bad_request means "already subscribed": a
        // resumed session the client did not know (a reload) or a retry racing a slow join.
        // The server holds the channel and sends its own `subscribed`.
        if (code === ErrorCode.BadRequest) return;
        this.#held.delete(channel);
        if (TRANSIENT.includes(code)) this.#retry(channel);
        const message = error instanceof Error ? error.message : String(error);
        const requestId = error instanceof CourierError ? error.requestId : undefined;
        this.#o.error(new CourierError(code, message, { requestId, channel, cause: error }));
      },
    );
  }

  /**
   * The channel's last handler went: `unsubscribe` goes out when the server holds it. While down,
   * a channel the session holds stays listed: the resume sends its unsubscribe.
   *
   * @example
   * joins.leave("job:42");
   */
  leave(channel: string): void {
    this.#confirmed.delete(channel);
    this.#cancelRetry(channel);
    if (this.#o.connection.live && this.#held.delete(channel)) this.#unsubscribe(channel);
  }

  /**
   * The server took `channel` away: it no longer holds it, and nothing is sent or retried for it.
   *
   * @example
   * joins.dropped("public:lobby");
   */
  dropped(channel: string): void {
    this.#held.delete(channel);
    this.#confirmed.delete(channel);
    this.#cancelRetry(channel);
  }

  /**
   * A `welcome` arrived. Resumed: the server restored its channels and replays them itself, so
   * only the difference goes out; else every channel again.
   *
   * @example
   * joins.welcomed(frame.resumed === true);
   */
  welcomed(resumed: boolean): void {
    const local = this.#o.subs.channels();
    if (!resumed) {
      this.#held.clear();
      for (const channel of local) this.join(channel);
      return;
    }
    for (const channel of [...this.#held]) {
      if (!this.#o.subs.has(channel)) {
        this.#held.delete(channel);
        this.#unsubscribe(channel);
      }
    }
    for (const channel of local) if (!this.#held.has(channel)) this.join(channel);
  }

  /**
   * A `subscribed` arrived; true when the channel is wanted (now confirmed), false when it was
   * dropped meanwhile (an `unsubscribe` goes out).
   *
   * @example
   * if (joins.subscribed("user:a")) acks.flush("user:a");
   */
  subscribed(channel: string): boolean {
    if (!this.#o.subs.has(channel)) {
      // A restored session may hold channels this page no longer wants: unacked, they would look stale.
      this.#held.delete(channel);
      this.#unsubscribe(channel);
      return false;
    }
    this.#held.add(channel);
    this.#confirmed.add(channel);
    this.#cancelRetry(channel);
    return true;
  }

  /**
   * The connection is gone: nothing is confirmed and retries wait for the next welcome.
   *
   * @example
   * joins.lost();
   */
  lost(): void {
    this.#confirmed.clear();
    this.#cancelRetry();
  }

  #unsubscribe(channel: string): void {
    this.#o.connection.request({ type: "unsubscribe", channel }, this.#o.requestTimeoutMs, () => undefined).catch(() => {});
  }

  #retry(channel: string): void {
    const previous = this.#retries.get(channel);
    if (previous?.timer !== undefined) return;
    const count = (previous?.count ?? 0) + 1;
    // Same schedule as reconnects, starting at its 2 s step: 2 s, 4 s, then the cap.
    const { backoff } = this.#o;
    const delay = backoffDelay(backoff.stepsMs.length - 1 + count, backoff, this.#o.random);
    const timer = this.#o.timers.setTimeout(() => {
      this.#retries.set(channel, { count, timer: undefined });
      if (this.#o.connection.live && this.#o.subs.has(channel) && !this.#held.has(channel)) this.join(channel);
    }, delay);
    this.#retries.set(channel, { count, timer });
  }

  #cancelRetry(channel?: string): void {
    for (const [ch, retry] of this.#retries) {
      if (channel !== undefined && ch !== channel) continue;
      if (retry.timer !== undefined) this.#o.timers.clearTimeout(retry.timer);
      this.#retries.delete(ch);
    }
  }
}
