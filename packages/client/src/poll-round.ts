/**
 * One round of the HTTP polling fallback: `GET /v1/history` per subscribed channel from its
 * position, the §5 recovery verdict when the server says a gap happened, then delivery.
 */
import { CourierError } from "./errors.ts";
import { fetchHistory } from "./history.ts";
import type { PollOutcome } from "./poller.ts";
import { recoveryVerdict } from "./protocol/recovery.ts";
import type { Subscriptions } from "./subscriptions.ts";
import type { EventFrame, FetchLike, Recovery } from "./types.ts";

/** What a round needs. */
export interface PollRoundOptions {
  fetch: FetchLike;
  httpBase: string;
  token: string;
  limit: number;
  nowMs: number;
  subs: Subscriptions;
  /** False once the WebSocket is live again: late answers are dropped, it replays by itself. */
  isCurrent(): boolean;
  deliver(frame: EventFrame): void;
  recovery(recovery: Recovery): void;
  /** The token was refused (401): the next round asks the provider again. */
  unauthorized(): void;
  error(error: CourierError): void;
}

/**
 * Polls every subscribed channel once; reports the longest `Retry-After` seen.
 *
 * @example
 * const outcome = await pollRound({ fetch, httpBase, token, limit: 100, nowMs: Date.now(), subs, isCurrent: () => true,
 *   deliver, recovery: (r) => console.log(r), unauthorized: () => {}, error: console.error });
 */
export async function pollRound(o: PollRoundOptions): Promise<PollOutcome | void> {
  let retryAfterMs: number | undefined;
  await Promise.all(
    o.subs.channels().map(async (channel) => {
      const since = o.subs.position(channel);
      const result = await fetchHistory({ fetch: o.fetch, httpBase: o.httpBase, token: o.token, channel, since, limit: o.limit, nowMs: o.nowMs });
      if (!o.isCurrent()) return;
      if (!result.ok) {
        if (result.status === 401) o.unauthorized();
        if (result.retryAfterMs !== undefined) retryAfterMs = Math.max(retryAfterMs ?? 0, result.retryAfterMs);
        o.error(new CourierError(result.status === 401 ? "unauthorized" : "unavailable", `history of ${channel} answered ${result.status}`, { channel }));
        return;
      }
      const { page } = result;
      const before = o.subs.position(channel);
      if (!before) {
        // Like a subscribe without since: start at the head, only later events follow.
        o.subs.reconcile(channel, { epoch: page.epoch, offset: page.offset });
        return;
      }
      // A server that says not recovered without a reason lost at least the event after ours.
      const verdict = recoveryVerdict(before, { epoch: page.epoch, offset: page.offset, trimmedThrough: page.recovered ? 0 : before.offset + 1 });
      const reason = page.recovered ? undefined : (page.reason ?? (verdict.recovered ? undefined : verdict.reason));
      const recovery = o.subs.reconcile(channel, { epoch: page.epoch, offset: page.offset, recovered: page.recovered, reason });
      // Recovered polls are the normal case: only a gap is worth telling.
      if (recovery && !recovery.recovered) o.recovery(recovery);
      for (const event of page.events) if (event && event.channel === channel) o.deliver(event);
    }),
  );
  return retryAfterMs === undefined ? undefined : { retryAfterMs };
}
