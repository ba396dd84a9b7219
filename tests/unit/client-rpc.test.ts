import { afterEach, describe, expect, jest, test } from "bun:test";
import { CourierError, ErrorCode } from "../../packages/client/src/index.ts";
import { advance, flush, setup } from "./client-fakes.ts";

afterEach(() => {
  jest.useRealTimers();
});

function live(options: Parameters<typeof setup>[0] = {}) {
  const ctx = setup(options);
  ctx.client.connect();
  ctx.ws.last().welcome();
  return ctx;
}

async function settled<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown; done: boolean }> {
  const out: { value?: T; error?: unknown; done: boolean } = { done: false };
  p.then(
    (value) => Object.assign(out, { value, done: true }),
    (error: unknown) => Object.assign(out, { error, done: true }),
  );
  await flush();
  return out;
}

describe("rpc", () => {
  test("resolves with the result's data, once", async () => {
    const { client, ws } = live();
    const p = client.rpc("agent.ask", { q: 1 });
    const [frame] = ws.last().ofType("rpc");
    expect(frame).toEqual({ type: "rpc", method: "agent.ask", data: { q: 1 }, id: frame!.id });
    ws.last().receive({ type: "result", id: frame!.id, data: { a: 2 } });
    expect(await p).toEqual({ a: 2 });
    ws.last().receive({ type: "result", id: frame!.id, data: "late duplicate" }); // no pending entry: ignored
    client.close();
  });

  test("rejects with a CourierError carrying the error frame's code and message", async () => {
    const { client, ws } = live();
    const p = client.rpc("agent.ask");
    const id = ws.last().ofType("rpc")[0]!.id;
    ws.last().receive({ type: "error", id, code: ErrorCode.RateLimited, message: "slow down" });
    const error = await p.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CourierError);
    expect(error).toMatchObject({ name: "CourierError", code: "rate_limited", message: "slow down", requestId: id });
    client.close();
  });

  test("times out at timeoutMs, not one tick before", async () => {
    const { client } = live();
    const out = await settled(client.rpc("agent.ask", null, { timeoutMs: 5000 }));
    advance(4999);
    await flush();
    expect(out.done).toBe(false);
    advance(1);
    await flush();
    expect(out.error).toMatchObject({ code: "timeout" });
    client.close();
  });

  test("defaults to a 15 s timeout", async () => {
    const { client } = live();
    const out = await settled(client.rpc("m"));
    advance(14_999);
    await flush();
    expect(out.done).toBe(false);
    advance(1);
    await flush();
    expect(out.error).toMatchObject({ code: "timeout" });
    client.close();
  });

  test("rejects pending requests on connection loss, and their timers are gone", async () => {
    const { client, ws } = live();
    ws.last().autoPong = false;
    const a = await settled(client.rpc("m"));
    const b = await settled(client.ping());
    ws.last().serverClose(1006);
    await flush();
    expect([a.error, b.error]).toMatchObject([{ code: "unavailable" }, { code: "unavailable" }]);
    expect(jest.getTimerCount()).toBe(1); // only the reconnect timer is left
    client.close();
  });

  test("rejects pending requests on close(); calling after close throws TypeError", async () => {
    const { client } = live();
    const a = await settled(client.rpc("m"));
    client.close();
    await flush();
    expect(a.error).toMatchObject({ code: "unavailable", message: "client closed" });
    expect(() => client.rpc("m")).toThrow(new TypeError("Cannot call rpc: client closed"));
    expect(() => client.ping()).toThrow(TypeError);
    expect(jest.getTimerCount()).toBe(0);
  });

  test("rejects at once when not live", async () => {
    const { client } = setup();
    client.connect();
    await expect(client.rpc("m")).rejects.toMatchObject({ code: "unavailable" });
    client.close();
  });

  test("ping resolves with the round-trip time from the injected clock", async () => {
    let now = 1000;
    const { client, ws } = live({ clock: { now: () => now } });
    ws.last().autoPong = false;
    const p = client.ping();
    now += 42;
    ws.last().receive({ type: "pong", id: ws.last().ofType("ping")[0]!.id, ts: 5 });
    expect(await p).toBe(42);
    client.close();
  });

  test("error frames without a pending id go to on('error')", () => {
    const { client, ws } = live();
    const errors: Error[] = [];
    client.on("error", (e) => errors.push(e));
    ws.last().receive({ type: "error", code: "bad_request", message: "bad frame" });
    ws.last().receive({ type: "error", id: 999, code: "not_found", message: "stale id" });
    expect(errors).toMatchObject([{ code: "bad_request" }, { code: "not_found", requestId: 999 }]);
    client.close();
  });

  test("a refused subscribe reaches on('error') with its channel", async () => {
    const { client, ws } = live();
    const errors: Error[] = [];
    client.on("error", (e) => errors.push(e));
    client.subscribe("user:someone-else", () => {});
    const sub = ws.last().ofType("subscribe")[0]!;
    ws.last().receive({ type: "error", id: sub.id, code: "forbidden", message: "not yours" });
    await flush();
    expect(errors).toMatchObject([{ code: "forbidden", channel: "user:someone-else" }]);
    client.close();
  });

  test("validates arguments", () => {
    const { client } = live();
    expect(() => client.rpc("")).toThrow(TypeError);
    expect(() => client.rpc("m", null, { timeoutMs: 0 })).toThrow(RangeError);
    client.close();
  });
});
