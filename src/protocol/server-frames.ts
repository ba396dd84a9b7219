/**
 * The frame types the server sends (PROTOCOL.md §4, §8) as a runtime list, and the `event` frame
 * as a zod schema: `/openapi.json` documents history pages with it, and the docs test checks
 * every type is in `docs/protocol.md`. The types themselves live in `frames.ts`.
 */
import { z } from "zod";
import type { ServerFrame } from "./frames.ts";
import { STREAM_STATUSES } from "./streams.ts";

/** Every `type` a server frame can have. */
export const SERVER_FRAME_TYPES = ["welcome", "subscribed", "unsubscribed", "event", "pong", "result", "error", "reconnect"] as const satisfies readonly ServerFrame["type"][];

// A frame type added to `ServerFrame` but not to the list above fails the typecheck here.
type Unlisted = Exclude<ServerFrame["type"], (typeof SERVER_FRAME_TYPES)[number]>;
const listed: [Unlisted] extends [never] ? true : Unlisted = true;
void listed;

const offset = z.number().int().min(0);

/** `{"type":"event",…}`: one stored event as delivered live, replayed and in history pages. */
export const EventFrameSchema = z.object({
  type: z.literal("event"),
  channel: z.string(),
  offset,
  event: z.string(),
  data: z.unknown(),
  critical: z.boolean().optional(),
  ts: z.number().int().meta({ description: "publish time, ms since the epoch" }),
  stream: z.string().optional().meta({ description: "agent streams (§8): the stream id" }),
  text: z.string().optional().meta({ description: "agent streams (§8): the appended text, or the whole text of a snapshot" }),
  status: z.enum(STREAM_STATUSES).optional(),
});
