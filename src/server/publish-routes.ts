/**
 * `POST /v1/publish` and `POST /v1/publish/batch`. Per publish: validate, serialize `data` once,
 * hand to the engine (offset, store, fan-out), answer once stored as the durability class requires.
 */
import { bearer, keyMatches } from "../auth/keys.ts";
import { StoreUnavailableError, type PublishItem } from "../engine/types.ts";
import { BatchBodySchema, PublishBodySchema } from "../protocol/publish.ts";
import { JsonGuardError, SerializeTimeoutError, parsePublishSync, type ParsedPublish } from "../protocol/json-guard.ts";
import { exceedsDepth } from "../protocol/json-depth.ts";
import type { Context } from "./context.ts";
import { HttpError, httpError, json } from "./http.ts";

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

/** Reads a body within `limit` bytes as text: 413 past it. */
export async function readText(req: Request, limit: number): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
  const bytes = await req.bytes();
  if (bytes.byteLength > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
  return new TextDecoder().decode(bytes);
}

/**
 * Reads a JSON object body (400 when it is not JSON, whatever its content type).
 *
 * @example
 * const body = await readJson(req, 64 * 1024, 32);
 */
export async function readJson(req: Request, limit: number, maxDepth: number): Promise<Record<string, unknown>> {
  const text = await readText(req, limit);
  if (exceedsDepth(text, maxDepth)) throw new HttpError(400, `body nests deeper than ${maxDepth}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, "body is not valid JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "body must be a JSON object");
  return body as Record<string, unknown>;
}

const GUARD_MESSAGES = { bad_json: "body is not valid JSON", too_deep: "body nests too deeply", not_object: "body must be a JSON object" } as const;

/**
 * Reads a publish body and serializes each `data` once: small bodies on this thread (the fast
 * path), large ones in the guard's worker under the serializer budget (the slow path), so one
 * pathological payload costs its publisher a 503, not everyone a frozen event loop.
 */
export async function readPublishBody(ctx: Context, req: Request, limit: number, maxItems?: number): Promise<ParsedPublish> {
  const text = await readText(req, limit);
  const slow = text.length > ctx.config.delivery.slowPathBytes;
  const started = performance.now();
  try {
    const parsed = slow ? await ctx.jsonGuard.parsePublish(text, maxItems) : parsePublishSync(text, ctx.config.limits.maxJsonDepth + 2, maxItems);
    ctx.onSerialize?.(slow ? "slow" : "fast", performance.now() - started);
    return parsed;
  } catch (error) {
    if (error instanceof JsonGuardError) throw new HttpError(400, error.code === "too_many_items" ? error.message : GUARD_MESSAGES[error.code]);
    if (error instanceof SerializeTimeoutError) {
      ctx.onSerializeTimeout?.();
      throw new HttpError(503, `the body could not be processed within ${error.timeoutMs} ms`, { retryAfterS: ctx.config.server.retryAfterS });
    }
    throw error;
  }
}

export function requireKey(req: Request, key: string | undefined): void {
  if (!keyMatches(bearer(req), key)) throw new HttpError(401, "a valid API key is required (Authorization: Bearer <key>)");
}

/** Validates one publish body into an engine item; throws HttpError 400 with the issues. */
export function toItem(ctx: Context, body: unknown, idempotencyKey: string | null, where = ""): PublishItem {
  const result = PublishBodySchema.safeParse(body);
  if (!result.success) {
    const issues = result.error.issues.map((i) => ({ path: (where ? [where, ...i.path] : i.path).join("."), message: i.message }));
    throw new HttpError(400, `${where ? where + ": " : ""}${issues.map((i) => `${i.path || "body"}: ${i.message}`).join("; ")}`, { extra: { issues } });
  }
  const b = result.data;
  const key = idempotencyKey ?? b.idempotencyKey;
  if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) throw new HttpError(400, "Idempotency-Key must be 1–128 printable ASCII characters");
  const item: PublishItem = {
    channel: b.channel,
    event: b.event,
    dataJson: b.dataJson,
    critical: b.critical === true || ctx.criticalEvents.has(b.event),
  };
  if (b.coalesce !== undefined) item.coalesce = b.coalesce;
  if (key !== undefined) item.idempotencyKey = key;
  return item;
}

async function store(ctx: Context, items: PublishItem[]) {
  try {
    return await ctx.publish(items);
  } catch (error) {
    if (error instanceof StoreUnavailableError) {
      throw new HttpError(503, "the event could not be stored; nothing was published", { retryAfterS: ctx.config.server.retryAfterS });
    }
    throw error;
  }
}

export async function publishRoute(ctx: Context, req: Request): Promise<Response> {
  requireKey(req, ctx.config.auth.apiKey);
  const body = await readPublishBody(ctx, req, ctx.config.limits.maxPublishBodyBytes);
  const item = toItem(ctx, body, req.headers.get("idempotency-key"));
  const [outcome] = await store(ctx, [item]);
  return json({ channel: outcome!.channel, offset: outcome!.offset, epoch: outcome!.epoch });
}

export async function publishBatchRoute(ctx: Context, req: Request): Promise<Response> {
  requireKey(req, ctx.config.auth.apiKey);
  const limits = ctx.config.limits;
  const body = await readPublishBody(ctx, req, limits.maxPublishBodyBytes * 4, limits.batchMaxItems);
  const batch = BatchBodySchema.safeParse(body);
  if (!batch.success) return httpError(400, 'body must be {"items":[…]} with 1 or more publish bodies', { extra: { issues: batch.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) } });
  if (batch.data.items.length > limits.batchMaxItems) return httpError(400, `a batch holds at most ${limits.batchMaxItems} items`);
  const items = batch.data.items.map((raw, index) => {
    try {
      return toItem(ctx, raw, null, `items.${index}`);
    } catch (error) {
      if (error instanceof HttpError) {
        throw new HttpError(400, `item ${index} is invalid: ${error.message}`, { extra: { index, ...error.options.extra } });
      }
      throw error;
    }
  });
  const outcomes = await store(ctx, items);
  return json({ results: outcomes.map((o) => ({ channel: o.channel, offset: o.offset, epoch: o.epoch })) });
}
