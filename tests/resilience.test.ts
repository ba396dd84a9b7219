/** Readiness under a hanging dependency, the serializer guard, and graceful drain (PROTOCOL.md §1–§2). */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signToken } from "../src/auth/tokens.ts";
import { CloseCode } from "../src/protocol/codes.ts";
import { connectWelcomed, upgradeStatus, type TestClient } from "./helpers/client.ts";
import { spawnCourier, type CourierProcess } from "./helpers/process.ts";
import { API_KEY, JWT_SECRET, startServer } from "./helpers/server.ts";

describe("readiness", () => {
  test("a hanging required check: /ready answers within the budget with a timeout, upgrades get 503", async () => {
    const budgetMs = 300;
    const server = await startServer({
      config: { resilience: { readinessBudgetMs: budgetMs } },
      extensions: () => [{ checks: [{ name: "agent", timeoutMs: 10_000, required: true, run: () => new Promise<void>(() => {}) }] }],
    });
    try {
      const started = performance.now();
      const res = await fetch(`${server.http}/ready`);
      const elapsed = performance.now() - started;
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBeTruthy();
      const body = await res.json();
      expect(body.checks.agent).toMatchObject({ ok: false, error: "timeout", required: true });
      expect(body.checks.store).toMatchObject({ ok: true });
      expect(elapsed).toBeLessThan(budgetMs + 1000);
      const upgrade = await upgradeStatus(`${server.ws}?token=${await server.token("u")}`);
      expect(upgrade.status).toBe(503);
      expect(upgrade.headers.get("retry-after")).toBeTruthy();
      // Publishing still works: a failing dependency degrades one feature, not the server.
      expect((await server.publish({ channel: "public:still-up", event: "e" })).status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  test("a failing optional check is degraded: still ready, says so", async () => {
    const server = await startServer({
      extensions: () => [{ checks: [{ name: "otlp", timeoutMs: 100, required: false, run: () => Promise.reject(new Error("collector down")) }] }],
    });
    try {
      const res = await fetch(`${server.http}/ready`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: "degraded", checks: { otlp: { ok: false, error: "collector down" } } });
      const c = await connectWelcomed(`${server.ws}?token=${await server.token("u")}`);
      c.close();
    } finally {
      await server.stop();
    }
  });
});

describe("serializer guard", () => {
  test("a pathological payload trips the guard (503, counted) while the event loop stays responsive", async () => {
    const server = await startServer({
      config: { limits: { maxPublishBodyBytes: 64 * 1024 * 1024 }, delivery: { slowPathBytes: 64 * 1024, serializeTimeoutMs: 50 } },
    });
    try {
      const c = await connectWelcomed(`${server.ws}?token=${await server.token("u")}`);
      await c.request({ type: "subscribe", channel: "public:guarded" });
      // ~20 MB of legal JSON: far more than 50 ms of parsing in the worker.
      const huge = `{"channel":"public:guarded","event":"big","data":[${Array.from({ length: 400_000 }, (_, i) => `{"i":${i},"s":"abcdefghijklmnopqrstuvwxyz","n":[1,2,3]}`).join(",")}]}`;
      const slow = fetch(`${server.http}/v1/publish`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: huge });
      // While the worker chews, the server keeps answering: a round trip and a normal publish.
      const normal = await server.publish({ channel: "public:guarded", event: "small", data: 1 });
      expect(normal.status).toBe(200);
      await c.next((f) => f.type === "event" && f.event === "small");
      expect(await c.request({ type: "ping" })).toMatchObject({ type: "pong" });
      const res = await slow;
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBeTruthy();
      expect(await res.json()).toMatchObject({ error: "unavailable" });
      const metrics = await (await fetch(`${server.http}/metrics`)).text();
      expect(metrics).toMatch(/courier_serializer_timeouts_total\S* 1\b/);
      // Nothing was published for the refused body.
      await c.request({ type: "ping" });
      expect(c.frames.filter((f) => f.event === "big")).toEqual([]);
      c.close();
    } finally {
      await server.stop();
    }
  }, 30_000);

  test("a large but ordinary body takes the slow path and publishes once", async () => {
    const server = await startServer({ config: { delivery: { slowPathBytes: 1024 } } });
    try {
      const data = { rows: Array.from({ length: 500 }, (_, i) => ({ i, name: `row-${i}` })) };
      const res = await server.publish({ channel: "public:large", event: "table", data });
      expect(res.status).toBe(200);
      const page = await (await fetch(`${server.http}/v1/history?channel=public:large&token=${await server.token("u")}`)).json();
      expect(page.events[0].data).toEqual(data);
      expect(await (await fetch(`${server.http}/metrics`)).text()).toContain('courier_serializer_duration_seconds_count{path="slow"} 1');
    } finally {
      await server.stop();
    }
  });
});

describe("graceful drain", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "courier-drain-"));
  const children: CourierProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  test("SIGTERM with 200 clients: every client gets reconnect with spread hints, close 1012, exit 0, nothing accepted is lost", async () => {
    const node = await spawnCourier({ COURIER_DATA_DIR: dataDir });
    children.push(node);
    const users = Array.from({ length: 100 }, (_, i) => `drain-${i}`);
    const tokens = await Promise.all(users.map((u) => signToken(JWT_SECRET, { sub: u }, 600)));
    const clients: TestClient[] = [];
    for (let i = 0; i < 200; i++) clients.push(await connectWelcomed(`${node.ws}?token=${tokens[i % users.length]}`));
    await Promise.all(clients.slice(0, 100).map((c, i) => c.request({ type: "subscribe", channel: `user:${users[i]}` })));

    const accepted: Array<{ channel: string; offset: number }> = [];
    let publishing = true;
    const publisher = (async () => {
      for (let i = 0; publishing && i < 5000; i++) {
        const channel = `user:${users[i % users.length]}`;
        const res = await fetch(`${node.http}/v1/publish`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ channel, event: "agent_thinking", data: i }) }).catch(() => null);
        if (!res) break;
        if (res.status === 200) accepted.push({ channel, offset: (await res.json()).offset });
      }
    })();
    await clients[0]!.next((f) => f.type === "event");
    node.kill("SIGTERM");
    const closes = await Promise.all(clients.map((c) => c.closed));
    publishing = false;
    await publisher;
    expect(await node.exited).toBe(0);

    expect(closes.every((c) => c.code === CloseCode.ServiceRestart)).toBe(true);
    const hints = clients.map((c) => c.frames.find((f) => f.type === "reconnect"));
    expect(hints.every((h) => h && h.reason && typeof h.after === "number")).toBe(true);
    const afters = hints.map((h) => h!.after as number).sort((a, b) => a - b);
    expect(new Set(afters).size).toBeGreaterThan(150); // spread, not one instant
    expect(afters.at(-1)!).toBeLessThanOrEqual(1000); // within test.json's drainSpreadMs
    expect(accepted.length).toBeGreaterThan(0);

    // Every accepted event survived the drain.
    const again = await spawnCourier({ COURIER_DATA_DIR: dataDir });
    children.push(again);
    const byChannel = new Map<string, number[]>();
    for (const a of accepted) byChannel.set(a.channel, [...(byChannel.get(a.channel) ?? []), a.offset]);
    for (const [channel, offsets] of byChannel) {
      const user = channel.slice("user:".length);
      const page = await (await fetch(`${again.http}/v1/history?channel=${channel}&limit=10000&token=${tokens[users.indexOf(user)]}`)).json();
      const stored = new Set(page.events.map((e: any) => e.offset));
      for (const o of offsets) expect(stored.has(o)).toBe(true);
    }
    again.kill("SIGTERM");
    expect(await again.exited).toBe(0);
  }, 60_000);
});
