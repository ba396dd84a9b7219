/**
 * Agent streams (PROTOCOL §8) through both SDKs against the real server: `@courier/server`'s
 * startStream / append (batched per tick) / end on the real routes, and `@courier/client`'s
 * `on("stream")` handing the app the whole text so far — live and after a join mid-stream (the
 * snapshot) — and its `cancel()`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CourierClient, type AgentStream } from "../packages/client/src/index.ts";
import { CourierApiError, CourierServer } from "../packages/server/src/index.ts";
import { API_KEY, startServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let courier: CourierServer;
const clients: CourierClient[] = [];

beforeAll(async () => {
  server = await startServer();
  courier = new CourierServer({ url: server.http, apiKey: API_KEY, deadlineMs: 5_000 });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.stop();
});

/** A connected client subscribed to `channel`, recording every `stream` change. */
async function client(user: string): Promise<{ client: CourierClient; changes: AgentStream[]; until(test: (s: AgentStream) => boolean): Promise<AgentStream> }> {
  const c = new CourierClient({ url: server.ws, token: await server.token(user) });
  clients.push(c);
  const changes: AgentStream[] = [];
  const waiters: Array<{ test: (s: AgentStream) => boolean; resolve: (s: AgentStream) => void }> = [];
  c.on("stream", (s) => {
    changes.push(s);
    for (const w of [...waiters]) {
      if (!w.test(s)) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(s);
    }
  });
  c.subscribe(`user:${user}`, () => {});
  c.connect();
  await new Promise<void>((resolve) => {
    if (c.status === "live") return resolve();
    const off = c.on("status", ({ status }) => status === "live" && (off(), resolve()));
  });
  // The subscribe went out once live: a ping after it returns after its `subscribed`.
  await c.ping();
  return {
    client: c,
    changes,
    until: (t) => {
      const found = changes.find(t);
      if (found) return Promise.resolve(found);
      const { promise, resolve } = Promise.withResolvers<AgentStream>();
      waiters.push({ test: t, resolve });
      return promise;
    },
  };
}

describe("@courier/server on the real routes", () => {
  test("startStream, appends of one tick as one request, end; the text is stored in call order", async () => {
    const watcher = await client("sdk1");
    const started = await courier.startStream({ channel: "user:sdk1", event: "answer", data: { run: "r1" }, text: "He" });
    const offsets = await Promise.all(["llo", ", ", "world"].map((t) => courier.append("user:sdk1", started.stream, t)));
    // One tick, one `texts` request: every append answers the batch's last offset.
    expect(new Set(offsets.map((o) => o.offset)).size).toBe(1);
    expect(offsets[0]!.offset).toBe(started.offset + 3);
    await courier.end("user:sdk1", started.stream, "complete", { tokens: 4 });
    const done = await watcher.until((s) => s.status === "complete");
    expect(done).toMatchObject({ stream: started.stream, text: "Hello, world", data: { run: "r1" }, result: { tokens: 4 } });
  });

  test("an append to an ended stream is a CourierApiError 409 conflict", async () => {
    const { stream } = await courier.startStream({ channel: "user:sdk2" });
    await courier.end("user:sdk2", stream, "failed");
    const error = await courier.append("user:sdk2", stream, "late").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CourierApiError);
    expect(error).toMatchObject({ status: 409, code: "conflict" });
  });
});

describe("@courier/client on(\"stream\")", () => {
  test("live: each change hands the whole text so far", async () => {
    const { changes, until } = await client("sdk3");
    const { stream } = await courier.startStream({ channel: "user:sdk3", text: "a" });
    await courier.append("user:sdk3", stream, "b");
    await courier.append("user:sdk3", stream, "c");
    await until((s) => s.text === "abc");
    expect(changes.map((s) => s.text)).toEqual(["a", "ab", "abc"]);
  });

  test("a client joining mid-stream gets the text so far from the snapshot, then the appends", async () => {
    const { stream } = await courier.startStream({ channel: "user:sdk4", text: "Once " });
    await courier.append("user:sdk4", stream, "upon ");
    const late = await client("sdk4");
    expect(await late.until((s) => s.stream === stream)).toMatchObject({ text: "Once upon ", status: "streaming" });
    expect(late.client.openStreams().map((s) => s.text)).toEqual(["Once upon "]);
    await courier.append("user:sdk4", stream, "a time");
    expect(await late.until((s) => s.text === "Once upon a time")).toMatchObject({ stream });
  });

  test("cancel() ends the stream cancelled and resolves true; again it resolves false", async () => {
    const { client: c, until } = await client("sdk5");
    const { stream } = await courier.startStream({ channel: "user:sdk5", text: "..." });
    await until((s) => s.stream === stream);
    expect(await c.cancel("user:sdk5", stream)).toBe(true);
    expect(await until((s) => s.status === "cancelled")).toMatchObject({ stream, text: "..." });
    expect(await c.cancel("user:sdk5", stream)).toBe(false);
  });
});

describe("@courier/client resuming from a persisted position", () => {
  test("a stream first seen through an append is marked partial", async () => {
    const { stream, epoch, offset } = await courier.startStream({ channel: "user:sdk6", text: "head " });
    await courier.append("user:sdk6", stream, "tail");
    const c = new CourierClient({ url: server.ws, token: await server.token("sdk6") });
    clients.push(c);
    const changed = Promise.withResolvers<AgentStream>();
    c.on("stream", (s) => changed.resolve(s));
    c.subscribe("user:sdk6", () => {}, { since: { epoch, offset } });
    c.connect();
    expect(await changed.promise).toMatchObject({ stream, text: "tail", partial: true });
  });
});
