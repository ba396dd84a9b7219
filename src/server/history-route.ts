/**
 * `GET /v1/history?channel=&since=&epoch=&limit=` — the polling fallback (PROTOCOL.md §2, §5).
 * The body is assembled from stored frame texts; only agent stream events are parsed, to collapse them.
 * Each user polls within `limits.historyPerUserPerSec` (burst `historyBurst`): past it, 429 with
 * the `Retry-After` of the user's own bucket, before any permission or store read.
 */
import { bearer } from "../auth/keys.ts";
import { TokenError } from "../auth/tokens.ts";
import { mayJoin } from "../connection/permissions.ts";
import { collapseStreams } from "../delivery/stream-replay.ts";
import { KeyedRateLimiter } from "../connection/rate-limit.ts";
import { parseChannel } from "../protocol/channel.ts";
import { recoveryVerdict } from "../protocol/recovery.ts";
import type { Context } from "./context.ts";
import type { RouteUrl } from "./extension.ts";
import { HttpError, rawJson } from "./http.ts";

const DEFAULT_LIMIT = 100;

function intParam(url: RouteUrl, name: string, fallback: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) throw new HttpError(400, `${name} must be an integer from 0 to ${max}`);
  return n;
}

/**
 * The history route, with its per-user rate limiter.
 *
 * @example
 * routes["/v1/history"] = { GET: historyRoute(ctx) };
 */
export function historyRoute(ctx: Context): (req: Request, url: RouteUrl) => Promise<Response> {
  const { historyPerUserPerSec, historyBurst } = ctx.config.limits;
  const limiter = new KeyedRateLimiter({ perSecond: historyPerUserPerSec, burst: historyBurst });
  return (req, url) => history(ctx, limiter, req, url);
}

async function history(ctx: Context, limiter: KeyedRateLimiter, req: Request, url: RouteUrl): Promise<Response> {
  let principal;
  try {
    principal = await ctx.verify(bearer(req) ?? url.searchParams.get("token"));
  } catch (error) {
    throw new HttpError(401, error instanceof TokenError ? error.message : "invalid token");
  }
  const waitMs = limiter.take(principal.user, ctx.now());
  // Counted in `http.server.request.duration` with status 429, like every answer.
  if (waitMs > 0) throw new HttpError(429, `at most ${ctx.config.limits.historyPerUserPerSec} history requests per second per user`, { retryAfterS: Math.ceil(waitMs / 1000) });
  const channel = parseChannel(url.searchParams.get("channel"));
  if (!channel) throw new HttpError(400, "channel is missing or not a valid channel name");
  let allowed: boolean;
  try {
    allowed = await mayJoin(principal, channel, ctx.extensions.jobOwner);
  } catch {
    throw new HttpError(503, "permissions cannot be checked right now", { retryAfterS: ctx.config.server.retryAfterS });
  }
  if (!allowed) throw new HttpError(403, `not allowed to read ${channel.channel}`);
  const since = intParam(url, "since", 0, Number.MAX_SAFE_INTEGER);
  const limit = intParam(url, "limit", DEFAULT_LIMIT, ctx.config.delivery.replayLimit) || DEFAULT_LIMIT;
  const epoch = url.searchParams.get("epoch");

  const page = await ctx.broker.history(channel.channel, since, limit);
  // An empty `epoch=` names no epoch, as an absent one.
  const verdict = recoveryVerdict({ offset: since, epoch: epoch || null }, page);
  // Agent streams read as PROTOCOL §8 says: one snapshot or one append per stream, not per token.
  const replay = verdict.replay ? collapseStreams(page.events) : [];
  const head =
    `{"channel":${JSON.stringify(channel.channel)},"epoch":${JSON.stringify(page.epoch)},"offset":${page.offset},"recovered":${verdict.recovered}` +
    (verdict.recovered ? "" : `,"reason":"${verdict.reason}"`);
  return rawJson(`${head},"events":[${replay.map((e) => e.frame).join(",")}]}`);
}
