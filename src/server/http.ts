/**
 * HTTP edges shared by every route, the server's and the extensions': JSON answers and errors
 * exactly as PROTOCOL.md §2 says (`{"error","message"}`, never a stack), and the body readers.
 */
import type { z } from "zod";
import { bearer, keyMatches } from "../auth/keys.ts";
import type { Config } from "../config/schema.ts";
import type { PublishItem } from "../engine/types.ts";
import { ErrorCode } from "../protocol/codes.ts";
import { exceedsDepth } from "../protocol/json-depth.ts";
import { JsonGuardError, SerializeTimeoutError, parsePublishSync, type JsonGuard, type ParsedPublish } from "../protocol/json-guard.ts";
import { fastParsePublishBody, PublishBodySchema } from "../protocol/publish.ts";
import type { ServerEvents } from "./server-events.ts";

// Every JSON answer: never sniffed as HTML by a browser, never cached (answers can be per-user).
const JSON_HEADER_FIELDS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" };
/**
 * The same, converted once: a `Response` copies a `Headers` (~0.24 µs) faster than it converts a
 * plain object (~0.44 µs), and copies it, so decorating one answer never touches another.
 */
const JSON_HEADERS = new Headers(JSON_HEADER_FIELDS);

export function json(body: unknown, status = 200, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify(body), { status, headers: headers ? { ...JSON_HEADER_FIELDS, ...headers } : JSON_HEADERS });
}

/** A JSON body that is already text (history pages built from stored frames). */
export function rawJson(text: string, status = 200): Response {
  return new Response(text, { status, headers: JSON_HEADERS });
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: ErrorCode.BadRequest,
  401: ErrorCode.Unauthorized,
  403: ErrorCode.Forbidden,
  404: ErrorCode.NotFound,
  405: ErrorCode.MethodNotAllowed,
  409: ErrorCode.Conflict,
  413: ErrorCode.LimitExceeded,
  429: ErrorCode.RateLimited,
  500: ErrorCode.Internal,
  503: ErrorCode.Unavailable,
  504: ErrorCode.Timeout,
};

/** Statuses that must carry `Retry-After`. */
const RETRY_STATUSES = new Set([429, 503]);

export interface ErrorOptions {
  retryAfterS?: number;
  /** Extra fields, e.g. the validation `issues` of a 400. */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/**
 * An error answer.
 *
 * @example
 * httpError(400, "event is required", { extra: { issues } })
 */
export function httpError(status: number, message: string, options: ErrorOptions = {}): Response {
  const headers: Record<string, string> = { ...options.headers };
  if (RETRY_STATUSES.has(status)) headers["retry-after"] = String(options.retryAfterS ?? 1);
  return json({ error: CODE_BY_STATUS[status] ?? ErrorCode.Internal, message, ...options.extra }, status, headers);
}

/** Thrown inside route handlers; turned into `httpError` at the edge. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    readonly options: ErrorOptions = {},
  ) {
    super(message);
  }
}

/** What the body readers need: limits, the off-thread parser and where its timings go. */
export interface BodyContext {
  readonly config: Config;
  /** Parses large publish bodies off the event loop under the serializer budget. */
  readonly jsonGuard: JsonGuard;
  readonly events: Pick<ServerEvents, "serialized" | "serializeTimedOut">;
}

/**
 * Reads a body within `limit` bytes as text: 413 past it, before reading it when `Content-Length`
 * says so, else as soon as the stream passes it (chunked bodies). Bun's own body cap is set far
 * above every limit (app.ts), so this JSON 413 is always the one a client gets.
 */
export async function readText(req: Request, limit: number): Promise<string> {
  const tooLarge = () => new HttpError(413, `body larger than ${limit} bytes`);
  const length = req.headers.get("content-length");
  if (length !== null) {
    // HTTP framing holds the body to its Content-Length: one native read and decode, the hot path
    // (`text()` decodes as TextDecoder does: BOM dropped, bad bytes replaced).
    if (Number(length) > limit) throw tooLarge();
    return await req.text();
  }
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(400, "the body could not be read");
  }
  return new TextDecoder().decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
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
export async function readPublishBody(ctx: BodyContext, req: Request, limit: number, maxItems?: number): Promise<ParsedPublish> {
  const text = await readText(req, limit);
  const slow = text.length > ctx.config.delivery.slowPathBytes;
  const started = performance.now();
  try {
    const parsed = slow ? await ctx.jsonGuard.parsePublish(text, maxItems) : parsePublishSync(text, ctx.config.limits.maxJsonDepth + 2, maxItems);
    ctx.events.serialized(slow ? "slow" : "fast", performance.now() - started);
    return parsed;
  } catch (error) {
    if (error instanceof JsonGuardError) throw new HttpError(400, error.code === "too_many_items" ? error.message : GUARD_MESSAGES[error.code]);
    if (error instanceof SerializeTimeoutError) {
      ctx.events.serializeTimedOut();
      throw new HttpError(503, `the body could not be processed within ${error.timeoutMs} ms`, { retryAfterS: ctx.config.server.retryAfterS });
    }
    throw error;
  }
}

/** 401 unless the request carries `key` as its bearer. */
export function requireKey(req: Request, key: string | undefined): void {
  if (!keyMatches(bearer(req), key)) throw new HttpError(401, "a valid API key is required (Authorization: Bearer <key>)");
}

/**
 * `value` checked against `schema`, or HttpError 400 naming every issue (as `issues`, too).
 *
 * @example
 * const { user } = validated(DisconnectBodySchema, await readJson(req, 4096, 32));
 */
export function validated<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw validationError(result.error.issues);
}

/** What an `Idempotency-Key` may be: 1–128 printable ASCII characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

/** `key` when it is a valid idempotency key (or absent); 400 otherwise. */
export function checkIdempotencyKey(key: string | undefined): string | undefined {
  if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) throw new HttpError(400, "Idempotency-Key must be 1–128 printable ASCII characters");
  return key;
}

/** The 400 for a failed zod parse: every issue with its path (under `where`), in the message and as `issues`. */
export function validationError(zodIssues: ReadonlyArray<{ path: PropertyKey[]; message: string }>, where = ""): HttpError {
  const issues = zodIssues.map((i) => ({ path: (where ? [where, ...i.path] : i.path).map(String).join("."), message: i.message }));
  return new HttpError(400, `${where ? where + ": " : ""}${issues.map((i) => `${i.path || "body"}: ${i.message}`).join("; ")}`, { extra: { issues } });
}

/** Validates one publish body into an engine item; throws HttpError 400 with the issues. */
export function toItem(criticalEvents: ReadonlySet<string>, body: unknown, idempotencyKey: string | null, where = ""): PublishItem {
  let b = fastParsePublishBody(body);
  if (!b) {
    const result = PublishBodySchema.safeParse(body);
    if (!result.success) throw validationError(result.error.issues, where);
    b = result.data;
  }
  const key = checkIdempotencyKey(idempotencyKey ?? b.idempotencyKey);
  const item: PublishItem = {
    channel: b.channel,
    event: b.event,
    dataJson: b.dataJson,
    critical: b.critical === true || criticalEvents.has(b.event),
  };
  if (b.coalesce !== undefined) item.coalesce = b.coalesce;
  if (key !== undefined) item.idempotencyKey = key;
  return item;
}
