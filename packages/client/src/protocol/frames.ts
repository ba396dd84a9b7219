/**
 * The frames the server sends (PROTOCOL.md §4), as plain TypeScript: the SDK reads them without
 * any runtime dependency, and the server's zod-validated side (`src/protocol/frames.ts`) re-exports
 * these types, so each frame shape is written once.
 */
import type { ErrorCode, NotRecoveredReason } from "./codes.ts";

/** A request id: echoed by the server on the answer to a request. */
export type RequestId = string | number;

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
  | { type: "unsubscribed"; id?: RequestId; channel: string; reason?: "server" }
  | { type: "pong"; id?: RequestId; ts: number }
  | { type: "result"; id: RequestId; data: unknown }
  | { type: "reconnect"; reason: string; after: number };
