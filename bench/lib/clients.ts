/**
 * One client shape over the three targets: Courier and bare Bun speak the same JSON frames over a
 * raw WebSocket; Socket.IO goes through socket.io-client, as its users would. Event frames are the hot
 * path (up to millions per run), so raw frames are read with string scans, not JSON.parse: the load
 * generator must cost less than the servers it measures.
 */
import { io, type Socket } from "socket.io-client";
import { RawWs } from "./raw-ws.ts";
import { signToken } from "./tokens.ts";
import type { TargetInfo } from "./target.ts";

/** `seq` and `sentAt` come from the publisher's `data`; `ts` and `offset` from the server's frame. */
export type EventHandler = (seq: number, sentAt: number, ts: number, offset: number) => void;

export interface Subscribed {
  epoch: string;
  offset: number;
  recovered?: boolean;
  reason?: string;
}

export interface ReplyFrame {
  type: string;
  id?: unknown;
  code?: string;
  message?: string;
  ts?: number;
  data?: unknown;
}

export interface BenchClient {
  /** Resolves once the server welcomed the connection; rejects on refusal or timeout. */
  readonly ready: Promise<void>;
  onEvent: EventHandler;
  /** When set, every event frame's text goes here instead of `onEvent` (raw targets only). */
  onRaw?: (text: string) => void;
  onClose: (code: number) => void;
  subscribe(channel: string, since?: { offset: number; epoch: string }): Promise<Subscribed>;
  /** An application-level ping; resolves with the server's `ts`. */
  ping(): Promise<number>;
  /** Courier only: an rpc frame; resolves with the `result` or `error` frame. */
  rpc(method: string, data: unknown): Promise<ReplyFrame>;
  close(): void;
}

export interface ConnectOptions {
  /** The user (Courier token `sub`); other targets ignore it. */
  user: string;
  /** A pre-signed token, so signing stays out of timed sections. */
  token?: string;
  timeoutMs?: number;
}

export function connect(target: TargetInfo, options: ConnectOptions): Promise<BenchClient> {
  return target.kind === "socketio" ? connectSocketIo(target, options) : connectRaw(target, options);
}

/** Pre-signs tokens for `users` (Courier only; empty strings for the others). */
export async function tokensFor(target: TargetInfo, users: string[]): Promise<string[]> {
  if (target.kind !== "courier") return users.map(() => "");
  return Promise.all(users.map((user) => signToken(user)));
}

const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The number after `key` in `text`, parsed in place: slicing a substring and calling Number() four
 * times per frame was a third of the load generator's CPU. Handles what JSON.stringify writes for
 * our fields (sign, digits, fraction); an exponent falls back to Number().
 */
function numberAfter(text: string, key: string): number {
  const start = text.indexOf(key);
  if (start < 0) return Number.NaN;
  let i = start + key.length;
  let sign = 1;
  if (text.charCodeAt(i) === 45) {
    sign = -1;
    i++;
  }
  let value = 0;
  let c = text.charCodeAt(i);
  if (!(c >= 48 && c <= 57)) return Number.NaN;
  for (; c >= 48 && c <= 57; c = text.charCodeAt(++i)) value = value * 10 + (c - 48);
  if (c === 46) {
    let scale = 0.1;
    for (c = text.charCodeAt(++i); c >= 48 && c <= 57; c = text.charCodeAt(++i)) {
      value += (c - 48) * scale;
      scale *= 0.1;
    }
  }
  if (c === 101 || c === 69) {
    let end = i + 1;
    while (end < text.length && "+-0123456789".includes(text[end]!)) end++;
    return Number(text.slice(start + key.length, end));
  }
  return sign * value;
}

async function connectRaw(target: TargetInfo, options: ConnectOptions): Promise<BenchClient> {
  const wsBase = target.base.replace(/^http/, "ws");
  const token = target.kind === "courier" ? (options.token ?? (await signToken(options.user))) : "";
  const url = target.kind === "courier" ? `${wsBase}/v1/ws?token=${token}` : `${wsBase}/ws`;
  const handlers = { onText: (_text: string) => {}, onClose: (_code: number, _reason?: string) => {} };
  const ws = new RawWs(url, { onText: (text) => handlers.onText(text), onClose: (code, reason) => handlers.onClose(code, reason) });
  const pending = new Map<string, { resolve: (frame: ReplyFrame) => void; reject: (error: Error) => void; timer: Timer }>();
  let nextId = 0;
  const welcomed = Promise.withResolvers<void>();
  const connectTimer = setTimeout(() => welcomed.reject(new Error("connect timeout")), options.timeoutMs ?? 15_000);

  const request = (frame: Record<string, unknown>): Promise<ReplyFrame> => {
    const id = `r${nextId++}`;
    const { promise, resolve, reject } = Promise.withResolvers<ReplyFrame>();
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`${String(frame.type)} timed out`));
    }, REQUEST_TIMEOUT_MS);
    pending.set(id, { resolve, reject, timer });
    ws.send(JSON.stringify({ ...frame, id }));
    return promise;
  };

  const client: BenchClient = {
    ready: welcomed.promise,
    onEvent: () => {},
    onClose: () => {},
    async subscribe(channel, since) {
      const reply = await request(since ? { type: "subscribe", channel, since } : { type: "subscribe", channel });
      if (reply.type !== "subscribed") throw new Error(`subscribe ${channel}: ${reply.code ?? reply.type} ${reply.message ?? ""}`);
      return reply as unknown as Subscribed;
    },
    async ping() {
      const reply = await request({ type: "ping" });
      if (reply.type !== "pong") throw new Error(`ping: ${reply.code ?? reply.type}`);
      return reply.ts ?? Number.NaN;
    },
    rpc: (method, data) => request({ type: "rpc", method, data }),
    close: () => ws.close(1000),
  };

  handlers.onText = (text) => {
    if (text.includes('"type":"event"')) {
      if (client.onRaw) return client.onRaw(text);
      const seq = numberAfter(text, '"seq":');
      if (!Number.isNaN(seq)) {
        client.onEvent(seq, numberAfter(text, '"sentAt":'), numberAfter(text, '"ts":'), numberAfter(text, '"offset":'));
        return;
      }
      const frame = JSON.parse(text) as { ts: number; offset: number; data: { seq?: number; sentAt?: number } | null };
      client.onEvent(frame.data?.seq ?? -1, frame.data?.sentAt ?? Number.NaN, frame.ts, frame.offset);
      return;
    }
    const frame = JSON.parse(text) as ReplyFrame;
    if (frame.type === "welcome") {
      clearTimeout(connectTimer);
      welcomed.resolve();
      return;
    }
    const waiter = typeof frame.id === "string" ? pending.get(frame.id) : undefined;
    if (waiter) {
      pending.delete(frame.id as string);
      clearTimeout(waiter.timer);
      waiter.resolve(frame);
    }
  };
  handlers.onClose = (code, reason) => {
    clearTimeout(connectTimer);
    welcomed.reject(new Error(reason ?? `closed ${code} before welcome`));
    for (const waiter of pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(`closed ${code}`));
    }
    pending.clear();
    client.onClose(code);
  };
  welcomed.promise.catch(() => {});
  return client;
}

async function connectSocketIo(target: TargetInfo, options: ConnectOptions): Promise<BenchClient> {
  const socket: Socket = io(target.base, {
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
    timeout: options.timeoutMs ?? 15_000,
  });
  let nextId = 0;
  const connected = Promise.withResolvers<void>();
  socket.once("connect", () => connected.resolve());
  socket.once("connect_error", (error) => connected.reject(error));
  connected.promise.catch(() => {});

  const client: BenchClient = {
    ready: connected.promise,
    onEvent: () => {},
    onClose: () => {},
    async subscribe(channel) {
      return (await socket.timeout(REQUEST_TIMEOUT_MS).emitWithAck("subscribe", channel)) as Subscribed;
    },
    async ping() {
      const reply = (await socket.timeout(REQUEST_TIMEOUT_MS).emitWithAck("rt", nextId++)) as ReplyFrame;
      return reply.ts ?? Number.NaN;
    },
    rpc: async () => ({ type: "error", code: "not_supported", message: "Socket.IO baseline has no rpc" }),
    close: () => socket.disconnect(),
  };
  socket.on("event", (frame: { ts: number; offset: number; data: { seq: number; sentAt: number } }) => {
    client.onEvent(frame.data.seq, frame.data.sentAt, frame.ts, frame.offset);
  });
  socket.on("disconnect", () => client.onClose(1000));
  return client;
}
