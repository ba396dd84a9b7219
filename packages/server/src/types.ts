/**
 * Request and answer bodies of PROTOCOL.md §2 and §8, as plain TypeScript (the package has no
 * runtime dependencies, so no zod here; the server validates).
 */

/** A user tier, in ascending order of what it may receive. */
export type Tier = "starter" | "pro" | "enterprise";

/** One event to publish (`POST /v1/publish`). */
export interface PublishMessage {
  /** `<kind>:<name>`, e.g. `user:alice`, `job:42`, `public:news`. */
  channel: string;
  /** 1–64 of `A-Z a-z 0-9 _ . : -`. */
  event: string;
  /** Any JSON value. @default null */
  data?: unknown;
  /** Kept until its retention however full the buffers are, and confirmed by clients. */
  critical?: boolean;
  /** Latest-wins key: a newer event with the same key supersedes this one in history. */
  coalesce?: string;
}

/** One batch item: a message, optionally with its own idempotency key (else one is generated). */
export interface BatchItem extends PublishMessage {
  idempotencyKey?: string;
}

/** Where a stored event landed. */
export interface Published {
  channel: string;
  offset: number;
  epoch: string;
}

/** `GET /v1/history` (a user token is needed: history is read as that user). */
export interface HistoryQuery {
  channel: string;
  /** The user token the history is read as. */
  token: string;
  since?: number;
  epoch?: string;
  limit?: number;
}

/** An `event` frame (PROTOCOL §4). */
export interface EventFrame {
  type: "event";
  channel: string;
  offset: number;
  event: string;
  data: unknown;
  critical?: boolean;
  ts: number;
  stream?: string;
  text?: string;
  status?: StreamStatus;
}

export interface HistoryPage {
  channel: string;
  epoch: string;
  offset: number;
  recovered: boolean;
  reason?: "history_trimmed" | "epoch_changed" | "offset_ahead";
  events: EventFrame[];
}

export interface Presence {
  channel: string;
  /** Every subscriber, across nodes (users beyond the first 1000 are counted, not listed). */
  subscribers: number;
  users: { user: string; connections: number }[];
}

export interface CreatedJob {
  job: string;
  channel: string;
  epoch: string;
}

/** `POST /v1/signals`: delivered to every user of `tier` or higher. */
export interface SignalMessage {
  tier: Tier;
  /** @default "signal" */
  event?: string;
  data?: unknown;
}

export type StreamStatus = "complete" | "cancelled" | "failed";

/** `POST /v1/streams` (PROTOCOL §8). */
export interface StreamStart {
  channel: string;
  /** @default "stream.start" */
  event?: string;
  data?: unknown;
  /** Text the stream starts with. */
  text?: string;
}

export interface StartedStream {
  channel: string;
  stream: string;
  offset: number;
  epoch: string;
}

/** Per-call options. */
export interface CallOptions {
  /** The call's whole budget, retries included. @default the client's `deadlineMs` */
  deadlineMs?: number;
  /** For a retry by the caller after an `outcomeUnknown` error: the key of the first call. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}
