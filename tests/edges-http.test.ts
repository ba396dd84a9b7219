/**
 * The HTTP edges of PROTOCOL §1–§2 v1.1 against the real server: CORS (allowlist, empty
 * allowlist, a foreign origin), 405 and 413 as JSON (over our limit and over Bun's own cap, with
 * Content-Length and chunked), `maxEventFrameBytes` on publish and batch, `/version`, and
 * `/metrics` on its own port.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import pkg from "../package.json" with { type: "json" };
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectWelcomed } from "./helpers/client.ts";
import { freePort, spawnCourier } from "./helpers/process.ts";
import { API_KEY, startServer, type TestServer } from "./helpers/server.ts";

const APP = "https://app.example.com";
const EVIL = "https://evil.example";

let open: TestServer;
let guarded: TestServer;
beforeAll(async () => {
  open = await startServer();
  guarded = await startServer({ config: { server: { allowedOrigins: [APP] }, limits: { maxEventFrameBytes: 1000 } } });
});
afterAll(async () => {
  await open.stop();
  await guarded.stop();
});

const preflight = (base: string, path: string, origin: string, method = "GET") =>
  fetch(`${base}${path}`, { method: "OPTIONS", headers: { origin, "access-control-request-method": method, "access-control-request-headers": "authorization" } });

/** A body streamed in chunks, so it travels without Content-Length. */
function chunked(total: number, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const n = Math.min(chunk, total - sent);
      sent += n;
      controller.enqueue(new Uint8Array(n).fill(0x20));
    },
  });
}

describe("CORS", () => {
  test("an allowed origin: preflights 204 naming Authorization, answers (errors too) carry the origin, Vary and Retry-After exposed", async () => {
    for (const [path, method] of [["/v1/history", "GET"], ["/v1/ws/check", "GET"], ["/v1/publish", "POST"], ["/v1/ws", "GET"], ["/health", "GET"]] as const) {
      const res = await preflight(guarded.http, path, APP, method);
      expect(res.status).toBe(204);
      const names = ["access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers", "access-control-max-age", "vary"];
      expect(Object.fromEntries(names.map((n) => [n, res.headers.get(n)]))).toEqual({
        "access-control-allow-origin": APP,
        "access-control-allow-methods": `${method}, OPTIONS`,
        "access-control-allow-headers": "Authorization, Content-Type, Idempotency-Key",
        "access-control-max-age": "600",
        vary: "Origin",
      });
    }
    const token = await guarded.token("cors-user");
    const ok = await fetch(`${guarded.http}/v1/history?channel=user:cors-user`, { headers: { origin: APP, authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe(APP);
    expect(ok.headers.get("access-control-expose-headers")).toBe("Retry-After");
    expect(ok.headers.get("vary")).toBe("Origin");
    const refused = await fetch(`${guarded.http}/v1/history?channel=user:cors-user`, { headers: { origin: APP } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe(APP);
  });

  test("a disallowed origin gets no CORS headers (preflight and answer), and its upgrade is 403", async () => {
    const res = await preflight(guarded.http, "/v1/history", EVIL);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("access-control-allow-headers")).toBeNull();
    expect(res.headers.get("vary")).toBe("Origin");
    const answer = await fetch(`${guarded.http}/health`, { headers: { origin: EVIL } });
    expect(answer.status).toBe(200);
    expect(answer.headers.get("access-control-allow-origin")).toBeNull();
    const upgrade = await fetch(`${guarded.http}/v1/ws?token=${await guarded.token("u")}`, {
      headers: { origin: EVIL, connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
    });
    expect(upgrade.status).toBe(403);
    expect(await upgrade.json()).toEqual({ error: "forbidden", message: "origin not allowed", reason: "forbidden_origin" });
  });

  test("/v1/ws/check alone answers every origin, so a refused page can read its forbidden_origin", async () => {
    const res = await preflight(guarded.http, "/v1/ws/check", EVIL);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(EVIL);
    expect(res.headers.get("access-control-allow-headers")).toBe("Authorization, Content-Type, Idempotency-Key");
    const answer = await fetch(`${guarded.http}/v1/ws/check`, { headers: { origin: EVIL, authorization: `Bearer ${await guarded.token("u")}` } });
    expect(answer.status).toBe(403);
    expect(answer.headers.get("access-control-allow-origin")).toBe(EVIL);
    expect(answer.headers.get("vary")).toBe("Origin");
    expect((await answer.json()).reason).toBe("forbidden_origin");
  });

  test("an empty allowlist: any origin, answered `*` (the same bytes for every origin, so no Vary)", async () => {
    const res = await preflight(open.http, "/v1/history", EVIL);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-headers")).toBe("Authorization, Content-Type, Idempotency-Key");
    expect(res.headers.get("vary")).toBeNull();
    const answer = await fetch(`${open.http}/version`, { headers: { origin: EVIL } });
    expect(answer.headers.get("access-control-allow-origin")).toBe("*");
  });

  test("OPTIONS on an unknown path is 404 JSON", async () => {
    const res = await preflight(open.http, "/nope", EVIL);
    expect(res.status).toBe(404);
    expect((await res.json()).error).toBe("not_found");
  });
});

describe("every error is JSON", () => {
  test("a known route with another method is 405 method_not_allowed with Allow", async () => {
    for (const [method, path, allow] of [["GET", "/v1/publish", "POST"], ["POST", "/v1/history", "GET"], ["POST", "/v1/ws", "GET"], ["DELETE", "/v1/ws/check", "GET"], ["PUT", "/version", "GET"]] as const) {
      const res = await fetch(`${open.http}${path}`, { method });
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe(allow);
      expect(await res.json()).toEqual({ error: "method_not_allowed", message: `${method} is not allowed here; use ${allow}` });
    }
  });

  const publish = (body: BodyInit, headers: Record<string, string> = {}) =>
    fetch(`${open.http}/v1/publish`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}`, ...headers }, body, duplex: "half" } as RequestInit);

  test("bodies over our limit and over Bun's caps (ours was 8 MiB, Bun's default 128 MiB) are 413 JSON, with Content-Length and chunked", async () => {
    const limit = open.config.limits.maxPublishBodyBytes;
    const message = `body larger than ${limit} bytes`;
    for (const [declaredSize, streamedSize] of [[limit + 1, limit + 1], [16 * 1024 * 1024, 200 * 1024 * 1024]] as const) {
      const declared = await publish(new Uint8Array(declaredSize).fill(0x20));
      expect(declared.status).toBe(413);
      expect(await declared.json()).toEqual({ error: "limit_exceeded", message });
      const streamed = await publish(chunked(streamedSize));
      expect(streamed.status).toBe(413);
      expect(await streamed.json()).toEqual({ error: "limit_exceeded", message });
    }
    expect(open.logs.filter((l) => l.includes('"level":"error"'))).toEqual([]);
    expect((await fetch(`${open.http}/health`)).status).toBe(200);
  }, 60_000);

  test("a chunked body within the limit is read whole", async () => {
    const body = JSON.stringify({ channel: "public:chunked", event: "x", data: "y".repeat(300_000) });
    const bytes = new TextEncoder().encode(body);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 10_000) controller.enqueue(bytes.subarray(i, i + 10_000));
        controller.close();
      },
    });
    const res = await publish(stream);
    expect(res.status).toBe(200);
  });
});

describe("maxEventFrameBytes", () => {
  const post = (path: string, body: unknown) =>
    fetch(`${guarded.http}${path}`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify(body) });
  const event = (channel: string, data: string) => ({ channel, event: "big", data });

  test("the largest accepted event's frame is within the limit and close to it; one byte more is 413", async () => {
    const limit = guarded.config.limits.maxEventFrameBytes;
    let lo = 0;
    let hi = limit;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      const res = await post("/v1/publish", event("public:edge", "x".repeat(mid)));
      if (res.status === 200) lo = mid;
      else {
        expect(res.status).toBe(413);
        hi = mid;
      }
    }
    const over = await post("/v1/publish", event("public:edge", "x".repeat(hi)));
    expect(over.status).toBe(413);
    expect(await over.json()).toMatchObject({ error: "limit_exceeded", limit });

    const client = await connectWelcomed(`${guarded.ws}?token=${await guarded.token("frames")}`);
    await client.request({ type: "subscribe", channel: "public:edge" });
    expect((await post("/v1/publish", event("public:edge", "x".repeat(lo)))).status).toBe(200);
    const frame = await client.next((f) => f.type === "event" && f.channel === "public:edge");
    const bytes = Buffer.byteLength(JSON.stringify(frame));
    expect(bytes).toBeLessThanOrEqual(limit);
    // Only the offset's and ts's digits are reserved: a frame at the largest offset would be exactly the limit.
    expect(limit - bytes).toBeLessThanOrEqual(16);
    client.close();
  });

  test("bytes, not characters: two-byte UTF-8 counts twice", async () => {
    const half = guarded.config.limits.maxEventFrameBytes / 2;
    expect((await post("/v1/publish", event("public:utf8", "e".repeat(half)))).status).toBe(200);
    expect((await post("/v1/publish", event("public:utf8", "é".repeat(half)))).status).toBe(413);
  });

  test("a batch is held item by item: the oversized item is named and nothing is stored", async () => {
    const res = await post("/v1/publish/batch", { items: [event("public:batch", "small"), event("public:batch", "x".repeat(2000))] });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "limit_exceeded", index: 1, message: expect.stringMatching(/^item 1: the event frame would be \d+ bytes/) });
    const token = await guarded.token("reader");
    const history = await (await fetch(`${guarded.http}/v1/history?channel=public:batch`, { headers: { authorization: `Bearer ${token}` } })).json();
    expect(history.events).toEqual([]);
  });

  test("with the defaults, the issue's 1,048,566-byte publish (a 1,048,611-byte frame) is 413", async () => {
    const body = JSON.stringify({ channel: "public:poison", event: "big", data: "" });
    const data = "x".repeat(1_048_566 - body.length);
    const res = await open.publish({ channel: "public:poison", event: "big", data });
    expect(res.status).toBe(413);
    expect((await res.json()).message).toContain("limits.maxEventFrameBytes");
  });
});

describe("operations", () => {
  test("GET /version names the package version, the Bun version and the commit when known", async () => {
    const res = await fetch(`${open.http}/version`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ version: pkg.version, bun: Bun.version });
    expect(Object.keys(body).sort()).toEqual(body.commit === undefined ? ["bun", "version"] : ["bun", "commit", "version"]);
    if (body.commit !== undefined) expect(body.commit).toMatch(/^[0-9a-f]{7,40}$/);
  });

  test("with metricsPort, /metrics is served there only and stops with the server", async () => {
    const split = await startServer({ config: { server: { metricsPort: 0 } } });
    const metricsUrl = split.courier.metricsUrl!;
    try {
      expect(metricsUrl.port).not.toBe(String(split.courier.server.port));
      const res = await fetch(metricsUrl);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("courier_build_info");
      const main = await fetch(`${split.http}/metrics`);
      expect(main.status).toBe(404);
      expect((await main.json()).error).toBe("not_found");
      const other = await fetch(new URL("/health", metricsUrl));
      expect(other.status).toBe(404);
      expect((await fetch(`${open.http}/metrics`)).status).toBe(200); // unset: on the main port as before
    } finally {
      await split.stop();
    }
    expect(await fetch(metricsUrl).then(() => "answered", () => "refused")).toBe("refused");
  });
});

describe("answers match the /openapi.json schemas", () => {
  test("/version, /v1/ws/check and the new error bodies parse strictly", async () => {
    const { VersionAnswerSchema, WsCheckAnswerSchema, ErrorBodySchema } = await import("../src/protocol/http-bodies.ts");
    VersionAnswerSchema.strict().parse(await (await fetch(`${open.http}/version`)).json());
    const token = await open.token("schema-user", { tier: "enterprise" });
    WsCheckAnswerSchema.strict().parse(await (await fetch(`${open.http}/v1/ws/check`, { headers: { authorization: `Bearer ${token}` } })).json());
    ErrorBodySchema.strict().parse(await (await fetch(`${open.http}/v1/ws/check?token=nope`)).json());
    ErrorBodySchema.strict().parse(await (await fetch(`${open.http}/v1/publish`)).json());
    const frame = await fetch(`${guarded.http}/v1/publish/batch`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ items: [{ channel: "public:s", event: "e", data: "x".repeat(2000) }] }) });
    ErrorBodySchema.strict().parse(await frame.json());
  });
});

describe("the real process, configured by environment", () => {
  test("COURIER_METRICS_PORT and COURIER_ALLOWED_ORIGINS: metrics apart, CORS for the listed origin, both ports closed after SIGTERM", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "courier-edges-"));
    const metricsPort = freePort();
    const node = await spawnCourier({ COURIER_DATA_DIR: dataDir, COURIER_METRICS_PORT: String(metricsPort), COURIER_ALLOWED_ORIGINS: `${APP},https://admin.example.com` });
    try {
      const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain("courier_build_info");
      expect((await fetch(`${node.http}/metrics`)).status).toBe(404);
      const res = await preflight(node.http, "/v1/history", "https://admin.example.com");
      expect(res.headers.get("access-control-allow-origin")).toBe("https://admin.example.com");
      expect((await preflight(node.http, "/v1/history", EVIL)).headers.get("access-control-allow-origin")).toBeNull();
      node.kill("SIGTERM");
      expect(await node.exited).toBe(0);
      expect(await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(() => "answered", () => "refused")).toBe("refused");
    } finally {
      node.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 30_000);
});
