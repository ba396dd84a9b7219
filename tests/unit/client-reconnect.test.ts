import { afterEach, describe, expect, jest, test } from "bun:test";
import { backoffDelay, resolveBackoff, type StatusChange } from "../../packages/client/src/index.ts";
import { advance, flush, setup } from "./client-fakes.ts";

afterEach(() => {
  jest.useRealTimers();
});

describe("backoffDelay", () => {
  test("follows 100, 500, 1000, then doubles to the 5 s cap", () => {
    const b = resolveBackoff();
    expect([0, 1, 2, 3, 4, 5, 6, 40].map((i) => backoffDelay(i, b, () => 0.5))).toEqual([100, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });

  test("jitters by at most 5 % either way", () => {
    const b = resolveBackoff();
    expect([0, 3, 6].map((i) => backoffDelay(i, b, () => 0))).toEqual([95, 1900, 4750]);
    expect([0, 3, 6].map((i) => backoffDelay(i, b, () => 1))).toEqual([105, 2100, 5250]);
  });

  test("rejects nonsense options with RangeError", () => {
    expect(() => resolveBackoff({ jitter: 1 })).toThrow(RangeError);
    expect(() => resolveBackoff({ maxDelayMs: 0 })).toThrow(RangeError);
    expect(() => resolveBackoff({ stepsMs: [] })).toThrow(RangeError);
  });
});

describe("reconnect schedule", () => {
  test("retries at 100, 500, 1000, 2000, 4000, 5000, 5000 ms: not yet at delay-1, now one tick later", () => {
    const { client, ws } = setup({ pollAfterFailures: 100 });
    client.connect();
    expect(ws.sockets).toHaveLength(1);
    for (const [i, delay] of [100, 500, 1000, 2000, 4000, 5000, 5000].entries()) {
      ws.last().fail();
      advance(delay - 1);
      expect(ws.sockets).toHaveLength(i + 1);
      advance(1);
      expect(ws.sockets).toHaveLength(i + 2);
    }
    client.close();
  });

  test("random=0 gives -5 % and random=1 gives +5 %", () => {
    for (const [random, delay] of [[0, 95], [1, 105]] as const) {
      const { client, ws } = setup({ random: () => random });
      client.connect();
      ws.last().fail();
      advance(delay - 1);
      expect(ws.sockets).toHaveLength(1);
      advance(1);
      expect(ws.sockets).toHaveLength(2);
      client.close();
      jest.useRealTimers();
    }
  });

  test("resets after a welcome", () => {
    const { client, ws } = setup();
    client.connect();
    ws.last().fail();
    advance(100);
    ws.last().fail();
    advance(500);
    ws.last().welcome();
    ws.last().serverClose(1006);
    advance(99);
    expect(ws.sockets).toHaveLength(3);
    advance(1);
    expect(ws.sockets).toHaveLength(4);
    client.close();
  });

  test("a reconnect frame's after wins over the schedule", () => {
    const statuses: StatusChange[] = [];
    const { client, ws } = setup({ onStatus: (s) => statuses.push(s) });
    client.connect();
    ws.last().welcome();
    ws.last().receive({ type: "reconnect", reason: "draining", after: 3000 });
    ws.last().serverClose(1012);
    expect(client.status).toBe("connecting");
    expect(statuses.at(-1)).toEqual({ status: "connecting", reason: "server_restart", code: 1012, polling: false });
    advance(2999);
    expect(ws.sockets).toHaveLength(1);
    advance(1);
    expect(ws.sockets).toHaveLength(2);
    client.close();
  });

  test("hint(ms), e.g. from Retry-After, replaces the pending delay", () => {
    const { client, ws } = setup();
    client.connect();
    ws.last().fail();
    client.hint(2500);
    advance(2499);
    expect(ws.sockets).toHaveLength(1);
    advance(1);
    expect(ws.sockets).toHaveLength(2);
    expect(() => client.hint(-1)).toThrow(RangeError);
    client.close();
  });

  test.each([
    [4400, "protocol_errors"],
    [1003, "unsupported_data"],
    [1009, "message_too_big"],
  ])("does not reconnect after close %d", (code, reason) => {
    let last: StatusChange | undefined;
    const { client, ws } = setup({ onStatus: (s) => (last = s) });
    client.connect();
    ws.last().welcome();
    ws.last().serverClose(code);
    expect(last).toEqual({ status: "offline", reason, code, polling: false });
    const changes: StatusChange[] = [];
    client.on("status", (s) => changes.push(s));
    advance(120_000);
    expect(ws.sockets).toHaveLength(1);
    expect(changes).toEqual([]);
    expect(client.polling).toBe(false);
    client.close();
  });

  test("offline after 4400 carries the reason and code", () => {
    const statuses: StatusChange[] = [];
    const { client, ws } = setup({ onStatus: (s) => statuses.push(s) });
    client.connect();
    ws.last().welcome();
    ws.last().serverClose(4400);
    expect(statuses.map((s) => s.status)).toEqual(["connecting", "live", "offline"]);
    expect(statuses.at(-1)).toEqual({ status: "offline", reason: "protocol_errors", code: 4400, polling: false });
  });

  test("calls the token provider again after 4401, then resumes the session", () => {
    let n = 0;
    const token = jest.fn(() => `tok${++n}`);
    const { client, ws } = setup({ token });
    client.connect();
    expect(ws.last().token).toBe("tok1");
    expect(ws.last().url.searchParams.get("session")).toBeNull();
    ws.last().welcome({ session: "sess-9" });
    ws.last().serverClose(1006);
    advance(100);
    expect(token).toHaveBeenCalledTimes(1); // a plain drop keeps the token
    ws.last().welcome({ session: "sess-9", resumed: true });
    ws.last().serverClose(4401);
    advance(100);
    expect(token).toHaveBeenCalledTimes(2);
    expect(ws.last().token).toBe("tok2");
    expect(ws.last().url.searchParams.get("session")).toBe("sess-9");
    client.close();
  });

  test("calls the token provider again after a refusal before open (a 401 browsers cannot see)", () => {
    const token = jest.fn(() => "tok");
    const { client, ws } = setup({ token });
    client.connect();
    ws.last().fail();
    advance(100);
    expect(token).toHaveBeenCalledTimes(2);
    client.close();
  });

  test("awaits an async token provider", async () => {
    const { client, ws } = setup({ token: async () => "async-tok" });
    client.connect();
    expect(ws.sockets).toHaveLength(0);
    await flush();
    expect(ws.last().token).toBe("async-tok");
    client.close();
  });

  test("a rejecting token provider counts as a failed attempt", async () => {
    const errors: Error[] = [];
    let calls = 0;
    const { client, ws } = setup({ token: async () => (++calls === 1 ? Promise.reject(new Error("auth down")) : "ok") });
    client.on("error", (e) => errors.push(e));
    client.connect();
    await flush();
    expect(errors.map((e) => e.message)).toEqual(["auth down"]);
    advance(100);
    await flush();
    expect(ws.sockets).toHaveLength(1);
    client.close();
  });

  test("tries the URLs in turn, the next one after each failed attempt", () => {
    const urls = ["ws://a.test/v1/ws", "ws://b.test/v1/ws", "ws://c.test/v1/ws"];
    const { client, ws } = setup({ urls, url: undefined });
    client.connect();
    ws.last().fail();
    advance(100);
    ws.last().fail();
    advance(500);
    ws.last().fail();
    advance(1000);
    expect(ws.sockets.map((s) => s.url.host)).toEqual(["a.test", "b.test", "c.test", "a.test"]);
    ws.last().welcome();
    ws.last().serverClose(1006);
    advance(100);
    expect(ws.sockets.at(-1)!.url.host).toBe("a.test"); // a live connection's URL is tried first again
    client.close();
  });

  test("an attempt without a welcome times out and fails over", () => {
    const { client, ws } = setup({ urls: ["ws://a.test/v1/ws", "ws://b.test/v1/ws"], url: undefined, connectTimeoutMs: 1000 });
    client.connect();
    ws.last().open();
    advance(1000);
    expect(ws.sockets[0]!.closedWith).toBe(1000);
    advance(100);
    expect(ws.sockets.map((s) => s.url.host)).toEqual(["a.test", "b.test"]);
    client.close();
  });

  test("an idle connection is probed after a heartbeat, and closed as stale without an answer", () => {
    const statuses: StatusChange[] = [];
    const { client, ws } = setup({ onStatus: (s) => statuses.push(s) });
    client.connect();
    const s = ws.last();
    s.autoPong = false;
    s.welcome({ heartbeat: 10 });
    advance(9999);
    expect(s.ofType("ping")).toEqual([]);
    advance(1);
    expect(s.ofType("ping")).toHaveLength(1);
    advance(9999);
    expect(client.status).toBe("live");
    advance(1);
    expect(statuses.at(-1)).toEqual({ status: "connecting", reason: "stale", polling: false });
    expect(s.closedWith).toBe(1000);
    advance(100);
    expect(ws.sockets).toHaveLength(2);
    client.close();
  });

  test("traffic or a pong keeps the connection; idleProbe: false turns the probe off", () => {
    const { client, ws } = setup();
    client.connect();
    const s = ws.last();
    s.welcome({ heartbeat: 10 });
    for (let i = 0; i < 5; i++) {
      advance(5000);
      s.receive({ type: "error", code: "bad_request", message: "any frame counts" });
    }
    client.on("error", () => {});
    expect(s.ofType("ping")).toEqual([]);
    advance(60_000); // idle: probed, answered
    expect(s.ofType("ping").length).toBeGreaterThan(0);
    expect(client.status).toBe("live");
    client.close();

    const quiet = setup({ idleProbe: false });
    quiet.client.connect();
    quiet.ws.last().autoPong = false;
    quiet.ws.last().welcome({ heartbeat: 10 });
    advance(120_000);
    expect(quiet.ws.last().ofType("ping")).toEqual([]);
    expect(quiet.client.status).toBe("live");
    quiet.client.close();
  });

  test("close() stops reconnecting", () => {
    const { client, ws } = setup();
    client.connect();
    ws.last().fail();
    client.close();
    advance(60_000);
    expect(ws.sockets).toHaveLength(1);
    expect(client.status).toBe("offline");
    expect(() => client.connect()).toThrow(TypeError);
  });
});
