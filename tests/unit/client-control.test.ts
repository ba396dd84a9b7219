/**
 * The SDK under the control API, on fakes: close 4403 (`POST /v1/disconnect`) is final and shows
 * in the status event; `unsubscribed` with `reason:"server"` (`POST /v1/unsubscribe`) drops the
 * channel, is observable, and is not undone by a reconnect or a resumed session.
 */
import { afterEach, describe, expect, jest, test } from "bun:test";
import { CloseCode, closeAdvice, type StatusChange } from "../../packages/client/src/index.ts";
import { advance, setup } from "./client-fakes.ts";

afterEach(() => {
  jest.useRealTimers();
});

describe("close 4403", () => {
  test("is named once, with no reconnect", () => {
    expect(CloseCode.Disconnected).toBe(4403);
    expect(closeAdvice[4403]).toEqual({ reconnect: false, refreshToken: false, reason: "disconnected" });
  });

  test("goes offline with reason disconnected and code 4403, and never dials again (nor polls)", () => {
    const statuses: StatusChange[] = [];
    const { client, ws, fetchCalls } = setup({ onStatus: (s) => statuses.push(s) });
    client.subscribe("user:u1", () => {});
    client.connect();
    ws.last().welcome();
    ws.last().serverClose(4403, "account suspended");
    expect(statuses.at(-1)).toEqual({ status: "offline", reason: "disconnected", code: 4403, polling: false });
    advance(10 * 60_000);
    expect(ws.sockets).toHaveLength(1);
    expect(fetchCalls).toEqual([]);
    expect(client.status).toBe("offline");
    client.close();
  });

  test("a 1012 close (for contrast) does reconnect", () => {
    const { client, ws } = setup();
    client.connect();
    ws.last().welcome();
    ws.last().serverClose(1012);
    advance(200);
    expect(ws.sockets).toHaveLength(2);
    client.close();
  });
});

describe("unsubscribed by the server", () => {
  function subscribed() {
    const harness = setup();
    const { client, ws } = harness;
    const got: number[] = [];
    const removed: Array<{ channel: string; reason: string }> = [];
    client.on("unsubscribed", (u) => removed.push(u));
    const off = client.subscribe("public:news", (e) => got.push(e.offset));
    client.subscribe("user:u1", () => {});
    client.connect();
    ws.last().welcome();
    for (const f of ws.last().ofType("subscribe")) ws.last().receive({ type: "subscribed", id: f.id, channel: f.channel, epoch: "e", offset: 0 });
    ws.last().receive({ type: "event", channel: "public:news", offset: 1, event: "x", data: null, ts: 0 });
    ws.last().receive({ type: "unsubscribed", channel: "public:news", reason: "server" });
    return { ...harness, got, removed, off };
  }

  test("emits unsubscribed, drops the channel's handlers, sends nothing back", () => {
    const { client, ws, got, removed, off } = subscribed();
    expect(removed).toEqual([{ channel: "public:news", reason: "server" }]);
    ws.last().receive({ type: "event", channel: "public:news", offset: 2, event: "x", data: null, ts: 0 });
    expect(got).toEqual([1]);
    off(); // the app's own unsubscribe afterwards is a no-op
    advance(1_000);
    expect(ws.last().ofType("unsubscribe")).toEqual([]);
    // No ack for a channel the server no longer holds (it would count as a protocol error).
    expect(ws.last().ofType("ack").filter((f) => f.channel === "public:news" && (f.offset as number) > 1)).toEqual([]);
    client.close();
  });

  test("is not subscribed again after a reconnect, resumed or not", () => {
    const { client, ws } = subscribed();
    ws.last().serverClose(1012);
    advance(200);
    ws.last().welcome({ resumed: true });
    expect(ws.last().ofType("subscribe")).toEqual([]);
    ws.last().serverClose(1012);
    advance(200);
    ws.last().welcome({ resumed: false });
    expect(ws.last().ofType("subscribe").map((f) => f.channel)).toEqual(["user:u1"]);
    client.close();
  });

  test("the app may subscribe again on its own, from the channel's last position", () => {
    const { client, ws } = subscribed();
    const again: number[] = [];
    client.subscribe("public:news", (e) => again.push(e.offset));
    expect(ws.last().ofType("subscribe").at(-1)).toMatchObject({ channel: "public:news", since: { epoch: "e", offset: 1 } });
    client.close();
  });

  test("an unsubscribed answering the client's own request emits nothing", () => {
    const { client, ws } = setup();
    const removed: unknown[] = [];
    client.on("unsubscribed", (u) => removed.push(u));
    const off = client.subscribe("public:news", () => {});
    client.connect();
    ws.last().welcome();
    const sub = ws.last().ofType("subscribe")[0]!;
    ws.last().receive({ type: "subscribed", id: sub.id, channel: "public:news", epoch: "e", offset: 0 });
    off();
    const unsub = ws.last().ofType("unsubscribe")[0]!;
    ws.last().receive({ type: "unsubscribed", id: unsub.id, channel: "public:news" });
    expect(removed).toEqual([]);
    client.close();
  });
});
