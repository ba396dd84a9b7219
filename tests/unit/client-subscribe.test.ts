import { afterEach, describe, expect, jest, test } from "bun:test";
import { CloseCode, CourierClient, ErrorCode, type StatusChange } from "../../packages/client/src/index.ts";
import { advance, flush, setup } from "./client-fakes.ts";

afterEach(() => {
  jest.useRealTimers();
});

describe("subscribe", () => {
  test("returns an unsubscribe function; unsubscribe goes out when the last handler goes", () => {
    const { client, ws } = setup();
    client.connect();
    ws.last().welcome();
    const h = () => {};
    const off1 = client.subscribe("public:news", h);
    const off2 = client.subscribe("public:news", h); // same function twice: two registrations
    expect(ws.last().sent.map((f) => [f.type, f.channel])).toEqual([["subscribe", "public:news"]]);
    off1();
    off1(); // idempotent
    expect(ws.last().ofType("unsubscribe")).toEqual([]);
    off2();
    expect(ws.last().ofType("unsubscribe")).toMatchObject([{ type: "unsubscribe", channel: "public:news" }]);
    off2();
    expect(ws.last().ofType("unsubscribe")).toHaveLength(1);
    client.close();
  });

  test("channels subscribed before connect() go out after the welcome", () => {
    const { client, ws } = setup();
    client.subscribe("user:u1", () => {});
    client.connect();
    expect(ws.last().sent).toEqual([]);
    ws.last().welcome();
    expect(ws.last().ofType("subscribe")).toMatchObject([{ channel: "user:u1" }]);
    client.close();
  });

  test("a handler that throws does not stop the others; the error reaches on('error')", () => {
    const { client, ws } = setup();
    const errors: Error[] = [];
    const got: number[] = [];
    client.on("error", (e) => errors.push(e));
    client.subscribe("user:u1", () => {
      throw new Error("boom");
    });
    client.subscribe("user:u1", (e) => got.push(e.offset));
    client.connect();
    ws.last().welcome();
    ws.last().receive({ type: "subscribed", id: ws.last().ofType("subscribe")[0]!.id, channel: "user:u1", epoch: "e", offset: 0 });
    ws.last().receive({ type: "event", channel: "user:u1", offset: 1, event: "x", data: null, ts: 0 });
    expect(got).toEqual([1]);
    expect(errors.map((e) => e.message)).toEqual(["boom"]);
    client.close();
  });

  test("misuse throws TypeError", () => {
    const { client } = setup();
    expect(() => client.subscribe("", () => {})).toThrow(TypeError);
    expect(() => client.subscribe("job:a..b", () => {})).toThrow(TypeError);
    expect(() => client.subscribe("no-kind", () => {})).toThrow(TypeError);
    expect(() => client.subscribe("user:u1", 1 as never)).toThrow(TypeError);
    expect(() => client.subscribe("user:u1", () => {}, { since: { epoch: "e", offset: -1 } })).toThrow(TypeError);
    client.close();
    expect(() => client.subscribe("user:u1", () => {})).toThrow(new TypeError("Cannot subscribe: client closed"));
  });
});

describe("subscribe refusals", () => {
  test("a transient refusal is retried after 2 s, then 4 s; a subscribed stops the retries", async () => {
    const { client, ws } = setup();
    const errors: Error[] = [];
    client.on("error", (e) => errors.push(e));
    client.connect();
    const s = ws.last();
    s.welcome();
    client.subscribe("user:u1", () => {});
    s.receive({ type: "error", id: s.ofType("subscribe")[0]!.id, code: "unavailable", message: "history is unavailable, retry" });
    await flush();
    expect(errors).toMatchObject([{ code: "unavailable", channel: "user:u1" }]);
    advance(1999);
    expect(s.ofType("subscribe")).toHaveLength(1);
    advance(1);
    expect(s.ofType("subscribe")).toHaveLength(2);
    s.receive({ type: "error", id: s.ofType("subscribe")[1]!.id, code: "unavailable", message: "still down" });
    await flush();
    advance(3999);
    expect(s.ofType("subscribe")).toHaveLength(2);
    advance(1);
    expect(s.ofType("subscribe")).toHaveLength(3);
    s.receive({ type: "subscribed", id: s.ofType("subscribe")[2]!.id, channel: "user:u1", epoch: "e", offset: 0 });
    advance(60_000);
    expect(s.ofType("subscribe")).toHaveLength(3);
    client.close();
  });

  test("forbidden is not retried, and unsubscribing sends nothing", async () => {
    const { client, ws } = setup();
    client.on("error", () => {});
    client.connect();
    const s = ws.last();
    s.welcome();
    const off = client.subscribe("user:other", () => {});
    s.receive({ type: "error", id: s.ofType("subscribe")[0]!.id, code: "forbidden", message: "no" });
    await flush();
    advance(60_000);
    off();
    expect(s.sent.filter((f) => f.type !== "ping").map((f) => f.type)).toEqual(["subscribe"]);
    client.close();
  });
});

describe("status", () => {
  test("on('status') reports connecting, live, connecting, and returns its unsubscribe function", () => {
    const { client, ws } = setup();
    const seen: StatusChange[] = [];
    const off = client.on("status", (s) => seen.push(s));
    expect(client.status).toBe("offline");
    client.connect();
    ws.last().welcome();
    ws.last().serverClose(CloseCode.Stale);
    expect(seen).toEqual([
      { status: "connecting", polling: false },
      { status: "live", polling: false },
      { status: "connecting", reason: "stale", code: 4408, polling: false },
    ]);
    off();
    client.close();
    expect(seen).toHaveLength(3);
  });

  test("a throwing status listener does not break the client", () => {
    const { client, ws } = setup({ onStatus: () => { throw new Error("bad listener"); } });
    const errors: Error[] = [];
    client.on("error", (e) => errors.push(e));
    client.connect();
    ws.last().welcome();
    expect(client.status).toBe("live");
    expect(errors.length).toBeGreaterThan(0);
    client.close();
  });
});

describe("options", () => {
  test("validates with TypeError and RangeError", () => {
    expect(() => new CourierClient({ token: "t" })).toThrow(TypeError);
    expect(() => new CourierClient({ url: "not a url", token: "t" })).toThrow(TypeError);
    expect(() => new CourierClient({ url: "ws://h/v1/ws", token: 1 as never })).toThrow(TypeError);
    expect(() => new CourierClient({ url: "ws://h/v1/ws", token: "t", ackIntervalMs: 0 })).toThrow(RangeError);
    expect(() => new CourierClient({ url: "ws://h/v1/ws", token: "t", pollAfterFailures: 0 })).toThrow(RangeError);
  });

  test("re-exports the protocol's codes", () => {
    expect(CloseCode.TokenExpired).toBe(4401);
    expect(ErrorCode.Forbidden).toBe("forbidden");
  });
});
