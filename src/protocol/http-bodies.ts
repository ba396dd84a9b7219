/**
 * The HTTP bodies of PROTOCOL.md §2 that have no validator of their own: the publish bodies as a
 * client sends them (the server reads `data` into `dataJson` before `PublishBodySchema` sees it),
 * and every answer. `/openapi.json` is generated from these and the request schemas.
 */
import { z } from "zod";
import { ErrorCode, NotRecoveredReason, RefusalReason, TIERS } from "./codes.ts";
import { CHANNEL, EVENT_NAME } from "./channel.ts";
import { ChannelSchema, EventNameSchema, PublishBodySchema } from "./publish.ts";
import { EventFrameSchema } from "./server-frames.ts";
import { StreamIdSchema } from "./streams.ts";

const offset = z.number().int().min(0);
const epoch = z.string().meta({ description: "the history's generation; changes only if history is lost" });

/** A channel as documented: the refinement that validates it is not expressible in JSON Schema. */
export const DocumentedChannelSchema = ChannelSchema.meta({ description: "`<kind>:<name>`; `..` is not allowed", pattern: CHANNEL.source });
const documentedEvent = EventNameSchema.meta({ pattern: EVENT_NAME.source });

/** `POST /v1/publish` as sent. */
export const PublishRequestSchema = PublishBodySchema.omit({ dataJson: true, idempotencyKey: true }).extend({
  channel: DocumentedChannelSchema,
  event: documentedEvent,
  data: z.unknown().optional().meta({ description: "any JSON; default null" }),
  coalesce: PublishBodySchema.shape.coalesce.meta({ description: "latest-wins key: a newer event with the same key supersedes this one" }),
});

/** `POST /v1/publish/batch` as sent: 1–100 items (config `limits.batchMaxItems`), all or nothing. */
export const BatchRequestSchema = z.object({
  items: z.array(PublishRequestSchema.extend({ idempotencyKey: PublishBodySchema.shape.idempotencyKey })).min(1).max(100),
});

export const PublishedSchema = z.object({ channel: z.string(), offset, epoch });
export const BatchAnswerSchema = z.object({ results: z.array(PublishedSchema) });

export const HistoryAnswerSchema = z.object({
  channel: z.string(),
  epoch,
  offset: offset.meta({ description: "the channel's top offset" }),
  recovered: z.boolean(),
  reason: z.enum(Object.values(NotRecoveredReason) as [NotRecoveredReason, ...NotRecoveredReason[]]).optional(),
  events: z.array(EventFrameSchema),
});

export const JobAnswerSchema = z.object({ job: z.string(), channel: z.string(), epoch });
export const HealthAnswerSchema = z.object({ status: z.literal("ok") });
export const ReadyAnswerSchema = z.object({
  status: z.enum(["ready", "degraded", "not_ready", "draining"]),
  checks: z.record(z.string(), z.object({ ok: z.boolean(), ms: z.number(), required: z.boolean(), error: z.string().optional() })),
});
export const StatsAnswerSchema = z.looseObject({
  node: z.string(),
  connections: z.number().int(),
  users: z.number().int(),
  byTier: z.record(z.string(), z.number()),
  subscriptions: z.record(z.string(), z.number()),
  resumes: z.object({ hits: z.number(), misses: z.number() }),
  breakers: z.record(z.string(), z.looseObject({ name: z.string(), state: z.string(), failures: z.number() })),
});
export const DevTokenAnswerSchema = z.object({ token: z.string() });
export const VersionAnswerSchema = z.object({ version: z.string(), commit: z.string().optional(), bun: z.string() });
export const WsCheckAnswerSchema = z.object({ user: z.string(), tier: z.enum(TIERS) });
export const DisconnectAnswerSchema = z.object({ closed: z.number().int().min(0) });
export const UnsubscribeAnswerSchema = z.object({ unsubscribed: z.number().int().min(0) });
export const PresenceAnswerSchema = z.object({
  channel: z.string(),
  subscribers: z.number().int().min(0),
  users: z.array(z.object({ user: z.string(), connections: z.number().int().min(1) })).max(1000),
});
export const StreamStartedSchema = z.object({ channel: z.string(), stream: StreamIdSchema, offset, epoch });
export const StreamOffsetSchema = z.object({ offset });

/** Every error answer: `{"error","message"}`, plus the issues of a 400. */
export const ErrorBodySchema = z.object({
  error: z.string().meta({ description: `one of: ${Object.values(ErrorCode).join(", ")}` }),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  index: z.number().int().optional().meta({ description: "a batch: the invalid or too large item" }),
  reason: z.enum(Object.values(RefusalReason) as [RefusalReason, ...RefusalReason[]]).optional().meta({ description: "an upgrade refusal (`/v1/ws`, `/v1/ws/check`): why, for the SDK's `status.reason`" }),
  bytes: z.number().int().optional().meta({ description: "413 of an event frame: its size" }),
  limit: z.number().int().optional().meta({ description: "413 of an event frame: `limits.maxEventFrameBytes`" }),
});
