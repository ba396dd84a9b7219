/**
 * Test doubles for the client SDK: a WebSocket that records what the client sends and lets the
 * test play the server, and a fetch that records requests. Not a test file itself.
 */
import { jest } from "bun:test";
import { CourierClient, type CourierClientOptions } from "../../packages/client/src/index.ts";
import type { FetchLike, FetchResponseLike, WebSocketLike } from "../../packages/client/src/types.ts";

export type Frame = Record<string, unknown>;

/** One fake socket; `sent` holds the parsed frames the client sent. */
export class FakeSocket implements WebSocketLike {
  readyState = 0;
  readonly url: URL;
  /** The subprotocols offered (`courier.v1`, `courier.token.<jwt>`), as the constructor got them. */
  readonly protocols: string[];
  readonly sent: Frame[] = [];
  closedWith: number | undefined;
  onopen: ((ev: any) => unknown) | null = null;
  onmessage: ((ev: any) => unknown) | null = null;
  onclose: ((ev: any) => unknown) | null = null;
  onerror: ((ev: any) => unknown) | null = null;

  constructor(url: string, protocols?: string | string[]) {
    this.url = new URL(url);
    this.protocols = protocols === undefined ? [] : typeof protocols === "string" ? [protocols] : protocols;
  }
  /** The token this attempt carried, whichever way (subprotocol or `?token=`). */
  get token(): string | null {
    const offered = this.protocols.find((p) => p.startsWith("courier.token."));
    return offered ? offered.slice("courier.token.".length) : this.url.searchParams.get("token");
  }
  /** Answer `ping` frames at once, as a healthy server does; false plays a half-open connection. */
  autoPong = true;

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    const frame = JSON.parse(data) as Frame;
    this.sent.push(frame);
    if (frame.type === "ping" && this.autoPong) this.receive({ type: "pong", id: frame.id, ts: 0 });
  }
  close(code?: number): void {
    this.closedWith = code ?? 1005;
    this.readyState = 3;
  }
  // --- the server's side
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(frame: Frame): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  welcome(extra: Frame = {}): void {
    this.open();
    this.receive({ type: "welcome", session: "s1", resumed: false, user: "u1", heartbeat: 25, node: "n1", ...extra });
  }
  serverClose(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  /** A refused or unreachable attempt, as browsers report it. */
  fail(): void {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code: 1006, reason: "" });
  }
  ofType(type: string): Frame[] {
    return this.sent.filter((f) => f.type === type);
  }
}

/** A WebSocket constructor whose instances the test can reach. */
export function fakeWebSocket() {
  const sockets: FakeSocket[] = [];
  const WebSocket = class extends FakeSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  };
  return {
    WebSocket,
    sockets,
    last(): FakeSocket {
      const s = sockets.at(-1);
      if (!s) throw new Error("no socket yet");
      return s;
    },
  };
}

export interface FetchCall {
  url: URL;
  headers: Record<string, string>;
}

type FakeAnswer = { status?: number; body?: unknown; headers?: Record<string, string> };

/**
 * A fetch answering history requests from `respond` (default: an empty page) and `/v1/ws/check`
 * from `check` (default: 200, the connection would be accepted), recording each in `calls` or
 * `checks`.
 */
export function fakeFetch(respond?: (call: FetchCall) => FakeAnswer, check?: (call: FetchCall) => FakeAnswer) {
  const calls: FetchCall[] = [];
  const checks: FetchCall[] = [];
  const fetch: FetchLike = async (url, init) => {
    const call = { url: new URL(url), headers: init.headers };
    const isCheck = call.url.pathname.endsWith("/v1/ws/check");
    (isCheck ? checks : calls).push(call);
    const answer = isCheck
      ? (check?.(call) ?? { body: { user: "u1", tier: "starter" } })
      : (respond?.(call) ?? { body: { channel: call.url.searchParams.get("channel"), epoch: "e1", offset: 0, recovered: true, events: [] } });
    const status = answer.status ?? 200;
    const headers = new Map(Object.entries(answer.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    const response: FetchResponseLike = {
      ok: status >= 200 && status < 300,
      status,
      headers: { get: (name) => headers.get(name.toLowerCase()) ?? null },
      json: async () => answer.body,
    };
    return response;
  };
  return { fetch, calls, checks };
}

/** Lets promise callbacks run (fake timers do not advance microtasks). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** A client on a fake socket, fake timers on, jitter centred (random = 0.5) unless overridden. */
export function setup(options: Partial<CourierClientOptions> = {}, check?: (call: FetchCall) => FakeAnswer) {
  jest.useFakeTimers();
  const ws = fakeWebSocket();
  const { fetch, calls, checks } = fakeFetch(undefined, check);
  const client = new CourierClient({
    url: "ws://courier.test/v1/ws",
    token: "t0",
    WebSocket: ws.WebSocket,
    fetch,
    random: () => 0.5,
    ...options,
  });
  return { client, ws, fetchCalls: calls, checks };
}

export const advance = (ms: number) => jest.advanceTimersByTime(ms);
