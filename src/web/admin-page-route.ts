/**
 * The admin page at `/admin` (same bundle and CSP as the status page) and its one route of its
 * own, `GET /admin/api/history?channel=&since=&limit=`: any channel's stored events, behind the
 * admin key, because `/v1/history` needs a user token that may read the channel and an operator
 * has none. Everything else the page shows comes from the documented routes (`/ws/stats`,
 * `/ready`, `/v1/presence`, `/v1/publish`, `/v1/disconnect`), with keys sent as
 * `Authorization: Bearer`, never in a URL.
 */
import { bearer, keyMatches } from "../auth/keys.ts";
import type { Broker } from "../engine/types.ts";
import { parseChannel } from "../protocol/channel.ts";
import type { Extension, ExtensionContext, RouteHandler, RouteUrl } from "../server/extension.ts";
import { HttpError, rawJson } from "../server/http.ts";
import { bundlePage, pageRoutes } from "./page-bundle.ts";

/** Events one history call answers at most, and by default. */
export const ADMIN_HISTORY_MAX = 200;
const ADMIN_HISTORY_DEFAULT = 50;

/**
 * The admin page as a server extension.
 *
 * @example
 * extensions.add([await statusPage(), await adminPage(ctx)]);
 */
export async function adminPage(ctx: Pick<ExtensionContext, "config" | "broker">): Promise<Extension> {
  return {
    routes: {
      ...pageRoutes("/admin", await bundlePage("admin.html")),
      "/admin/api/history": { GET: adminHistory(ctx) },
    },
  };
}

/**
 * A page of `channel`'s history: the events after `since`, or without `since` the last `limit`
 * events. Answers `{channel, epoch, offset, events}` (`offset` is the channel's top; events are
 * the stored frames, oldest first).
 */
export function adminHistory({ config, broker }: { config: ExtensionContext["config"]; broker: Pick<Broker, "position" | "history"> }): RouteHandler {
  return async (req, url) => {
    if (!keyMatches(bearer(req), config.auth.adminKey)) throw new HttpError(401, "a valid admin key is required");
    const channel = parseChannel(url.searchParams.get("channel"));
    if (!channel) throw new HttpError(400, "channel is missing or not a valid channel name");
    const limit = intParam(url, "limit", 1, ADMIN_HISTORY_MAX) ?? ADMIN_HISTORY_DEFAULT;
    let since = intParam(url, "since", 0, Number.MAX_SAFE_INTEGER);
    if (since === undefined) since = Math.max(0, (await broker.position(channel.channel)).offset - limit);
    const page = await broker.history(channel.channel, since, limit);
    const head = `{"channel":${JSON.stringify(channel.channel)},"epoch":${JSON.stringify(page.epoch)},"offset":${page.offset}`;
    return rawJson(`${head},"events":[${page.events.map((e) => e.frame).join(",")}]}`);
  };
}

function intParam(url: RouteUrl, name: string, min: number, max: number): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new HttpError(400, `${name} must be an integer from ${min} to ${max}`);
  return n;
}
