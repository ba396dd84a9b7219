/**
 * `POST /v1/streams`, `/v1/streams/append`, `/v1/streams/end` (PROTOCOL §8), API key. Bodies are
 * validated with the zod schemas of `src/protocol/streams.ts` (the same ones /openapi.json is
 * generated from); the work is the stream service's. An append or end to an unknown or ended
 * stream throws `StreamConflictError`, which the one error mapper answers 409 `conflict`.
 */
import type { z } from "zod";
import { StreamAppendBodySchema, StreamEndBodySchema, StreamStartBodySchema } from "../protocol/streams.ts";
import type { Context } from "./context.ts";
import { HttpError, checkIdempotencyKey, json, readJson, requireKey, validated } from "./http.ts";

/** More than any stream frame's envelope (channel, offset, event name, stream id, status, ts). */
const FRAME_ENVELOPE_BYTES = 512;

/** 413 when one stored text (with `data`) would make a frame no default client can receive (§2). */
function checkFrameSize(ctx: Context, what: string, ...parts: unknown[]): void {
  let bytes = FRAME_ENVELOPE_BYTES;
  for (const part of parts) if (part !== undefined) bytes += Buffer.byteLength(JSON.stringify(part));
  const limit = ctx.config.limits.maxEventFrameBytes;
  if (bytes > limit) throw new HttpError(413, `${what} would make a frame of about ${bytes} bytes, over maxEventFrameBytes (${limit})`);
}

async function readBody<T>(ctx: Context, req: Request, schema: z.ZodType<T>): Promise<{ body: T; key: string | undefined }> {
  requireKey(req, ctx.config.auth.apiKey);
  const body = validated(schema, await readJson(req, ctx.config.limits.maxPublishBodyBytes, ctx.config.limits.maxJsonDepth + 2));
  return { body, key: checkIdempotencyKey(req.headers.get("idempotency-key") ?? undefined) };
}

/** `POST /v1/streams` → 201 `{"channel","stream","offset","epoch"}`. */
export async function streamStartRoute(ctx: Context, req: Request): Promise<Response> {
  const { body, key } = await readBody(ctx, req, StreamStartBodySchema);
  checkFrameSize(ctx, "the start", body.data, body.text);
  return json(await ctx.streams.start({ ...body, idempotencyKey: key }), 201);
}

/** `POST /v1/streams/append` → 200 `{"offset"}` of the last append. */
export async function streamAppendRoute(ctx: Context, req: Request): Promise<Response> {
  const { body, key } = await readBody(ctx, req, StreamAppendBodySchema);
  const texts = "texts" in body ? body.texts : [body.text];
  if (texts.length > ctx.config.limits.batchMaxItems) throw new HttpError(400, `texts holds at most ${ctx.config.limits.batchMaxItems} items`);
  // A live frame may join a turn's appends, but each append alone must fit a frame.
  texts.forEach((text, i) => checkFrameSize(ctx, texts.length === 1 ? "the text" : `texts.${i}`, text));
  return json(await ctx.streams.append(body.channel, body.stream, texts, key));
}

/** `POST /v1/streams/end` → 200 `{"offset"}`; the end is stored critical. */
export async function streamEndRoute(ctx: Context, req: Request): Promise<Response> {
  const { body, key } = await readBody(ctx, req, StreamEndBodySchema);
  checkFrameSize(ctx, "the end", body.data);
  return json(await ctx.streams.end(body.channel, body.stream, body.status, body.data, key));
}

/** The three routes, for app.ts's route table. */
export function streamRoutes(ctx: Context) {
  return {
    "/v1/streams": { POST: (req: Request) => streamStartRoute(ctx, req) },
    "/v1/streams/append": { POST: (req: Request) => streamAppendRoute(ctx, req) },
    "/v1/streams/end": { POST: (req: Request) => streamEndRoute(ctx, req) },
  };
}
