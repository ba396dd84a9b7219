/**
 * The one WebSocket handler: frames of PROTOCOL.md §4. A bad frame gets an error frame and the
 * connection stays; only abuse closes it (1003 binary, 4429 too many frames, 4400 repeated errors).
 */
import type { ServerWebSocket, WebSocketHandler } from "bun";
import { closingPong, forgetClosing } from "../connection/close-handshake.ts";
import type { ConnData, Subscription } from "../connection/conn-data.ts";
import { mayJoin } from "../connection/permissions.ts";
import { refilled, take } from "../connection/rate-limit.ts";
import { deleteSub, newSubscription, setSub, subCount, subOf, subsOf } from "../connection/subs.ts";
import { parseChannel } from "../protocol/channel.ts";
import { CloseCode, ErrorCode } from "../protocol/codes.ts";
import { ClientFrameSchema, errorFrame, isRequestId, type ClientFrame, type RequestId, type WelcomeFrame } from "../protocol/frames.ts";
import { exceedsDepth } from "../protocol/json-depth.ts";
import type { Context } from "./context.ts";
import { toErrorFrame } from "./error-response.ts";
import { restoreSubscriptions } from "./sessions.ts";

type WS = ServerWebSocket<ConnData>;
type Frame<T extends ClientFrame["type"]> = Extract<ClientFrame, { type: T }>;

/**
 * Bun closes a frame over `maxPayloadLength` itself (1009 to the client) and reports it to `close`
 * as 1006 with this reason: the only place an oversize frame can be counted (checked on Bun 1.4.4;
 * tests/hardening.test.ts fails if it changes).
 */
const BUN_TOO_BIG = "Received too big message";

export function websocketHandler(ctx: Context): WebSocketHandler<ConnData> {
  const { config } = ctx;
  const heartbeatS = config.server.heartbeatS;
  return {
    data: {} as ConnData,
    maxPayloadLength: config.limits.maxFrameBytes,
    // Our sweep pings every heartbeat and closes silent clients with 4408; Bun's own idle close
    // (1006) is only the backstop.
    idleTimeout: Math.min(960, 2 * heartbeatS + 4),
    sendPings: true,
    perMessageDeflate: false,
    publishToSelf: false,
    backpressureLimit: Math.max(16 * 1024 * 1024, config.limits.slowConsumerBytes * 4),
    closeOnBackpressureLimit: true,

    open(ws) {
      const data = ws.data;
      data.lastSeen = ctx.now();
      ctx.manager.add(ws);
      const welcome: WelcomeFrame = {
        type: "welcome",
        session: data.sessionId,
        resumed: data.resume !== null,
        user: data.user,
        heartbeat: heartbeatS,
        node: config.cluster.nodeId!,
      };
      ws.send(JSON.stringify(welcome));
      ctx.events.opened(data, performance.now() - data.upgradeStartedMs);
      const resume = data.resume;
      data.resume = null;
      if (resume) {
        void restoreSubscriptions(ws, resume, {
          mayJoin: (channel) => mayJoin(ws.data, channel, ctx.extensions.jobOwner),
          join: (channel, since) => void join(ctx, ws, channel, since),
        });
      }
    },

    message(ws, message) {
      const data = ws.data;
      data.lastSeen = ctx.now();
      // The close is decided (close-handshake.ts): what the client still sends is not answered.
      if (data.closing) return;
      if (typeof message !== "string") {
        ctx.events.rejected("binary");
        ctx.manager.closeGracefully(ws, CloseCode.UnsupportedData, "binary frames are not supported");
        return;
      }
      const ackLike = mayBeAck(message);
      if (!(ackLike ? takeAck(ctx, data) : takeFrame(ctx, data))) return rateLimited(ctx, ws);
      const frame = parse(ws, message, ctx);
      if (!frame) return;
      // Counted as an ack on its looks but not one: it pays the frame limit too.
      if (ackLike && frame.type !== "ack" && !takeFrame(ctx, data)) return rateLimited(ctx, ws);
      dispatch(ctx, ws, frame);
    },

    pong(ws, payload) {
      if (closingPong(ws, payload)) return;
      const data = ws.data;
      data.lastSeen = ctx.now();
      if (data.probeAt > 0) {
        data.probeAt = 0;
        data.lastProbeOk = data.lastSeen;
      }
    },

    close(ws, code, reason) {
      const data = ws.data;
      data.closed = true;
      forgetClosing(data);
      ctx.manager.remove(ws);
      ctx.sessions.closed(data);
      if (!data.slotTransferred) ctx.slots.releaseConnection(data.user).catch(() => {});
      for (const sub of subsOf(data)) if (sub.ready) ctx.hub.leave(ws, sub.channel);
      if (reason === BUN_TOO_BIG) ctx.events.rejected("too_large");
      ctx.events.closed(data, code);
    },
  };
}

/** An ack frame is short; longer frames, or ones without an `"ack"` string, pay the frame limit. */
const ACK_FRAME_MAX_CHARS = 512;

/**
 * Whether `text` may be an ack, decided before parsing so a flood costs no parse: a short frame
 * holding the JSON string `"ack"`. Channel names and offsets cannot contain quotes, so an ack
 * frame always matches; a frame that matches and is not an ack is charged the frame limit as well.
 */
function mayBeAck(text: string): boolean {
  return text.length <= ACK_FRAME_MAX_CHARS && text.includes('"ack"');
}

function takeFrame(ctx: Context, data: ConnData): boolean {
  return take(data, data.lastSeen, ctx.config.limits.framesPerSecond, ctx.config.limits.frameBurst);
}

/** `take` on the ack bucket, which lives in ConnData's `ackTokens` and `ackTokensAt`. */
function takeAck(ctx: Context, data: ConnData): boolean {
  const tokens = refilled(data.ackTokens, data.ackTokensAt, data.lastSeen, ctx.config.limits.acksPerSecond, ctx.config.limits.ackBurst);
  data.ackTokensAt = data.lastSeen;
  data.ackTokens = tokens >= 1 ? tokens - 1 : tokens;
  return tokens >= 1;
}

function rateLimited(ctx: Context, ws: WS): void {
  ctx.events.rejected("rate_limited");
  if (++ws.data.rateStrikes > ctx.config.limits.rateLimitStrikes) {
    ctx.manager.closeGracefully(ws, CloseCode.TooManyFrames, "too many frames");
  } else {
    ws.send(errorFrame(ErrorCode.RateLimited, "too many frames: slow down"));
  }
}

/** The frame types a client may send, read from the schema so a new one is known here too. */
const CLIENT_FRAME_TYPES: ReadonlySet<string> = new Set(ClientFrameSchema.options.map((o) => o.shape.type.value));

function parse(ws: WS, text: string, ctx: Context): ClientFrame | null {
  if (exceedsDepth(text, ctx.config.limits.maxJsonDepth)) return protocolError(ctx, ws, "frame nests too deeply", undefined, "too_deep");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return protocolError(ctx, ws, "frame is not valid JSON", undefined, "bad_json");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return protocolError(ctx, ws, "frame must be a JSON object", undefined, "not_object");
  const rawId = (raw as { id?: unknown }).id;
  const id = isRequestId(rawId) ? rawId : undefined;
  const result = ClientFrameSchema.safeParse(raw);
  if (result.success) return result.data;
  const type = (raw as { type?: unknown }).type;
  if (typeof type !== "string" || !CLIENT_FRAME_TYPES.has(type)) {
    return protocolError(ctx, ws, `unknown frame type ${JSON.stringify(String(type)).slice(0, 40)}`, id, "unknown_type");
  }
  const issues = result.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "frame"}: ${i.message}`);
  return protocolError(ctx, ws, `invalid ${type} frame: ${issues.join("; ")}`, id, "invalid");
}

function protocolError(ctx: Context, ws: WS, message: string, id: RequestId | undefined, reason: string): null {
  ctx.events.rejected(reason);
  if (++ws.data.protocolErrors > ctx.config.limits.protocolErrorStrikes) {
    ctx.manager.closeGracefully(ws, CloseCode.ProtocolErrors, "too many protocol errors");
  } else {
    ws.send(errorFrame(ErrorCode.BadRequest, message, id));
  }
  return null;
}

function dispatch(ctx: Context, ws: WS, frame: ClientFrame): void {
  switch (frame.type) {
    case "subscribe":
      return void subscribe(ctx, ws, frame);
    case "unsubscribe":
      return unsubscribe(ctx, ws, frame);
    case "ack":
      return ack(ctx, ws, frame);
    case "ping":
      ws.send(JSON.stringify(frame.id === undefined ? { type: "pong", ts: ctx.now() } : { type: "pong", id: frame.id, ts: ctx.now() }));
      return;
    case "rpc":
      return void rpc(ctx, ws, frame);
    case "cancel":
      return void cancel(ctx, ws, frame);
  }
}

async function subscribe(ctx: Context, ws: WS, frame: Frame<"subscribe">): Promise<void> {
  const channel = parseChannel(frame.channel);
  if (!channel) return void protocolError(ctx, ws, `invalid channel name "${frame.channel.slice(0, 170)}"`, frame.id, "bad_channel");
  const data = ws.data;
  if (subOf(data, channel.channel)) return void ws.send(errorFrame(ErrorCode.BadRequest, `already subscribed to ${channel.channel}`, frame.id));
  if (subCount(data) >= ctx.config.limits.subscriptionsPerConnection) {
    ctx.events.rejected("subscriptions_limit");
    return void ws.send(errorFrame(ErrorCode.LimitExceeded, `at most ${ctx.config.limits.subscriptionsPerConnection} subscriptions per connection`, frame.id));
  }
  // Hold the slot while permissions and history are read, so a duplicate subscribe is refused.
  const placeholder = newSubscription(channel.channel);
  setSub(data, placeholder);
  let allowed = false;
  try {
    allowed = await mayJoin(data, channel, ctx.extensions.jobOwner);
  } catch {
    /* an unreachable owner lookup refuses, below */
  }
  if (!allowed) {
    if (subOf(data, channel.channel) === placeholder) deleteSub(data, channel.channel);
    return void send(ws, errorFrame(ErrorCode.Forbidden, `not allowed to join ${channel.channel}`, frame.id));
  }
  await join(ctx, ws, channel.channel, frame.since ?? null, frame.id, placeholder);
}

/** Joins and records the subscription; also how a resumed session's channels are restored. */
async function join(
  ctx: Context,
  ws: WS,
  channel: string,
  since: { offset: number; epoch: string } | null,
  id?: RequestId,
  placeholder?: Subscription,
): Promise<void> {
  const data = ws.data;
  const slot = placeholder ?? newSubscription(channel);
  setSub(data, slot);
  const startedMs = performance.now();
  try {
    const result = await ctx.hub.join(ws, channel, since, id);
    if (!result) return;
    if (since) ctx.events.recovered(performance.now() - startedMs);
    if (subOf(data, channel) !== slot) {
      // Unsubscribed while joining.
      ctx.hub.leave(ws, channel);
      return;
    }
    Object.assign(slot, { epoch: result.subscribed.epoch, from: result.from, acked: result.acked, joinedAt: ctx.now(), ready: true });
    data.dirty = true;
  } catch (error) {
    if (subOf(data, channel) === slot) deleteSub(data, channel);
    send(ws, toErrorFrame(error, { id, unavailable: "history is unavailable, retry", internal: "could not subscribe", what: "join", fields: { channel }, log: ctx.log }).frame);
  }
}

function unsubscribe(ctx: Context, ws: WS, frame: Frame<"unsubscribe">): void {
  const sub = subOf(ws.data, frame.channel);
  if (!sub) return void ws.send(errorFrame(ErrorCode.NotFound, `not subscribed to ${frame.channel.slice(0, 170)}`, frame.id));
  deleteSub(ws.data, frame.channel);
  if (sub.ready) ctx.hub.leave(ws, frame.channel);
  ws.data.dirty = true;
  ws.send(JSON.stringify(frame.id === undefined ? { type: "unsubscribed", channel: frame.channel } : { type: "unsubscribed", id: frame.id, channel: frame.channel }));
}

function ack(ctx: Context, ws: WS, frame: Frame<"ack">): void {
  const sub = subOf(ws.data, frame.channel);
  if (!sub || !sub.ready) return void protocolError(ctx, ws, `not subscribed to ${frame.channel.slice(0, 170)}`, frame.id, "ack_unsubscribed");
  const epoch = ctx.hub.epochOf(frame.channel);
  if (epoch !== undefined && sub.epoch !== epoch) {
    // The channel's history was lost since this subscription began: its offsets start over.
    Object.assign(sub, { epoch, from: 0, acked: 0, timedOut: 0 });
  }
  const to = Math.min(frame.offset, ctx.hub.deliveredTop(frame.channel));
  if (to <= sub.acked) return;
  // Events already counted as timed out are not counted again as confirmed.
  const outcome = ctx.hub.acked(frame.channel, Math.max(sub.acked, sub.from, sub.timedOut), to);
  sub.acked = to;
  ws.data.dirty = true;
  if (outcome.confirmed > 0) ctx.events.confirmed(outcome);
}

async function rpc(ctx: Context, ws: WS, frame: Frame<"rpc">): Promise<void> {
  const started = ctx.now();
  if (!ctx.extensions.rpc) {
    ctx.events.rpc(frame.method, ErrorCode.NotFound, 0);
    return void ws.send(errorFrame(ErrorCode.NotFound, `unknown method "${frame.method.slice(0, 64)}"`, frame.id));
  }
  const deadlineMs = ctx.config.agent.rpcTimeoutMs;
  let result = "ok";
  try {
    const data = await ctx.extensions.rpc({ user: ws.data.user, method: frame.method, data: frame.data ?? null, signal: AbortSignal.timeout(deadlineMs), deadlineMs });
    send(ws, JSON.stringify({ type: "result", id: frame.id, data: data ?? null }));
  } catch (error) {
    const answer = toErrorFrame(error, { id: frame.id, unavailable: "the store is unavailable", internal: "rpc failed", what: "rpc", fields: { method: frame.method.slice(0, 64) }, log: ctx.log });
    result = answer.code;
    send(ws, answer.frame);
  } finally {
    ctx.events.rpc(frame.method, result, ctx.now() - started);
  }
}

/** PROTOCOL §8: a subscriber of the stream's channel ends it `cancelled` and its producer is told. */
async function cancel(ctx: Context, ws: WS, frame: Frame<"cancel">): Promise<void> {
  const sub = subOf(ws.data, frame.channel);
  if (!sub || !sub.ready) return void protocolError(ctx, ws, `not subscribed to ${frame.channel.slice(0, 170)}`, frame.id, "cancel_unsubscribed");
  try {
    const cancelled = await ctx.streams.cancel(frame.channel, frame.stream, ws.data.user);
    send(ws, JSON.stringify({ type: "result", id: frame.id, data: { cancelled } }));
  } catch (error) {
    send(ws, toErrorFrame(error, { id: frame.id, unavailable: "the store is unavailable", internal: "cancel failed", what: "cancel", fields: { channel: frame.channel }, log: ctx.log }).frame);
  }
}

function send(ws: WS, text: string): void {
  if (!ws.data.closed) ws.send(text);
}
