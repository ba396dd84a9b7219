import { afterEach, describe, expect, jest, test } from "bun:test";
import { CourierClient, httpBaseFromWsUrl, memoryOffsetStore, type Recovery } from "../../packages/client/src/index.ts";
import { advance, fakeFetch, fakeWebSocket, flush, setup } from "./client-fakes.ts";

afterEach(() => {
  jest.useRealTimers();
});

/** Fails `n` attempts in a row, following the backoff schedule. */
function failAttempts(ws: ReturnType<typeof fakeWebSocket>, n: number) {
  const delays = [100, 500, 1000, 2000, 4000, 5000];
  for (let i = 0; i < n; i++) {
    ws.last().fail();
    if (i < n - 1) advance(delays[Math.min(i, delays.length - 1)]!);
  }
}

describe("httpBaseFromWsUrl", () => {
  test("maps ws to http, wss to https, and drops /v1/ws", () => {
    expect(httpBaseFromWsUrl("wss://rt.example.com/v1/ws")).toBe("https://rt.example.com");
    expect(httpBaseFromWsUrl("ws://localhost:8080/v1/ws?token=x")).toBe("http://localhost:8080");
    expect(httpBaseFromWsUrl("wss://example.com/courier/v1/ws")).toBe("https://example.com/courier");
  });
});

describe("polling fallback", () => {
  test("starts after pollAfterFailures consecutive failures, with the token as Bearer", async () => {
    const store = memoryOffsetStore();
    store.set("user:u1", { epoch: "e1", offset: 7 });
    const { client, ws, fetchCalls } = setup({ store, token: "tok" });
    client.subscribe("user:u1", () => {});
    client.connect();
    failAttempts(ws, 2);
    await flush();
    expect(fetchCalls).toHaveLength(0);
    expect(client.polling).toBe(false);
    advance(500);
    ws.last().fail();
    await flush();
    expect(client.polling).toBe(true);
    expect(fetchCalls).toHaveLength(1);
    const { url, headers } = fetchCalls[0]!;
    expect(`${url.origin}${url.pathname}`).toBe("http://courier.test/v1/history");
    expect(Object.fromEntries(url.searchParams)).toEqual({ channel: "user:u1", since: "7", epoch: "e1", limit: "100" });
    expect(headers).toEqual({ Authorization: "Bearer tok" });
    client.close();
  });

  test("the interval starts at 2 s and doubles up to 60 s while down", async () => {
    const { client, ws, fetchCalls } = setup({ pollAfterFailures: 1, backoff: { maxDelayMs: 1e9, stepsMs: [1e9] } });
    client.subscribe("user:u1", () => {});
    client.connect();
    ws.last().fail();
    await flush();
    expect(fetchCalls).toHaveLength(1);
    for (const interval of [2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]) {
      const before = fetchCalls.length;
      advance(interval - 1);
      await flush();
      expect(fetchCalls).toHaveLength(before);
      advance(1);
      await flush();
      expect(fetchCalls).toHaveLength(before + 1);
    }
    client.close();
  });

  test("stops the moment the WebSocket is live again", async () => {
    const { client, ws, fetchCalls } = setup({ pollAfterFailures: 1 });
    client.subscribe("user:u1", () => {});
    client.connect();
    ws.last().fail();
    await flush();
    expect(client.polling).toBe(true);
    advance(100);
    ws.last().welcome();
    expect(client.polling).toBe(false);
    expect(client.status).toBe("live");
    const polled = fetchCalls.length;
    advance(600_000);
    await flush();
    expect(fetchCalls).toHaveLength(polled);
    client.close();
  });

  test("delivers polled events through the same dedupe and advances since", async () => {
    jest.useFakeTimers();
    const ws = fakeWebSocket();
    const pages = [
      { channel: "user:u1", epoch: "e1", offset: 3, recovered: true, events: [1, 2, 3].map((o) => ({ type: "event", channel: "user:u1", offset: o, event: "x", data: o, ts: 0 })) },
      { channel: "user:u1", epoch: "e1", offset: 4, recovered: true, events: [3, 4].map((o) => ({ type: "event", channel: "user:u1", offset: o, event: "x", data: o, ts: 0 })) },
    ];
    const { fetch, calls } = fakeFetch(() => ({ body: pages.shift() }));
    const store = memoryOffsetStore();
    store.set("user:u1", { epoch: "e1", offset: 0 });
    const client = new CourierClient({ url: "wss://rt.test/v1/ws", token: "t", WebSocket: ws.WebSocket, fetch, store, pollAfterFailures: 1, random: () => 0.5 });
    const got: number[] = [];
    client.subscribe("user:u1", (e) => got.push(e.offset));
    client.connect();
    ws.last().fail();
    await flush();
    advance(2000);
    await flush();
    expect(got).toEqual([1, 2, 3, 4]);
    expect(calls[1]!.url.searchParams.get("since")).toBe("3");
    expect(calls[0]!.url.origin).toBe("https://rt.test");
    expect(store.get("user:u1")).toEqual({ epoch: "e1", offset: 4 });
    client.close();
  });

  test("without a position, the first poll only finds the head (like a subscribe without since)", async () => {
    jest.useFakeTimers();
    const ws = fakeWebSocket();
    const events = [5, 6].map((o) => ({ type: "event", channel: "user:u1", offset: o, event: "x", data: o, ts: 0 }));
    const { fetch, calls } = fakeFetch(() => ({ body: { channel: "user:u1", epoch: "e1", offset: 6, recovered: true, events } }));
    const client = new CourierClient({ url: "ws://h/v1/ws", token: "t", WebSocket: ws.WebSocket, fetch, pollAfterFailures: 1 });
    const got: number[] = [];
    client.subscribe("user:u1", (e) => got.push(e.offset));
    client.connect();
    ws.last().fail();
    await flush();
    expect(calls[0]!.url.searchParams.has("since")).toBe(false);
    expect(got).toEqual([]);
    advance(2000);
    await flush();
    expect(calls[1]!.url.searchParams.get("since")).toBe("6");
    client.close();
  });

  test.each([
    ["another epoch: epoch_changed, tracking restarts at its head", { epoch: "e2", offset: 0, recovered: false }, "epoch_changed", { epoch: "e2", offset: 0 }],
    ["same epoch, nothing said: history_trimmed", { epoch: "e1", offset: 20, recovered: false }, "history_trimmed", { epoch: "e1", offset: 9 }],
    ["an offset past the head: offset_ahead", { epoch: "e1", offset: 4, recovered: false }, "offset_ahead", { epoch: "e1", offset: 4 }],
    ["the server's own reason wins", { epoch: "e1", offset: 20, recovered: false, reason: "epoch_changed" }, "epoch_changed", { epoch: "e1", offset: 9 }],
  ] as const)("surfaces a poll's recovered:false with the §5 verdict: %s", async (_name, page, reason, position) => {
    jest.useFakeTimers();
    const ws = fakeWebSocket();
    const { fetch } = fakeFetch(() => ({ body: { channel: "user:u1", events: [], ...page } }));
    const store = memoryOffsetStore();
    store.set("user:u1", { epoch: "e1", offset: 9 });
    const recoveries: Recovery[] = [];
    const client = new CourierClient({ url: "ws://h/v1/ws", token: "t", WebSocket: ws.WebSocket, fetch, store, pollAfterFailures: 1, onRecovery: (r) => recoveries.push(r) });
    client.subscribe("user:u1", () => {});
    client.connect();
    ws.last().fail();
    await flush();
    expect(recoveries).toEqual([{ channel: "user:u1", recovered: false, reason }]);
    expect(store.get("user:u1")).toEqual(position);
    client.close();
  });

  test("a Retry-After answer pushes the next poll later", async () => {
    jest.useFakeTimers();
    const ws = fakeWebSocket();
    const { fetch, calls } = fakeFetch(() => ({ status: 503, headers: { "Retry-After": "10" }, body: { error: "unavailable" } }));
    const client = new CourierClient({ url: "ws://h/v1/ws", token: "t", WebSocket: ws.WebSocket, fetch, pollAfterFailures: 1, backoff: { stepsMs: [1e9], maxDelayMs: 1e9 } });
    client.on("error", () => {});
    client.subscribe("user:u1", () => {});
    client.connect();
    ws.last().fail();
    await flush();
    advance(9999);
    await flush();
    expect(calls).toHaveLength(1);
    advance(1);
    await flush();
    expect(calls).toHaveLength(2);
    client.close();
  });

  test("polls from the start when there is no WebSocket at all", async () => {
    jest.useFakeTimers();
    const { fetch, calls } = fakeFetch();
    // Bun has a global WebSocket: simulate an environment without one.
    const original = globalThis.WebSocket;
    (globalThis as { WebSocket?: unknown }).WebSocket = undefined;
    try {
      const bare = new CourierClient({ url: "ws://h/v1/ws", token: "t", fetch });
      bare.subscribe("user:u1", () => {});
      bare.connect();
      await flush();
      expect(calls).toHaveLength(1);
      expect(bare.status).toBe("connecting");
      expect(bare.polling).toBe(true);
      bare.close();
    } finally {
      globalThis.WebSocket = original;
    }
  });
});
