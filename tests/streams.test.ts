/**
 * Agent streams (PROTOCOL §8) through the real server on its embedded engine: the routes, live
 * frames (one per stream per turn), the snapshot on join, `since` and session resumes inside a
 * stream, `/v1/history`, and the subscriber's `cancel`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connectWelcomed, type Frame, type TestClient } from "./helpers/client.ts";
import { demoAnswer } from "../src/domain/demo-agent.ts";
import { startServer, type TestServer } from "./helpers/server.ts";
import { rebuiltText, streamApi, streamFrames, type StreamApi } from "./helpers/streams.ts";

let server: TestServer;
let api: StreamApi;
const open: TestClient[] = [];

beforeAll(async () => {
  // A demo answer slow enough (≈ 10 ms a token) that a cancel lands mid-answer even on a loaded machine.
  server = await startServer({ config: { agent: { demoStepMs: 100 } } });
  api = streamApi(server.http);
});
afterAll(async () => {
  for (const c of open) c.close();
  await server.stop();
});

async function subscriber(user: string, since?: { offset: number; epoch: string }): Promise<TestClient & { welcome: Frame; subscribed: Frame }> {
  const c = await connectWelcomed(`${server.ws}?token=${await server.token(user)}`);
  open.push(c);
  const subscribed = await c.request({ type: "subscribe", channel: `user:${user}`, ...(since ? { since } : {}) });
  expect(subscribed.type).toBe("subscribed");
  return Object.assign(c, { subscribed });
}

async function history(user: string, since = 0): Promise<any> {
  const res = await fetch(`${server.http}/v1/history?channel=user:${user}&since=${since}`, { headers: { authorization: `Bearer ${await server.token(user)}` } });
  expect(res.status).toBe(200);
  return res.json();
}

describe("routes", () => {
  test("start 201, appends answer their own offsets, end 200; offsets follow the channel's", async () => {
    const started = await api.start({ channel: "user:r1", event: "answer", data: { run: "x" }, text: "He" });
    expect(started).toMatchObject({ channel: "user:r1", offset: 1 });
    expect(started.stream).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(await api.append("user:r1", started.stream, "llo")).toEqual({ offset: 2 });
    expect(await api.append("user:r1", started.stream, [",", " ", "world"])).toEqual({ offset: 5 });
    expect(await api.end("user:r1", started.stream, "complete", { tokens: 5 })).toEqual({ offset: 6 });
  });

  test("appends and ends of an unknown or ended stream are 409 conflict", async () => {
    const unknown = await api.post("/v1/streams/append", { channel: "user:r2", stream: "nope", text: "x" });
    expect(unknown.status).toBe(409);
    expect(await unknown.json()).toMatchObject({ error: "conflict" });
    const { stream } = await api.start({ channel: "user:r2" });
    await api.end("user:r2", stream, "failed");
    for (const [path, body] of [
      ["/v1/streams/append", { channel: "user:r2", stream, text: "late" }],
      ["/v1/streams/append", { channel: "user:r2", stream, texts: ["a", "b"] }],
      ["/v1/streams/end", { channel: "user:r2", stream, status: "complete" }],
    ] as const) {
      const res = await api.post(path, body);
      expect({ path, status: res.status, error: ((await res.json()) as { error: string }).error }).toEqual({ path, status: 409, error: "conflict" });
    }
  });

  test("bad bodies are 400 with issues, a missing key 401", async () => {
    const cases: Array<[string, unknown]> = [
      ["/v1/streams", { channel: "nochannel" }],
      ["/v1/streams/append", { channel: "user:r3", stream: "s" }],
      ["/v1/streams/append", { channel: "user:r3", stream: "s", texts: [] }],
      ["/v1/streams/end", { channel: "user:r3", stream: "s", status: "done" }],
    ];
    for (const [path, body] of cases) {
      const res = await api.post(path, body);
      const answer = (await res.json()) as { error: string; issues?: unknown[] };
      expect({ path, status: res.status, error: answer.error, hasIssues: Array.isArray(answer.issues) }).toEqual({ path, status: 400, error: "bad_request", hasIssues: true });
    }
    const anonymous = await fetch(`${server.http}/v1/streams`, { method: "POST", body: JSON.stringify({ channel: "user:r3" }) });
    expect(anonymous.status).toBe(401);
  });

  test("a retried start or end with the same Idempotency-Key answers the first outcome", async () => {
    const headers = { "idempotency-key": `start-${crypto.randomUUID()}` };
    const first = (await (await api.post("/v1/streams", { channel: "user:r4", text: "a" }, headers)).json()) as { stream: string };
    const again = (await (await api.post("/v1/streams", { channel: "user:r4", text: "a" }, headers)).json()) as { stream: string };
    expect(again).toEqual(first);
    const endKey = { "idempotency-key": `end-${crypto.randomUUID()}` };
    const ended = await api.post("/v1/streams/end", { channel: "user:r4", stream: first.stream, status: "complete" }, endKey);
    const retried = await api.post("/v1/streams/end", { channel: "user:r4", stream: first.stream, status: "complete" }, endKey);
    expect([ended.status, retried.status]).toEqual([200, 200]);
    expect(await retried.json()).toEqual(await ended.json());
    expect((await history("r4")).events).toHaveLength(1);
  });
});

describe("live subscribers", () => {
  test("get start, appends (a texts batch as one frame with the last offset) and end", async () => {
    const c = await subscriber("l1");
    const { stream } = await api.start({ channel: "user:l1", data: { run: "r" }, text: "Hi" });
    await api.append("user:l1", stream, "!");
    await api.append("user:l1", stream, [" How", " are", " you", "?"]);
    await api.end("user:l1", stream, "complete", { tokens: 6 });
    await c.next((f) => f.event === "stream.end");
    expect(streamFrames(c.frames, stream)).toEqual([
      ["stream.start", 1, "Hi"],
      ["stream.append", 2, "!"],
      ["stream.append", 6, " How are you?"],
      ["stream.end", 7],
    ]);
    const start = c.frames.find((f) => f.event === "stream.start")!;
    expect(start).toMatchObject({ channel: "user:l1", data: { run: "r" }, critical: true });
    expect(c.frames.find((f) => f.event === "stream.end")).toMatchObject({ status: "complete", data: { tokens: 6 }, critical: true });
  });

  test("the start frame carries the producer's event name when one was given", async () => {
    const c = await subscriber("l2");
    const { stream } = await api.start({ channel: "user:l2", event: "answer", text: "x" });
    const start = await c.next((f) => f.stream === stream);
    expect(start).toMatchObject({ event: "answer", text: "x" });
  });
});

describe("joining and resuming mid-stream", () => {
  test("a join without since gets subscribed, then one snapshot with the text so far, then live appends", async () => {
    const { stream } = await api.start({ channel: "user:j1", text: "The answer" });
    await api.append("user:j1", stream, [" is", " forty"]);
    const c = await subscriber("j1");
    const snapshot = await c.next((f) => f.event === "stream.snapshot");
    expect(snapshot).toMatchObject({ stream, text: "The answer is forty", status: "streaming", offset: 3 });
    expect(c.frames.map((f) => f.type)).toEqual(["welcome", "subscribed", "event"]);
    await api.append("user:j1", stream, "-two");
    await c.next((f) => f.event === "stream.append");
    expect(rebuiltText(c.frames, stream)).toBe("The answer is forty-two");
  });

  test("since inside the stream: the missing appends as one stream.append", async () => {
    const { stream, epoch } = await api.start({ channel: "user:j2", text: "a" });
    await api.append("user:j2", stream, "b");
    await api.append("user:j2", stream, ["c", "d", "e"]);
    const c = await subscriber("j2", { offset: 2, epoch });
    expect(c.subscribed).toMatchObject({ recovered: true, offset: 5 });
    const append = await c.next((f) => f.event === "stream.append");
    expect(append).toMatchObject({ stream, text: "cde", offset: 5 });
    await c.request({ type: "ping" });
    expect(c.frames.filter((f) => f.type === "event")).toHaveLength(1);
  });

  test("since before the stream: one snapshot; after the end it is one critical event", async () => {
    const before = (await (await server.publish({ channel: "user:j3", event: "hello" })).json()) as { offset: number; epoch: string };
    const { stream } = await api.start({ channel: "user:j3", text: "x" });
    await api.append("user:j3", stream, ["y", "z"]);
    const during = await subscriber("j3", { offset: before.offset, epoch: before.epoch });
    await during.next((f) => f.event === "stream.snapshot");
    expect(streamFrames(during.frames, stream)).toEqual([["stream.snapshot", 4, "xyz"]]);
    await api.end("user:j3", stream, "complete", { tokens: 3 });
    const after = await subscriber("j3", { offset: 0, epoch: before.epoch });
    const events = await after.collect((f) => f.type === "event", 2);
    expect(events.map((f) => [f.event, f.offset])).toEqual([["hello", 1], ["stream.snapshot", 5]]);
    expect(events[1]).toMatchObject({ text: "xyz", status: "complete", result: { tokens: 3 }, critical: true });
  });

  test("/v1/history answers the same: a snapshot from the start, one append from inside", async () => {
    const { stream } = await api.start({ channel: "user:h1", text: "one" });
    await api.append("user:h1", stream, [" two", " three"]);
    const whole = await history("h1");
    expect(whole.events.map((f: any) => [f.event, f.offset, f.text, f.status])).toEqual([["stream.snapshot", 3, "one two three", "streaming"]]);
    const tail = await history("h1", 2);
    expect(tail.events.map((f: any) => [f.event, f.offset, f.text])).toEqual([["stream.append", 3, " three"]]);
    await api.end("user:h1", stream, "complete");
    const ended = await history("h1");
    expect(ended.events.map((f: any) => [f.event, f.offset, f.status, f.critical])).toEqual([["stream.snapshot", 4, "complete", true]]);
  });

  test("a session resume mid-stream gets the appends after its ack as one stream.append", async () => {
    const { stream } = await api.start({ channel: "user:s1", text: "Hel" });
    const c = await subscriber("s1");
    await c.next((f) => f.event === "stream.snapshot");
    c.send({ type: "ack", channel: "user:s1", offset: 1 });
    // The ack is processed before the pong of a ping sent after it.
    await c.request({ type: "ping" });
    c.close();
    await c.closed;
    await api.append("user:s1", stream, ["lo", " wor", "ld"]);
    const resumed = await connectWelcomed(`${server.ws}?token=${await server.token("s1")}&session=${c.welcome.session}`);
    open.push(resumed);
    expect(resumed.welcome.resumed).toBe(true);
    const append = await resumed.next((f) => f.event === "stream.append");
    expect(append).toMatchObject({ text: "lo world", offset: 4 });
  });
});

describe("cancel", () => {
  test("a subscriber's cancel ends the stream cancelled at once; a second one answers false", async () => {
    const c = await subscriber("c1");
    const { stream } = await api.start({ channel: "user:c1", text: "Long answer" });
    await c.next((f) => f.stream === stream);
    const answer = await c.request({ type: "cancel", channel: "user:c1", stream });
    expect(answer).toMatchObject({ type: "result", data: { cancelled: true } });
    const end = await c.next((f) => f.event === "stream.end");
    expect(end).toMatchObject({ stream, status: "cancelled", critical: true, data: { by: "c1" } });
    expect((await c.request({ type: "cancel", channel: "user:c1", stream })).data).toEqual({ cancelled: false });
    const late = await api.post("/v1/streams/append", { channel: "user:c1", stream, text: "more" });
    expect(late.status).toBe(409);
  });

  test("cancel on a channel the connection has not joined is a bad_request error", async () => {
    const c = await subscriber("c2");
    const answer = await c.request({ type: "cancel", channel: "user:other", stream: "s" });
    expect(answer).toMatchObject({ type: "error", code: "bad_request" });
  });
});

describe("the demo agent", () => {
  test("streams its answer token by token between tool_completed and agent_completed", async () => {
    const c = await subscriber("d1");
    const answer = await c.request({ type: "rpc", method: "agent.run", data: { prompt: "weekly signals" } });
    const run = answer.data.run;
    const done = await c.next((f) => f.event === "agent_completed" && f.data.run === run, 10_000);
    const start = c.frames.find((f) => f.event === "answer")!;
    expect(start).toMatchObject({ data: { run }, text: "" });
    const tokens = demoAnswer("weekly signals");
    expect(rebuiltText(c.frames, start.stream)).toBe(tokens.join(""));
    expect(done.data).toMatchObject({ stream: start.stream, answer: tokens.join("") });
    const order = c.frames.filter((f) => f.type === "event").map((f) => (f.event === "stream.append" ? "append" : f.event));
    expect(order.filter((e, i) => e !== "append" || order[i - 1] !== "append")).toEqual([
      "agent_started", "agent_thinking", "tool_executing", "tool_completed", "answer", "append", "stream.end", "agent_completed",
    ]);
    expect(c.frames.find((f) => f.event === "stream.end")).toMatchObject({ status: "complete", data: { run, tokens: tokens.length } });
  });

  test("a subscriber's cancel stops the demo agent: the stream ends cancelled, the run completes as cancelled", async () => {
    const c = await subscriber("d2");
    await c.request({ type: "rpc", method: "agent.run", data: { prompt: "stop me" } });
    const start = await c.next((f) => f.event === "answer", 10_000);
    expect((await c.request({ type: "cancel", channel: "user:d2", stream: start.stream })).data).toEqual({ cancelled: true });
    const done = await c.next((f) => f.event === "agent_completed", 10_000);
    expect(done.data).toMatchObject({ stream: start.stream, cancelled: true });
    expect(c.frames.find((f) => f.event === "stream.end")).toMatchObject({ status: "cancelled" });
    expect(rebuiltText(c.frames, start.stream).length).toBeLessThan(demoAnswer("stop me").join("").length);
    // Nothing of the stream after its end.
    const endAt = c.frames.findIndex((f) => f.event === "stream.end");
    expect(c.frames.slice(endAt + 1).filter((f) => f.stream === start.stream)).toEqual([]);
  });
});

describe("cancel with an agent backend", () => {
  test("the backend, as the stream's producer, gets rpc stream.cancel with the channel and stream", async () => {
    const calls: Array<{ user: string; method: string; data: unknown }> = [];
    const called = Promise.withResolvers<void>();
    using backend = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async (req) => {
        calls.push((await req.json()) as { user: string; method: string; data: unknown });
        called.resolve();
        return Response.json({ ok: true });
      },
    });
    await using withBackend = await startServer({ config: { agent: { url: `http://127.0.0.1:${backend.port}/agent` } } });
    const c = await connectWelcomed(`${withBackend.ws}?token=${await withBackend.token("b1")}`);
    open.push(c);
    await c.request({ type: "subscribe", channel: "user:b1" });
    const { stream } = await streamApi(withBackend.http).start({ channel: "user:b1", text: "thinking" });
    expect((await c.request({ type: "cancel", channel: "user:b1", stream })).data).toEqual({ cancelled: true });
    await called.promise;
    expect(calls).toEqual([{ user: "b1", method: "stream.cancel", data: { channel: "user:b1", stream } }]);
  });
});

describe("frame size", () => {
  test("a text or data that would make a frame over maxEventFrameBytes is 413", async () => {
    await using small = await startServer({ config: { limits: { maxEventFrameBytes: 2_000 } } });
    const smallApi = streamApi(small.http);
    const big = "x".repeat(2_000);
    expect((await smallApi.post("/v1/streams", { channel: "user:f1", text: big })).status).toBe(413);
    const { stream } = await smallApi.start({ channel: "user:f1", text: "ok" });
    const refused = await smallApi.post("/v1/streams/append", { channel: "user:f1", stream, texts: ["fine", big] });
    expect(refused.status).toBe(413);
    expect(await refused.json()).toMatchObject({ error: "limit_exceeded", message: expect.stringContaining("texts.1") });
    expect((await smallApi.post("/v1/streams/end", { channel: "user:f1", stream, status: "failed", data: { log: big } })).status).toBe(413);
    expect(await smallApi.append("user:f1", stream, "fine")).toMatchObject({ offset: 2 });
  });
});
