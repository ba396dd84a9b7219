/**
 * Observability end to end: real traffic (connect, refused connect, subscribe, publish, ack,
 * resume, rpc), then every instrument family must appear in `/metrics` with plausible values, and
 * every metric the Grafana dashboard queries must exist there (the dashboard cannot drift).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { METRIC_NAMES } from "../src/telemetry/index.ts";
import { dashboardQueries } from "../src/telemetry/dashboard-metrics.ts";
import { connectWelcomed, upgradeStatus } from "./helpers/client.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let exposition = "";

/** `name{labels} value` samples of the exposition. */
function samples(text: string): Array<{ name: string; labels: string; value: number }> {
  return text
    .split("\n")
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(l)!;
      return { name: m[1]!, labels: m[2] ?? "", value: Number(m[3]) };
    });
}
const value = (name: string, labelPart = "") =>
  samples(exposition)
    .filter((s) => s.name === name && s.labels.includes(labelPart))
    .reduce((sum, s) => sum + s.value, 0);

beforeAll(async () => {
  server = await startServer();
  // A refused connection.
  expect((await upgradeStatus(`${server.ws}?token=garbage`)).status).toBe(401);
  // Connect, subscribe, publish (critical and normal), ack.
  const c = await connectWelcomed(`${server.ws}?token=${await server.token("m1", { tier: "pro" })}`);
  await c.request({ type: "subscribe", channel: "user:m1" });
  await server.publish({ channel: "user:m1", event: "agent_started" });
  await server.publish({ channel: "user:m1", event: "note", data: { x: 1 } });
  const events = await c.collect((f) => f.type === "event", 2);
  c.send({ type: "ack", channel: "user:m1", offset: events.at(-1)!.offset });
  await c.request({ type: "rpc", method: "nothing.here", data: null });
  c.send("not json");
  await c.next((f) => f.type === "error" && f.message.includes("JSON"));
  c.close();
  await c.closed;
  // Resume: one hit (with replay), one miss.
  await server.publish({ channel: "user:m1", event: "after" });
  const resumed = await connectWelcomed(`${server.ws}?token=${await server.token("m1", { tier: "pro" })}&session=${c.welcome.session}`);
  await resumed.next((f) => f.type === "event" && f.event === "after");
  const missed = await connectWelcomed(`${server.ws}?token=${await server.token("m2")}&session=00000000-0000-4000-8000-000000000000`);
  exposition = await (await fetch(`${server.http}/metrics`)).text();
  resumed.close();
  missed.close();
});
afterAll(() => server.stop());

describe("/metrics after real traffic", () => {
  test("is Prometheus text", async () => {
    const res = await fetch(`${server.http}/metrics`);
    expect(res.headers.get("content-type")).toContain("text/plain");
    expect(exposition).toContain("# TYPE courier_publishes_total counter");
  });

  test("every instrument family appears", () => {
    const names = new Set(samples(exposition).map((s) => s.name.replace(/_(bucket|sum|count)$/, "")));
    for (const family of METRIC_NAMES) expect({ family, present: names.has(family) }).toEqual({ family, present: true });
  });

  test("values are plausible for the traffic", () => {
    expect(value("courier_connections", 'tier="pro"')).toBe(1);
    expect(value("courier_connection_attempts_total", 'result="accepted"')).toBe(3);
    expect(value("courier_connection_attempts_total", 'result="unauthorized"')).toBe(1);
    expect(value("courier_connect_duration_seconds_count")).toBe(3);
    expect(value("courier_publishes_total", 'class="critical"')).toBe(1);
    expect(value("courier_publishes_total", 'class="normal"')).toBe(2);
    expect(value("courier_publishes_total", 'kind="user"')).toBe(3);
    expect(value("courier_deliveries_total")).toBeGreaterThanOrEqual(2);
    expect(value("courier_fanout_latency_seconds_count")).toBeGreaterThanOrEqual(3);
    expect(value("courier_confirmations_total", 'result="confirmed"')).toBe(1);
    expect(value("courier_confirmation_seconds_count")).toBe(1);
    expect(value("courier_session_resumes_total", 'result="hit"')).toBe(1);
    expect(value("courier_session_resumes_total", 'result="miss"')).toBe(1);
    expect(value("courier_replayed_events_total")).toBeGreaterThanOrEqual(1);
    // The resume hit restored user:m1 with a replay: one recovery, timed.
    expect(value("courier_recovery_duration_seconds_count")).toBeGreaterThanOrEqual(1);
    expect(value("courier_process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(value("courier_rpc_duration_seconds_count", 'result="not_found"')).toBe(1);
    expect(value("courier_frames_rejected_total", 'reason="bad_json"')).toBe(1);
    expect(value("courier_closes_total")).toBeGreaterThanOrEqual(1);
    expect(value("courier_serializer_duration_seconds_count", 'path="fast"')).toBe(3);
    expect(value("courier_breaker_state", 'dependency="store"')).toBe(0);
    expect(value("courier_ready")).toBe(1);
    expect(value("courier_subscriptions", 'kind="user"')).toBe(1);
    expect(value("http_server_request_duration_seconds_count", 'http_route="/v1/publish"')).toBe(3);
    expect(value("http_server_request_duration_seconds_count", 'url_scheme="http"')).toBeGreaterThanOrEqual(4);
    expect(value("http_server_request_duration_seconds_count", 'http_route="/v1/ws"')).toBe(1);
  });
});

describe("the Grafana dashboard", () => {
  const missingIn = async (text: string) => {
    const dashboard = await Bun.file(join(import.meta.dir, "../grafana/dashboards/courier.json")).json();
    const live = new Set(samples(text).map((s) => s.name.replace(/_(bucket|sum|count)$/, "")));
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(15);
    return queries.flatMap((q) => q.metrics.filter((m) => !live.has(m)).map((m) => `${q.panel}: ${m}`));
  };

  test("every metric a panel queries exists in the live /metrics", async () => {
    expect(await missingIn(exposition)).toEqual([]);
  });

  test("every metric a panel queries exists in the first scrape of a fresh node, before any traffic", async () => {
    await using fresh = await startServer();
    expect(await missingIn(await (await fetch(`${fresh.http}/metrics`)).text())).toEqual([]);
  });
});
