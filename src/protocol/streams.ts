/**
 * Agent streams of PROTOCOL.md §8: the request bodies of `POST /v1/streams`, `/append` and
 * `/end`, the statuses a stream ends with and the event names its frames carry.
 */
import { z } from "zod";
import { ChannelSchema, EventNameSchema } from "./publish.ts";

/** How a stream ended. */
export const STREAM_STATUSES = ["complete", "cancelled", "failed"] as const;
export type StreamStatus = (typeof STREAM_STATUSES)[number];

/** The `event` of each stream frame. */
export const StreamEvent = {
  Start: "stream.start",
  Append: "stream.append",
  End: "stream.end",
  /** The whole text so far, for a subscriber that joins mid-stream without `since`. */
  Snapshot: "stream.snapshot",
} as const;
export type StreamEvent = (typeof StreamEvent)[keyof typeof StreamEvent];

export const StreamIdSchema = z.string().min(1).max(128);

/** `POST /v1/streams` → 201 `{"channel","stream","offset","epoch"}`. */
export const StreamStartBodySchema = z.object({
  channel: ChannelSchema,
  event: EventNameSchema.optional(),
  data: z.unknown().optional(),
  text: z.string().optional(),
});

/** `POST /v1/streams/append`: one `text`, or several `texts` stored in order as one request. */
export const StreamAppendBodySchema = z.union([
  z.object({ channel: ChannelSchema, stream: StreamIdSchema, text: z.string() }),
  z.object({ channel: ChannelSchema, stream: StreamIdSchema, texts: z.array(z.string()).min(1) }),
]);

/** `POST /v1/streams/end`: stored as a critical event. */
export const StreamEndBodySchema = z.object({
  channel: ChannelSchema,
  stream: StreamIdSchema,
  status: z.enum(STREAM_STATUSES),
  data: z.unknown().optional(),
});
