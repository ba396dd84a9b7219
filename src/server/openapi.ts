/**
 * `GET /openapi.json` (PROTOCOL.md §2 v1.1): an OpenAPI 3.1 document of every HTTP route, whose
 * request and answer schemas are generated from the zod schemas in `src/protocol` that validate
 * requests, so the document cannot drift from what the server accepts. Built once per process.
 */
import { z } from "zod";
import { JobBodySchema, DisconnectBodySchema, SignalBodySchema, UnsubscribeBodySchema } from "../protocol/control.ts";
import * as bodies from "../protocol/http-bodies.ts";
import { StreamAppendBodySchema, StreamEndBodySchema, StreamStartBodySchema } from "../protocol/streams.ts";
import { TIERS } from "../protocol/codes.ts";
import { rawJson } from "./http.ts";

type Security = "apiKey" | "userToken" | "adminKey";

interface Param {
  name: string;
  required?: boolean;
  description: string;
  schema: Record<string, unknown>;
}

/** One operation: what it takes, what it answers, and which refusals it can give. */
interface Operation {
  method: "get" | "post";
  path: string;
  summary: string;
  security?: Security[];
  query?: Param[];
  body?: string;
  ok: { status: number; schema?: string; contentType?: string; description: string };
  errors: number[];
}

/** Named schemas, emitted once under `components.schemas` and referenced by the operations. */
const SCHEMAS: Record<string, z.ZodType> = {
  PublishRequest: bodies.PublishRequestSchema,
  BatchRequest: bodies.BatchRequestSchema,
  Published: bodies.PublishedSchema,
  BatchAnswer: bodies.BatchAnswerSchema,
  HistoryAnswer: bodies.HistoryAnswerSchema,
  JobRequest: JobBodySchema,
  JobAnswer: bodies.JobAnswerSchema,
  SignalRequest: SignalBodySchema,
  DisconnectRequest: DisconnectBodySchema,
  DisconnectAnswer: bodies.DisconnectAnswerSchema,
  UnsubscribeRequest: UnsubscribeBodySchema,
  UnsubscribeAnswer: bodies.UnsubscribeAnswerSchema,
  PresenceAnswer: bodies.PresenceAnswerSchema,
  StreamStartRequest: StreamStartBodySchema,
  StreamStarted: bodies.StreamStartedSchema,
  StreamAppendRequest: StreamAppendBodySchema,
  StreamEndRequest: StreamEndBodySchema,
  StreamOffset: bodies.StreamOffsetSchema,
  Health: bodies.HealthAnswerSchema,
  Ready: bodies.ReadyAnswerSchema,
  Stats: bodies.StatsAnswerSchema,
  DevToken: bodies.DevTokenAnswerSchema,
  Version: bodies.VersionAnswerSchema,
  WsCheck: bodies.WsCheckAnswerSchema,
  Error: bodies.ErrorBodySchema,
};

const int = { type: "integer", minimum: 0 };
const channelParam: Param = { name: "channel", required: true, description: "`<kind>:<name>`", schema: { type: "string" } };
const tokenParam: Param = { name: "token", description: "the user token, for clients that cannot set headers", schema: { type: "string" } };

/** Every HTTP route of PROTOCOL.md §2, §3 and §8. */
export const OPERATIONS: Operation[] = [
  { method: "get", path: "/health", summary: "Liveness: 200 while the process serves", ok: { status: 200, schema: "Health", description: "serving" }, errors: [] },
  { method: "get", path: "/ready", summary: "Readiness: every dependency check, bounded by the readiness budget", ok: { status: 200, schema: "Ready", description: "ready (or degraded)" }, errors: [503] },
  { method: "get", path: "/metrics", summary: "Prometheus text exposition of the OpenTelemetry metrics", ok: { status: 200, contentType: "text/plain", description: "metrics" }, errors: [] },
  { method: "get", path: "/ws/stats", summary: "Node statistics (`?scope=cluster`: every node's)", security: ["adminKey"], query: [{ name: "scope", description: "`cluster` for every node's stats", schema: { type: "string", enum: ["cluster"] } }], ok: { status: 200, schema: "Stats", description: "stats" }, errors: [401] },
  { method: "post", path: "/v1/publish", summary: "Publish one event; 200 once stored as its durability class requires", security: ["apiKey"], body: "PublishRequest", ok: { status: 200, schema: "Published", description: "stored" }, errors: [400, 401, 413, 503] },
  { method: "post", path: "/v1/publish/batch", summary: "Publish 1–100 events, all or nothing, answered in order", security: ["apiKey"], body: "BatchRequest", ok: { status: 200, schema: "BatchAnswer", description: "all stored" }, errors: [400, 401, 413, 503] },
  {
    method: "get",
    path: "/v1/history",
    summary: "Retained events after `since`: the polling fallback",
    security: ["userToken"],
    query: [
      channelParam,
      { name: "since", description: "the last offset seen", schema: int },
      { name: "epoch", description: "the epoch `since` belongs to", schema: { type: "string" } },
      { name: "limit", description: "at most this many events (default 100)", schema: int },
      tokenParam,
    ],
    ok: { status: 200, schema: "HistoryAnswer", description: "a page of events" },
    errors: [400, 401, 403, 503],
  },
  { method: "post", path: "/v1/jobs", summary: "Register a job; its progress is published on `job:<id>`", security: ["apiKey"], body: "JobRequest", ok: { status: 201, schema: "JobAnswer", description: "created" }, errors: [400, 401, 503] },
  { method: "post", path: "/v1/signals", summary: "Store a signal for every user of a tier or higher", security: ["apiKey"], body: "SignalRequest", ok: { status: 201, schema: "Published", description: "stored (critical)" }, errors: [400, 401, 413, 503] },
  { method: "get", path: "/", summary: "The status page", ok: { status: 200, contentType: "text/html", description: "HTML" }, errors: [] },
  {
    method: "get",
    path: "/dev/token",
    summary: "A user token for trying Courier out (only with COURIER_ENV development or test)",
    query: [
      { name: "user", description: "the token's `sub` (default `dev-user`)", schema: { type: "string" } },
      { name: "tier", description: "the token's tier", schema: { type: "string", enum: [...TIERS] } },
    ],
    ok: { status: 200, schema: "DevToken", description: "a token" },
    errors: [400, 404],
  },
  { method: "get", path: "/version", summary: "The running version", ok: { status: 200, schema: "Version", description: "version" }, errors: [] },
  { method: "get", path: "/openapi.json", summary: "This document", ok: { status: 200, contentType: "application/json", description: "OpenAPI 3.1" }, errors: [] },
  {
    method: "get",
    path: "/v1/ws",
    summary: "Open the WebSocket (PROTOCOL §3); refusals come as HTTP before the upgrade",
    security: ["userToken"],
    query: [tokenParam, { name: "session", description: "a session id to resume (§6)", schema: { type: "string" } }],
    ok: { status: 101, description: "switching protocols: frames of §4 follow; `Sec-WebSocket-Protocol: courier.v1` when the client offered subprotocols (the token as `courier.token.<jwt>`)" },
    errors: [400, 401, 403, 429, 503],
  },
  { method: "get", path: "/v1/ws/check", summary: "What an upgrade with this token would get now (the refusal's body carries `reason`); open to every origin", security: ["userToken"], query: [tokenParam], ok: { status: 200, schema: "WsCheck", description: "an upgrade would be accepted" }, errors: [401, 403, 429, 503] },
  { method: "post", path: "/v1/disconnect", summary: "Close every connection of a user on every node with 4403", security: ["apiKey"], body: "DisconnectRequest", ok: { status: 200, schema: "DisconnectAnswer", description: "closed" }, errors: [400, 401, 413, 503] },
  { method: "post", path: "/v1/unsubscribe", summary: "Take every connection of a user off a channel", security: ["apiKey"], body: "UnsubscribeRequest", ok: { status: 200, schema: "UnsubscribeAnswer", description: "unsubscribed" }, errors: [400, 401, 413, 503] },
  { method: "get", path: "/v1/presence", summary: "Who is subscribed to a channel, across every node", security: ["apiKey"], query: [channelParam], ok: { status: 200, schema: "PresenceAnswer", description: "presence" }, errors: [400, 401, 503] },
  { method: "post", path: "/v1/streams", summary: "Start an agent stream (§8)", security: ["apiKey"], body: "StreamStartRequest", ok: { status: 201, schema: "StreamStarted", description: "started" }, errors: [400, 401, 413, 503] },
  { method: "post", path: "/v1/streams/append", summary: "Append text to a stream", security: ["apiKey"], body: "StreamAppendRequest", ok: { status: 200, schema: "StreamOffset", description: "stored; the last append's offset" }, errors: [400, 401, 409, 413, 503] },
  { method: "post", path: "/v1/streams/end", summary: "End a stream (stored as a critical event)", security: ["apiKey"], body: "StreamEndRequest", ok: { status: 200, schema: "StreamOffset", description: "ended" }, errors: [400, 401, 409, 503] },
];

const ERRORS: Record<number, string> = {
  400: "invalid request; the validation issues are listed",
  401: "missing, invalid or expired key or token",
  403: "not allowed (channel permissions, origin)",
  404: "not found",
  405: "method not allowed (`Allow` lists the methods)",
  409: "conflict: the stream ended or is unknown",
  413: "body or event frame too large",
  429: "too many (connections per user, upgrades per IP); see `Retry-After`",
  503: "not ready, draining, or the store is unavailable; nothing was stored; see `Retry-After`",
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const retryAfter = { "Retry-After": { description: "seconds to wait before retrying", schema: { type: "integer" } } };

function operation(op: Operation): Record<string, unknown> {
  const responses: Record<string, unknown> = {
    [op.ok.status]: {
      description: op.ok.description,
      ...(op.ok.schema ? { content: { "application/json": { schema: ref(op.ok.schema) } } } : op.ok.contentType ? { content: { [op.ok.contentType]: {} } } : {}),
    },
  };
  for (const status of [...op.errors, 405]) {
    responses[status] = {
      description: ERRORS[status]!,
      content: { "application/json": { schema: ref("Error") } },
      ...(status === 429 || status === 503 ? { headers: retryAfter } : {}),
    };
  }
  const out: Record<string, unknown> = {
    operationId: `${op.method}${op.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ""))}` || op.method,
    summary: op.summary,
    security: op.security ? op.security.map((s) => ({ [s]: [] })) : [],
    responses,
  };
  if (op.query) out.parameters = op.query.map((p) => ({ in: "query", name: p.name, required: p.required ?? false, description: p.description, schema: p.schema }));
  if (op.body) {
    out.requestBody = { required: true, content: { "application/json": { schema: ref(op.body) } } };
    if (op.method === "post" && op.security?.includes("apiKey")) {
      out.parameters = [{ in: "header", name: "Idempotency-Key", required: false, description: "a retried call with the same key (5 min) answers the first result instead of acting twice", schema: { type: "string", minLength: 1, maxLength: 128 } }];
    }
  }
  return out;
}

function componentSchemas(): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(SCHEMAS)) registry.add(schema, { id });
  // Request bodies are documented as input (what a client may send), answers the same way.
  const { schemas } = z.toJSONSchema(registry, { io: "input", uri: (id) => `#/components/schemas/${id}` });
  for (const schema of Object.values(schemas)) {
    delete (schema as Record<string, unknown>).$schema;
    delete (schema as Record<string, unknown>).$id;
  }
  return schemas;
}

/** Builds the document (call {@linkcode openApiRoute} to serve the cached one). */
export function buildOpenApiDocument(version = "1.1.0"): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method] = operation(op);
  return {
    openapi: "3.1.0",
    info: {
      title: "Courier",
      version,
      description: "Real-time event delivery. WebSocket frames, channels, close codes and guarantees are described in docs/protocol.md.",
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    paths,
    components: {
      schemas: componentSchemas(),
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "the publish API key (`COURIER_API_KEY`)" },
        userToken: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "a user token (`sub`, `exp`, optional `tier`, `channels`); also accepted as `?token=`" },
        adminKey: { type: "http", scheme: "bearer", description: "the admin key (`COURIER_ADMIN_KEY`, default the API key)" },
      },
    },
  };
}

let cached: string | undefined;

/**
 * The `GET /openapi.json` handler.
 *
 * @example
 * "/openapi.json": { GET: openApiRoute }, // in opsRoutes
 */
export function openApiRoute(): Response {
  cached ??= JSON.stringify(buildOpenApiDocument());
  return rawJson(cached);
}
