/**
 * Frames of PROTOCOL.md §4: zod schemas for what clients send, builders for what the server sends.
 * Event frames are not built here: see `serializer.ts`, which builds them once per publish.
 */
import { z } from "zod";
import type { ErrorCode, NotRecoveredReason } from "./codes.ts";

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
]);
export type ClientFrame = z.infer<typeof ClientFrameSchema>;
export type RequestId = z.infer<typeof requestId>;

/** Whether `value` is a valid request id: only those are echoed, so a hostile id is never reflected. */
export function isRequestId(value: unknown): value is RequestId {
  return requestId.safeParse(value).success;
}

export interface WelcomeFrame {
  type: "welcome";
  session: string;
  resumed: boolean;
  user: string;
  heartbeat: number;
  node: string;
}

export interface SubscribedFrame {
  type: "subscribed";
  id?: RequestId;
  channel: string;
  epoch: string;
  offset: number;
  recovered?: boolean;
  reason?: NotRecoveredReason;
}

export interface ErrorFrame {
  type: "error";
  id?: RequestId;
  code: ErrorCode;
  message: string;
}

export interface EventFrame {
  type: "event";
  channel: string;
  offset: number;
  event: string;
  data: unknown;
  critical?: boolean;
  ts: number;
}

export type ServerFrame =
  | WelcomeFrame
  | SubscribedFrame
  | ErrorFrame
  | EventFrame
  | { type: "unsubscribed"; id?: RequestId; channel: string }
  | { type: "pong"; id?: RequestId; ts: number }
  | { type: "result"; id: RequestId; data: unknown }
  | { type: "reconnect"; reason: string; after: number };

/** An error frame, echoing the request id when there is one. */
export function errorFrame(code: ErrorCode, message: string, id?: RequestId): string {
  return JSON.stringify(id === undefined ? { type: "error", code, message } : { type: "error", id, code, message });
}
