/**
 * Tiered signals (PROTOCOL.md §2, `POST /v1/signals`). A signal is stored as a critical event on
 * `signals:<tier>`: the store is the durable signal store, and fan-out is the hub's ordinary
 * channel delivery, so nothing here looks at users or tiers per broadcast.
 */
import { isTier, TIERS, type Tier } from "../protocol/codes.ts";
import type { ExtensionContext } from "../server/extension.ts";
import { json, readPublishBody, requireKey, toItem, validationError } from "../server/http.ts";

// The channel names are the SDK's (`signalsFor`), so a user subscribes to exactly what this route fills.
import { signalChannel, signalsFor as signalChannelsFor } from "../../packages/client/src/signals.ts";

export { signalChannel, signalChannelsFor };

/**
 * `POST /v1/signals`: API key; body `{"tier","event"?,"data"}` (event defaults to `signal`; an
 * `Idempotency-Key` header works as on `/v1/publish`) → 201 `{"channel","offset","epoch"}` once the
 * signal is stored durably (critical), before and whatever its fan-out; 503 (the server's error mapper) when it cannot be stored.
 *
 * Who receives it: every user of that tier or higher. Delivery is by subscription, and explicit —
 * nothing joins a user automatically. A user of tier T subscribes to each `signals:<tier>` for the
 * tiers up to T ({@linkcode signalChannelsFor}; permissions refuse higher ones), with `since` to
 * catch up on signals stored while offline. So a `pro` signal reaches pro and enterprise users,
 * and a pro user sees starter and pro signals.
 *
 * @example
 * await fetch(`${base}/v1/signals`, { method: "POST", headers: { authorization: `Bearer ${apiKey}` },
 *   body: JSON.stringify({ tier: "pro", event: "price_alert", data: { symbol: "ACME" } }) });
 * // 201 {"channel":"signals:pro","offset":12,"epoch":"…"}
 */
export async function signalsRoute(ctx: ExtensionContext, req: Request): Promise<Response> {
  requireKey(req, ctx.config.auth.apiKey);
  const body = await readPublishBody(ctx, req, ctx.config.limits.maxPublishBodyBytes);
  const tier = body.tier;
  if (!isTier(tier)) {
    throw validationError([{ path: ["tier"], message: `must be one of ${TIERS.join(", ")}` }]);
  }
  const item = toItem(
    ctx.criticalEvents,
    { channel: signalChannel(tier), event: body.event ?? "signal", dataJson: body.dataJson ?? "null", critical: true },
    req.headers.get("idempotency-key"),
  );
  const [outcome] = await ctx.publisher.publish([item]);
  return json({ channel: outcome!.channel, offset: outcome!.offset, epoch: outcome!.epoch }, 201);
}
