import { describe, expect, test } from "bun:test";
import { CourierApiError, CourierServer, type CourierServerOptions } from "../src/index.ts";
import { FakeClock, courierError, scriptedFetch, settle, timeoutError, type Recorded } from "./fakes.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function setup(answers: Parameters<typeof scriptedFetch>[0] = [], options: Partial<CourierServerOptions> = {}) {
  const { fetch, requests } = scriptedFetch(answers);
  const clock = new FakeClock();
  const courier = new CourierServer({ url: "http://courier.test/", apiKey: "key-1", fetch, clock, ...options });
  return { courier, requests, clock };
}

/** What the server saw, without the generated key (checked on its own). */
function shape(r: Recorded) {
  const { "idempotency-key": _key, ...headers } = r.headers;
  return { method: r.method, path: r.url.pathname + r.url.search, headers, body: r.body };
}

const apiHeaders = { authorization: "Bearer key-1", "content-type": "application/json" };

describe("CourierServer requests", () => {
  test("publish posts the body with the API key and a generated Idempotency-Key", async () => {
    const { courier, requests } = setup([Response.json({ channel: "user:alice", offset: 3, epoch: "e1" })]);
    const answer = await courier.publish({ channel: "user:alice", event: "note", data: { n: 1 }, critical: true, coalesce: "k" });
    expect(answer).toEqual({ channel: "user:alice", offset: 3, epoch: "e1" });
    expect(shape(requests[0]!)).toEqual({ method: "POST", path: "/v1/publish", headers: apiHeaders, body: { channel: "user:alice", event: "note", data: { n: 1 }, critical: true, coalesce: "k" } });
    expect(requests[0]!.headers["idempotency-key"]).toMatch(UUID);
  });

  test("each call gets its own key; a caller's key is used as given", async () => {
    const { courier, requests } = setup();
    await courier.publish({ channel: "user:a", event: "e" });
    await courier.publish({ channel: "user:a", event: "e" });
    await courier.publish({ channel: "user:a", event: "e" }, { idempotencyKey: "order-7" });
    const keys = requests.map((r) => r.headers["idempotency-key"]);
    expect(new Set(keys).size).toBe(3);
    expect(keys[2]).toBe("order-7");
  });

  test("publishBatch gives every item its own key and keeps the caller's", async () => {
    const results = [{ channel: "user:a", offset: 1, epoch: "e" }, { channel: "user:b", offset: 1, epoch: "e" }];
    const { courier, requests } = setup([Response.json({ results })]);
    expect(await courier.publishBatch([{ channel: "user:a", event: "x" }, { channel: "user:b", event: "y", idempotencyKey: "mine" }])).toEqual(results);
    const [request] = requests;
    expect(request!.url.pathname).toBe("/v1/publish/batch");
    expect(request!.headers["idempotency-key"]).toBeUndefined();
    expect(request!.body.items[0].idempotencyKey).toMatch(UUID);
    expect(request!.body.items[1]).toEqual({ channel: "user:b", event: "y", idempotencyKey: "mine" });
  });

  test("history reads with the user's token and no idempotency key", async () => {
    const page = { channel: "user:alice", epoch: "e", offset: 0, recovered: true, events: [] };
    const { courier, requests } = setup([Response.json(page)]);
    expect(await courier.history({ channel: "user:alice", token: "jwt-1", since: 4, epoch: "e", limit: 10 })).toEqual(page);
    expect(requests[0]!.headers).toEqual({ authorization: "Bearer jwt-1" });
    expect(shape(requests[0]!).path).toBe("/v1/history?channel=user%3Aalice&since=4&epoch=e&limit=10");
  });

  // The v1.1 control routes, exactly as PROTOCOL.md §2 lists them.
  test("presence, disconnect, unsubscribe, jobs and signals match PROTOCOL §2", async () => {
    const { courier, requests } = setup();
    await courier.presence("public:lobby");
    await courier.disconnect({ user: "alice", reason: "banned" });
    await courier.unsubscribe({ user: "alice", channel: "public:lobby" });
    await courier.createJob({ owner: "alice", simulate: true });
    await courier.signal({ tier: "pro", event: "price_alert", data: { symbol: "ACME" } });
    expect(requests.map(shape)).toEqual([
      { method: "GET", path: "/v1/presence?channel=public%3Alobby", headers: { authorization: "Bearer key-1" }, body: undefined },
      { method: "POST", path: "/v1/disconnect", headers: apiHeaders, body: { user: "alice", reason: "banned" } },
      { method: "POST", path: "/v1/unsubscribe", headers: apiHeaders, body: { user: "alice", channel: "public:lobby" } },
      { method: "POST", path: "/v1/jobs", headers: apiHeaders, body: { owner: "alice", simulate: true } },
      { method: "POST", path: "/v1/signals", headers: apiHeaders, body: { tier: "pro", event: "price_alert", data: { symbol: "ACME" } } },
    ]);
    expect(requests[0]!.headers["idempotency-key"]).toBeUndefined();
    for (const r of requests.slice(1)) expect(r.headers["idempotency-key"]).toMatch(UUID);
  });

  test("rejects options that cannot work", () => {
    expect(() => new CourierServer({ url: "http://x", apiKey: "" })).toThrow(TypeError);
    expect(() => new CourierServer({ url: "http://x", apiKey: "k", deadlineMs: 0 })).toThrow(RangeError);
  });
});

describe("CourierServer retries", () => {
  test("a 503 is retried after Retry-After with the same key: not at delay - 1, at delay", async () => {
    const { courier, requests, clock } = setup([courierError(503, "unavailable", 2), Response.json({ channel: "user:a", offset: 1, epoch: "e" })]);
    const call = courier.publish({ channel: "user:a", event: "e" });
    await settle();
    expect(requests).toHaveLength(1);
    await clock.advance(1999);
    expect(requests).toHaveLength(1);
    await clock.advance(1);
    expect(requests).toHaveLength(2);
    expect(await call).toEqual({ channel: "user:a", offset: 1, epoch: "e" });
    expect(requests[1]!.headers["idempotency-key"]).toBe(requests[0]!.headers["idempotency-key"]!);
  });

  test("without Retry-After the backoff doubles from backoffMs", async () => {
    const { courier, requests, clock } = setup([new TypeError("connection refused"), new TypeError("connection refused"), Response.json({})], { backoffMs: 100 });
    const call = courier.publish({ channel: "user:a", event: "e" });
    await settle();
    await clock.advance(99);
    expect(requests).toHaveLength(1);
    await clock.advance(1);
    expect(requests).toHaveLength(2);
    await clock.advance(199);
    expect(requests).toHaveLength(2);
    await clock.advance(1);
    await call;
    expect(clock.sleeps).toEqual([100, 200]);
  });

  test("a retry that would pass the deadline is not made: the error says what is known", async () => {
    const { courier, requests, clock } = setup([courierError(503, "unavailable", 2), courierError(503, "unavailable", 2)]);
    const failed = courier.publish({ channel: "user:a", event: "e" }, { deadlineMs: 3000 }).catch((e) => e);
    await settle();
    await clock.advance(2000);
    const error = (await failed) as CourierApiError;
    expect(error).toBeInstanceOf(CourierApiError);
    expect({ status: error.status, code: error.code, retryAfterMs: error.retryAfterMs, outcomeUnknown: error.outcomeUnknown, attempts: error.attempts }).toEqual({
      status: 503,
      code: "unavailable",
      retryAfterMs: 2000,
      // Courier's own 503 means nothing was stored.
      outcomeUnknown: false,
      attempts: 2,
    });
    expect(error.idempotencyKey).toBe(requests[0]!.headers["idempotency-key"]!);
  });

  test("timeouts are retried with the same key and end as outcome unknown", async () => {
    const { courier, requests, clock } = setup([timeoutError(), timeoutError()], { deadlineMs: 150, backoffMs: 100 });
    const failed = courier.publish({ channel: "user:a", event: "e" }).catch((e) => e);
    await settle();
    await clock.advance(100);
    const error = (await failed) as CourierApiError;
    expect({ status: error.status, code: error.code, outcomeUnknown: error.outcomeUnknown, attempts: error.attempts }).toEqual({ status: 0, code: "timeout", outcomeUnknown: true, attempts: 2 });
    expect(requests[1]!.headers["idempotency-key"]).toBe(requests[0]!.headers["idempotency-key"]!);
  });

  test("a proxy's 502 without Courier's body leaves the outcome unknown", async () => {
    const { courier } = setup([new Response("<html>bad gateway</html>", { status: 502 })], { deadlineMs: 50, backoffMs: 100 });
    const error = (await courier.publish({ channel: "user:a", event: "e" }).catch((e) => e)) as CourierApiError;
    expect({ status: error.status, code: error.code, outcomeUnknown: error.outcomeUnknown }).toEqual({ status: 502, code: "unavailable", outcomeUnknown: true });
  });

  test("a 400 is not retried and carries the validation issues", async () => {
    const issues = [{ path: "event", message: "must be 1–64 of A-Z a-z 0-9 _ . : -" }];
    const { courier, requests } = setup([Response.json({ error: "bad_request", message: "event: bad", issues }, { status: 400 })]);
    const error = (await courier.publish({ channel: "user:a", event: "bad event" }).catch((e) => e)) as CourierApiError;
    expect({ status: error.status, code: error.code, message: error.message, issues: error.issues, outcomeUnknown: error.outcomeUnknown }).toEqual({
      status: 400,
      code: "bad_request",
      message: "event: bad",
      issues,
      outcomeUnknown: false,
    });
    expect(requests).toHaveLength(1);
  });

  test("a caller's abort stops the retries", async () => {
    const { courier, requests, clock } = setup([courierError(503, "unavailable", 1)]);
    const controller = new AbortController();
    const failed = courier.publish({ channel: "user:a", event: "e" }, { signal: controller.signal }).catch((e) => (e as Error).message);
    await settle();
    expect(clock.sleeps).toEqual([1000]);
    controller.abort(new Error("shutting down"));
    // Rejected at once, without the sleep running out.
    expect(await failed).toBe("shutting down");
    expect(requests).toHaveLength(1);
  });
});

describe("CourierServer streams (PROTOCOL §8)", () => {
  function deferred() {
    const runs: (() => void)[] = [];
    return { defer: (run: () => void) => void runs.push(run), tick: () => runs.splice(0).forEach((run) => run()) };
  }

  test("startStream, appends of one tick as one texts request, then end", async () => {
    const ticks = deferred();
    const { courier, requests } = setup(
      [Response.json({ channel: "user:a", stream: "s1", offset: 1, epoch: "e" }), Response.json({ offset: 4 }), Response.json({ offset: 5 }), Response.json({ offset: 6 })],
      { deferAppends: ticks.defer },
    );
    const started = await courier.startStream({ channel: "user:a", event: "answer", data: { run: "r1" }, text: "He" });
    expect(started).toEqual({ channel: "user:a", stream: "s1", offset: 1, epoch: "e" });
    const first = ["llo", ", ", "world"].map((t) => courier.append("user:a", "s1", t));
    ticks.tick();
    expect(await Promise.all(first)).toEqual([{ offset: 4 }, { offset: 4 }, { offset: 4 }]);
    const second = courier.append("user:a", "s1", "!");
    ticks.tick();
    expect(await second).toEqual({ offset: 5 });
    expect(await courier.end("user:a", "s1", "complete", { tokens: 5 })).toEqual({ offset: 6 });
    expect(requests.map(shape)).toEqual([
      { method: "POST", path: "/v1/streams", headers: apiHeaders, body: { channel: "user:a", event: "answer", data: { run: "r1" }, text: "He" } },
      { method: "POST", path: "/v1/streams/append", headers: apiHeaders, body: { channel: "user:a", stream: "s1", texts: ["llo", ", ", "world"] } },
      { method: "POST", path: "/v1/streams/append", headers: apiHeaders, body: { channel: "user:a", stream: "s1", text: "!" } },
      { method: "POST", path: "/v1/streams/end", headers: apiHeaders, body: { channel: "user:a", stream: "s1", status: "complete", data: { tokens: 5 } } },
    ]);
  });

  test("a batch waits for the one in flight, and end sends what is queued first", async () => {
    const ticks = deferred();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { courier, requests } = setup(
      [async () => (await held, Response.json({ offset: 2 })), Response.json({ offset: 3 }), Response.json({ offset: 4 })],
      { deferAppends: ticks.defer },
    );
    const a = courier.append("user:a", "s1", "a");
    ticks.tick();
    await settle();
    const b = courier.append("user:a", "s1", "b");
    const ended = courier.end("user:a", "s1", "cancelled");
    await settle();
    // "b" must not overtake "a", which is still unanswered.
    expect(requests).toHaveLength(1);
    release();
    expect(await a).toEqual({ offset: 2 });
    expect(await b).toEqual({ offset: 3 });
    expect(await ended).toEqual({ offset: 4 });
    expect(requests.map((r) => [r.url.pathname, r.body.text ?? r.body.status])).toEqual([
      ["/v1/streams/append", "a"],
      ["/v1/streams/append", "b"],
      ["/v1/streams/end", "cancelled"],
    ]);
  });

  test("a failed append fails the later appends of that stream instead of leaving a hole", async () => {
    const ticks = deferred();
    const { courier, requests } = setup([Response.json({ error: "conflict", message: "stream ended" }, { status: 409 })], { deferAppends: ticks.defer });
    const first = courier.append("user:a", "s1", "a");
    ticks.tick();
    const error = (await first.catch((e) => e)) as CourierApiError;
    expect({ status: error.status, code: error.code }).toEqual({ status: 409, code: "conflict" });
    expect(await courier.append("user:a", "s1", "b").catch((e) => e)).toBe(error);
    expect(requests).toHaveLength(1);
  });
});
