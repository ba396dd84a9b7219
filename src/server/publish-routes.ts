/**
 * `POST /v1/publish` and `POST /v1/publish/batch`. Per publish: validate, serialize `data` once,
 * hand to the publisher (breaker, store, fan-out), answer once stored as the durability class
 * requires. A store outage is thrown on as it is: the one error mapper answers 503.
 */
import { BatchBodySchema } from "../protocol/publish.ts";
import type { Context } from "./context.ts";
import { EventTooLargeError } from "./publisher.ts";
import { HttpError, httpError, json, readPublishBody, requireKey, toItem } from "./http.ts";

export async function publishRoute(ctx: Context, req: Request): Promise<Response> {
  requireKey(req, ctx.config.auth.apiKey);
  const body = await readPublishBody(ctx, req, ctx.config.limits.maxPublishBodyBytes);
  const item = toItem(ctx.criticalEvents, body, req.headers.get("idempotency-key"));
  const [outcome] = await ctx.publisher.publish([item]);
  return json({ channel: outcome!.channel, offset: outcome!.offset, epoch: outcome!.epoch });
}

export async function publishBatchRoute(ctx: Context, req: Request): Promise<Response> {
  requireKey(req, ctx.config.auth.apiKey);
  const limits = ctx.config.limits;
  const body = await readPublishBody(ctx, req, limits.maxPublishBodyBytes * 4, limits.batchMaxItems);
  const batch = BatchBodySchema.safeParse(body);
  if (!batch.success) return httpError(400, 'body must be {"items":[…]} with 1 or more publish bodies', { extra: { issues: batch.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) } });
  // Over `batchMaxItems` never gets here: the body reader refuses it by its count, before serializing.
  const items = batch.data.items.map((raw, index) => {
    try {
      return toItem(ctx.criticalEvents, raw, null, `items.${index}`);
    } catch (error) {
      if (error instanceof HttpError) {
        throw new HttpError(400, `item ${index} is invalid: ${error.message}`, { extra: { index, ...error.options.extra } });
      }
      throw error;
    }
  });
  let outcomes;
  try {
    outcomes = await ctx.publisher.publish(items);
  } catch (error) {
    // A batch names its item even when it holds one.
    if (error instanceof EventTooLargeError) throw new EventTooLargeError(error.index, error.bytes, error.limit, true);
    throw error;
  }
  return json({ results: outcomes.map((o) => ({ channel: o.channel, offset: o.offset, epoch: o.epoch })) });
}
