/** The polling fallback's HTTP side: `GET /v1/history` (PROTOCOL.md §2) and URL derivation. */
import type { EventFrame, FetchLike, Position } from "./types.ts";

/** A parsed `/v1/history` answer. */
export interface HistoryPage {
  channel: string;
  epoch: string;
  offset: number;
  recovered: boolean;
  /** Why not recovered, when the server says (`history_trimmed`, `epoch_changed`, `offset_ahead`). */
  reason?: string;
  events: EventFrame[];
}

/** What one history request came to. */
export type HistoryResult =
  | { ok: true; page: HistoryPage }
  | { ok: false; status: number; retryAfterMs?: number };

/**
 * The HTTP base of a WebSocket URL: ws→http, wss→https, a trailing `/v1/ws` removed (a path
 * prefix before it, as behind a proxy, is kept); query and hash dropped.
 *
 * @example
 * httpBaseFromWsUrl("wss://rt.example.com/v1/ws"); // "https://rt.example.com"
 * httpBaseFromWsUrl("ws://localhost:8080/courier/v1/ws?x=1"); // "http://localhost:8080/courier"
 */
export function httpBaseFromWsUrl(wsUrl: string): string {
  const url = new URL(wsUrl);
  const protocol = url.protocol === "wss:" ? "https:" : url.protocol === "ws:" ? "http:" : url.protocol;
  const path = url.pathname.replace(/\/v1\/ws\/?$/, "").replace(/\/$/, "");
  return `${protocol}//${url.host}${path}`;
}

/**
 * Milliseconds to wait from an HTTP `Retry-After` value (seconds or an HTTP date).
 *
 * @example
 * parseRetryAfter("3", Date.now()); // 3000
 * parseRetryAfter(null, Date.now()); // undefined
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/** Inputs of `fetchHistory`. */
export interface HistoryRequest {
  fetch: FetchLike;
  httpBase: string;
  token: string;
  channel: string;
  since: Position | undefined;
  limit: number;
  nowMs: number;
}

/**
 * Reads a channel's events after `since` with the user token as a Bearer header.
 *
 * @example
 * const r = await fetchHistory({ fetch, httpBase: "https://rt.example.com", token, channel: "user:a",
 *   since: { epoch: "e1", offset: 41 }, limit: 100, nowMs: Date.now() });
 * if (r.ok) for (const e of r.page.events) handle(e);
 */
export async function fetchHistory(req: HistoryRequest): Promise<HistoryResult> {
  const params = new URLSearchParams({ channel: req.channel });
  if (req.since) {
    params.set("since", String(req.since.offset));
    params.set("epoch", req.since.epoch);
  }
  params.set("limit", String(req.limit));
  const response = await req.fetch(`${req.httpBase}/v1/history?${params}`, {
    headers: { Authorization: `Bearer ${req.token}` },
  });
  if (!response.ok) {
    const retryAfterMs = parseRetryAfter(response.headers.get("Retry-After"), req.nowMs);
    return retryAfterMs === undefined ? { ok: false, status: response.status } : { ok: false, status: response.status, retryAfterMs };
  }
  const body = (await response.json()) as Partial<HistoryPage> | null;
  if (!body || typeof body.epoch !== "string" || typeof body.offset !== "number" || !Array.isArray(body.events)) {
    throw new TypeError(`Malformed history answer for ${req.channel}`);
  }
  const page: HistoryPage = { channel: req.channel, epoch: body.epoch, offset: body.offset, recovered: body.recovered !== false, events: body.events };
  if (typeof body.reason === "string") page.reason = body.reason;
  return { ok: true, page };
}
