/**
 * Agent streams (PROTOCOL §8), Courier only, all in one run against one server:
 * 1. the same tokens to 1 channel × `subscribers`, first as events through `/v1/publish/batch`
 *    (batches of 10), then as appends to one stream (`texts` batches of 10): deliveries/s of each
 *    (an append counts once per subscriber whatever frame carried it) and their ratio;
 * 2. wire bytes: one lone append's frame, and bytes per append when batches of 10 share a frame;
 * 3. joining a stream of `joinAppends` appends: frames the join gets for the stream (must be one
 *    snapshot) and subscribe → snapshot time (client-observed, so an upper bound of server time);
 *    and the server's own snapshot code (`StreamLog.snapshots`) timed in this process on a stream
 *    of the same size, the part of a join's server time that grows with the stream.
 */
import { appendData, startData } from "../../src/delivery/stream-frames.ts";
import { StreamLog } from "../../src/delivery/stream-log.ts";
import { eventFrame } from "../../src/protocol/serializer.ts";
import { connect, type BenchClient } from "../lib/clients.ts";
import { nowMs } from "../lib/proc.ts";
import { Samples } from "../lib/stats.ts";
import { COURIER_TEST_API_KEY, type TargetInfo } from "../lib/target.ts";
import { closeAll, connectMany, mark, settle, users, type LoadResult } from "./common.ts";

export interface StreamsParams {
  subscribers: number;
  /** Tokens sent in each phase. */
  tokens: number;
  /** Appends of the stream that is joined. */
  joinAppends: number;
  joins: number;
}

const BATCH = 10;
const TOKEN = "tok_ ";

async function post(target: TargetInfo, path: string, body: unknown): Promise<any> {
  const res = await fetch(target.base + path, {
    method: "POST",
    headers: { authorization: `Bearer ${process.env.COURIER_API_KEY ?? COURIER_TEST_API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path} → ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

/** Counts, per subscriber, the offsets each frame of `channel` covers (a merged append covers several). */
function counting(clients: BenchClient[], what: (text: string) => boolean): { covered: number; bytes: number; frames: number; lastAt: number } {
  const state = { covered: 0, bytes: 0, frames: 0, lastAt: 0 };
  const last = new Float64Array(clients.length);
  clients.forEach((client, i) => {
    client.onRaw = (text) => {
      if (!what(text)) return;
      const at = text.indexOf('"offset":') + 9;
      const offset = Number.parseInt(text.slice(at, at + 16), 10);
      if (last[i] !== 0) state.covered += offset - last[i]!;
      last[i] = offset;
      state.bytes += text.length;
      state.frames++;
      state.lastAt = nowMs();
    };
  });
  return state;
}

export async function streams(target: TargetInfo, params: StreamsParams): Promise<LoadResult> {
  if (target.kind !== "courier") return { skipped: "agent streams are Courier's" };
  const { subscribers, tokens, joinAppends, joins } = params;
  const channel = "public:stream-bench";
  const { clients, refused, firstError } = await connectMany(target, users("st", subscribers), { concurrency: 100, channel: () => channel });
  if (clients.length === 0) return { error: `no subscriber connected: ${firstError}`, refused };
  const expected = clients.length * tokens;

  // Phase 1: the tokens as events, batches of 10. A marker event first gives every client its base offset.
  const events = counting(clients, (t) => t.includes('"event":"token"'));
  await post(target, "/v1/publish", { channel, event: "token", data: "start" });
  await settle(() => events.frames >= clients.length, () => events.frames, 1_000, 5_000);
  mark("start");
  const eventsStarted = nowMs();
  for (let i = 0; i < tokens; i += BATCH) await post(target, "/v1/publish/batch", { items: Array.from({ length: BATCH }, () => ({ channel, event: "token", data: TOKEN })) });
  await settle(() => events.covered >= expected, () => events.covered);
  const eventsRate = (events.covered / (events.lastAt - eventsStarted)) * 1000;

  // Phase 2: the same tokens as appends to one stream, texts batches of 10.
  // A lone append first: it gives every client its base offset and shows one append's frame.
  const appends = counting(clients, (t) => t.includes('"event":"stream.append"'));
  const { stream } = await post(target, "/v1/streams", { channel, text: "" });
  await post(target, "/v1/streams/append", { channel, stream, text: TOKEN });
  await settle(() => appends.frames >= clients.length, () => appends.frames, 1_000, 5_000);
  const loneFrame = appends.bytes / appends.frames;
  Object.assign(appends, { bytes: 0, frames: 0 });
  const appendsStarted = nowMs();
  const latency = new Samples(tokens / BATCH);
  for (let i = 0; i < tokens; i += BATCH) {
    const sent = nowMs();
    await post(target, "/v1/streams/append", { channel, stream, texts: Array.from({ length: BATCH }, () => TOKEN) });
    latency.add(nowMs() - sent);
  }
  await settle(() => appends.covered >= expected, () => appends.covered);
  const appendsRate = (appends.covered / (appends.lastAt - appendsStarted)) * 1000;
  mark("end");
  const bytesPerAppend = appends.bytes / appends.covered;
  await post(target, "/v1/streams/end", { channel, stream, status: "complete" });
  closeAll(clients);

  // Phase 3: a stream of `joinAppends` appends, joined `joins` times without `since`.
  const joinChannel = "public:stream-join";
  const long = await post(target, "/v1/streams", { channel: joinChannel, text: "" });
  for (let i = 0; i < joinAppends; i += 100) {
    await post(target, "/v1/streams/append", { channel: joinChannel, stream: long.stream, texts: Array.from({ length: Math.min(100, joinAppends - i) }, () => TOKEN) });
  }
  const joinTimes = new Samples(joins);
  let framesPerJoin = 0;
  let maxSnapshotBytes = 0;
  for (let j = 0; j < joins; j++) {
    const client = await connect(target, { user: `joiner${j}` });
    await client.ready;
    let frames = 0;
    let snapshotAt = 0;
    let snapshotBytes = 0;
    client.onRaw = (text) => {
      if (!text.includes(long.stream)) return;
      frames++;
      if (text.includes('"event":"stream.snapshot"')) {
        snapshotAt = nowMs();
        snapshotBytes = text.length;
      }
    };
    const sent = nowMs();
    await client.subscribe(joinChannel);
    await settle(() => snapshotAt > 0, () => frames, 2_000, 5_000);
    // A ping after the subscribe: anything more for the stream would have arrived before its pong.
    await client.ping();
    if (snapshotAt > 0) joinTimes.add(snapshotAt - sent);
    maxSnapshotBytes = Math.max(maxSnapshotBytes, snapshotBytes);
    framesPerJoin = Math.max(framesPerJoin, frames);
    client.close();
  }
  await post(target, "/v1/streams/end", { channel: joinChannel, stream: long.stream, status: "complete" });
  const join = joinTimes.summary();
  const snapshotCode = snapshotTimes(joinAppends);
  return {
    count: appends.covered,
    expected,
    durationMs: appends.lastAt - appendsStarted,
    rate: appendsRate,
    latency: latency.summary(),
    lost: expected - appends.covered,
    connections: clients.length,
    refused,
    extra: {
      "events via /v1/publish/batch deliveries/s": Math.round(eventsRate),
      "appends deliveries/s": Math.round(appendsRate),
      "appends ÷ batch events": appendsRate / eventsRate,
      "lone append frame bytes": loneFrame,
      "token bytes": TOKEN.length,
      "bytes per append (batches of 10)": bytesPerAppend,
      "join: frames for the stream (max)": framesPerJoin,
      "join: subscribe → snapshot p50 ms": join?.p50 ?? Number.NaN,
      "join: subscribe → snapshot p99 ms": join?.p99 ?? Number.NaN,
      "join: appends in the stream": joinAppends,
      "join: snapshot frame bytes": maxSnapshotBytes,
      "join: joins measured": joinTimes.size,
      "snapshot code p50 ms": snapshotCode?.p50 ?? Number.NaN,
      "snapshot code p99 ms": snapshotCode?.p99 ?? Number.NaN,
    },
  };
}

/** `StreamLog.snapshots` of one open stream of `appends` tokens, 1,000 times. */
function snapshotTimes(appends: number) {
  const log = new StreamLog({ loader: { openStreams: async () => [], history: async () => ({ epoch: "e", offset: 0, events: [], trimmedThrough: 0 }) } });
  const channel = "public:snapshot-code";
  const at = (offset: number, event: string, dataJson: string) => ({
    channel, offset, event, critical: true, coalesce: null, ts: offset, frame: eventFrame({ channel, offset, event, dataJson, critical: true, ts: offset }),
  });
  log.live(channel, [at(1, "stream.start", startData({ stream: "s" }))]);
  for (let i = 0; i < appends; i++) log.live(channel, [at(i + 2, "stream.append", appendData("s", TOKEN))]);
  const times = new Samples(1000);
  for (let i = 0; i < 1000; i++) {
    const started = performance.now();
    if (log.snapshots(channel).length !== 1) throw new Error("expected one snapshot");
    times.add(performance.now() - started);
  }
  return times.summary();
}
