/**
 * Frames of PROTOCOL.md §4: zod schemas for what clients send, builders for what the server sends.
 * Event frames are not built here: see `serializer.ts`, which builds them once per publish.
 */
import { z } from "zod";
import type { ErrorCode } from "./codes.ts";
import { StreamIdSchema } from "./streams.ts";
import type { RequestId } from "../../packages/client/src/protocol/frames.ts";

// Server frames are plain types in the client package: one definition for server and SDK.
export type { ErrorFrame, EventFrame, RequestId, ServerFrame, SubscribedFrame, WelcomeFrame } from "../../packages/client/src/protocol/frames.ts";

const requestId = z.union([z.string().max(64), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]);
const offset = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const channel = z.string().min(3).max(161);

export const SinceSchema = z.object({ offset, epoch: z.string().min(1).max(64) });
export type Since = z.infer<typeof SinceSchema>;

export const ClientFrameSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("subscribe"), id: requestId.optional(), channel, since: SinceSchema.optional() }),
  z.object({ type: z.literal("unsubscribe"), id: requestId.optional(), channel }),
  z.object({ type: z.literal("ack"), id: requestId.optional(), channel, offset }),
  z.object({ type: z.literal("ping"), id: requestId.optional() }),
  z.object({
    type: z.literal("rpc"),
    id: requestId,
    method: z.string().min(1).max(64),
    data: z.unknown().optional(),
  }),
  // PROTOCOL §8: asks an agent stream's producer to stop; answered `{"cancelled":bool}`.
  z.object({ type: z.literal("cancel"), id: requestId, channel, stream: StreamIdSchema }),
]);
export type ClientFrame = z.infer<typeof ClientFrameSchema>;

/** Whether `value` is a valid request id: only those are echoed, so a hostile id is never reflected. */
export function isRequestId(value: unknown): value is RequestId {
  return requestId.safeParse(value).success;
}

/** An error frame, echoing the request id when there is one. */
export function errorFrame(code: ErrorCode, message: string, id?: RequestId): string {
  return JSON.stringify(id === undefined ? { type: "error", code, message } : { type: "error", id, code, message });
}
