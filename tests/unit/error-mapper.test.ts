/** The one error mapper: what an HTTP caller and a WebSocket client see for each typed error. */
import { describe, expect, test } from "bun:test";
import { StoreUnavailableError } from "../../src/engine/types.ts";
import { ErrorCode } from "../../src/protocol/codes.ts";
import { RpcError } from "../../src/protocol/rpc-error.ts";
import { toErrorFrame, toErrorResponse } from "../../src/server/error-response.ts";
import { HttpError } from "../../src/server/http.ts";
import { AdmissionRefused } from "../../src/server/admission.ts";
import { EventTooLargeError } from "../../src/server/publisher.ts";
import { createLogger } from "../../src/telemetry/index.ts";

function mapping(retryAfterS = 7) {
  const logs: string[] = [];
  return { logs, log: createLogger({ level: "debug", sink: (line) => logs.push(line) }), retryAfterS };
}

async function answer(response: Response) {
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: await response.json() };
}

describe("toErrorResponse", () => {
  test("an upgrade refusal answers its status with its reason; 429/503 carry its Retry-After, else the config's", async () => {
    const m = mapping();
    expect(await answer(toErrorResponse(new AdmissionRefused(401, "token_expired", "the token has expired"), m))).toEqual({
      status: 401,
      retryAfter: null,
      body: { error: "unauthorized", message: "the token has expired", reason: "token_expired" },
    });
    expect(await answer(toErrorResponse(new AdmissionRefused(429, "rate_limited", "slow down", 3), m))).toMatchObject({ status: 429, retryAfter: "3", body: { error: "rate_limited", reason: "rate_limited" } });
    expect(await answer(toErrorResponse(new AdmissionRefused(503, "unavailable", "full"), m))).toMatchObject({ status: 503, retryAfter: "7" });
  });

  test("a too large event frame is 413 limit_exceeded with its size; a batch names the item", async () => {
    const m = mapping();
    const single = await answer(toErrorResponse(new EventTooLargeError(0, 2001, 2000, false), m));
    expect(single).toEqual({ status: 413, retryAfter: null, body: { error: "limit_exceeded", message: "the event frame would be 2001 bytes, over the limit of 2000 (limits.maxEventFrameBytes)", bytes: 2001, limit: 2000 } });
    const batch = await answer(toErrorResponse(new EventTooLargeError(4, 2001, 2000, true), m));
    expect(batch.body).toMatchObject({ index: 4, message: expect.stringMatching(/^item 4: /) });
  });

  test("an HttpError answers as it says, with its extra fields and headers", async () => {
    const m = mapping();
    const error = new HttpError(405, "use GET", { headers: { allow: "GET" }, extra: { issues: [] } });
    const response = toErrorResponse(error, m);
    expect(response.headers.get("allow")).toBe("GET");
    expect(await answer(response)).toEqual({ status: 405, retryAfter: null, body: { error: "method_not_allowed", message: "use GET", issues: [] } });
    expect(m.logs).toEqual([]);
  });

  test("a store outage answers 503 unavailable with Retry-After from the config, whatever the engine said", async () => {
    const m = mapping(7);
    const response = toErrorResponse(new StoreUnavailableError("Redis publish: ECONNREFUSED 10.0.0.5:6379"), m);
    expect(await answer(response)).toEqual({ status: 503, retryAfter: "7", body: { error: "unavailable", message: "the store is unavailable" } });
    expect(m.logs).toEqual([]);
  });

  test("anything else answers 500 internal error; the log line has name and message, never a stack", async () => {
    const m = mapping();
    const response = toErrorResponse(new TypeError("cannot read x of undefined"), m);
    expect(await answer(response)).toEqual({ status: 500, retryAfter: null, body: { error: "internal", message: "internal error" } });
    expect(m.logs).toHaveLength(1);
    expect(JSON.parse(m.logs[0]!)).toMatchObject({ level: "error", msg: "request failed", error: { name: "TypeError", message: "cannot read x of undefined" } });
    expect(m.logs[0]).not.toMatch(/stack|\.ts:\d+/);
  });

  test("a thrown non-Error is logged as text and answers 500", async () => {
    const m = mapping();
    expect((await answer(toErrorResponse("boom", m))).status).toBe(500);
    expect(JSON.parse(m.logs[0]!)).toMatchObject({ error: "boom" });
  });
});

describe("toErrorFrame", () => {
  const messages = { unavailable: "history is unavailable, retry", internal: "could not subscribe", what: "join", fields: { channel: "public:a" } };

  test("an RpcError answers its own code and message", () => {
    const m = mapping();
    const out = toErrorFrame(new RpcError(ErrorCode.LimitExceeded, "at most 3"), { ...messages, id: "r1", log: m.log });
    expect({ code: out.code, frame: JSON.parse(out.frame) }).toEqual({ code: "limit_exceeded", frame: { type: "error", id: "r1", code: "limit_exceeded", message: "at most 3" } });
    expect(m.logs).toEqual([]);
  });

  test("a store outage answers unavailable with the caller's message, unlogged", () => {
    const m = mapping();
    const out = toErrorFrame(new StoreUnavailableError("Redis watch: no answer within 1000 ms"), { ...messages, id: undefined, log: m.log });
    expect(JSON.parse(out.frame)).toEqual({ type: "error", code: "unavailable", message: "history is unavailable, retry" });
    expect(m.logs).toEqual([]);
  });

  test("anything else answers internal with the caller's message and is logged with its fields", () => {
    const m = mapping();
    const out = toErrorFrame(new Error("hub state lost"), { ...messages, id: 4, log: m.log });
    expect(JSON.parse(out.frame)).toEqual({ type: "error", id: 4, code: "internal", message: "could not subscribe" });
    expect(JSON.parse(m.logs[0]!)).toMatchObject({ level: "error", msg: "join failed", channel: "public:a", error: { name: "Error", message: "hub state lost" } });
  });
});
