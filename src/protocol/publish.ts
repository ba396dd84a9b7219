/** Publish bodies of PROTOCOL.md §2, validated once at the edge. */
import { z } from "zod";
import { isEventName, parseChannel } from "./channel.ts";

export const ChannelSchema = z.string().refine((c) => parseChannel(c) !== null, {
  message: "must be <kind>:<name>: kind [a-z][a-z0-9_-]{0,31}, name 1–128 of A-Z a-z 0-9 _ - . @ = (no ..)",
});
export const EventNameSchema = z.string().refine(isEventName, { message: "must be 1–64 of A-Z a-z 0-9 _ . : -" });

export const PublishBodySchema = z.object({
  channel: ChannelSchema,
  event: EventNameSchema,
  /** `data` serialized once by the body reader (`json-guard.ts`), never taken from the client. */
  dataJson: z.string(),
  critical: z.boolean().optional(),
  coalesce: z.string().min(1).max(128).optional(),
  idempotencyKey: z.string().min(1).max(128).optional(),
});
export type PublishBody = z.infer<typeof PublishBodySchema>;

export const BatchBodySchema = z.object({ items: z.array(z.unknown()).min(1) });
