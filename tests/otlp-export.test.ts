import { afterEach, describe, expect, test } from "bun:test";
import { createTelemetry, type Telemetry } from "../src/telemetry/index.ts";
import { startOtlpReceiver as startReceiver } from "./helpers/otlp-receiver.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function record(telemetry: Telemetry) {
  telemetry.metrics.publishes.add(3, { kind: "job", class: "critical" });
  telemetry.metrics.fanoutLatency.record(0.0003);
  telemetry.metrics.httpRequestDuration.record(0.002, {
    "http.request.method": "GET",
    "http.route": "/health",
    "http.response.status_code": 200,
  });
  telemetry.observe({ ready: () => ({ status: "ready", value: 1 }), jobsInFlight: () => 2 });
}

describe("OTLP/HTTP export", () => {
  test("flush posts every recorded metric to <endpoint>/v1/metrics", async () => {
    const receiver = startReceiver();
    cleanups.push(() => receiver.server.stop(true));
    // An interval far longer than the test: only the explicit flush can send.
    const telemetry = createTelemetry({ enabled: true, nodeId: "otlp-node", otlpEndpoint: `${receiver.endpoint}/`, otlpIntervalMs: 600_000 });
    cleanups.push(() => telemetry.shutdown());
    record(telemetry);

    const arrived = receiver.nextRequest();
    await telemetry.flush();
    const request = await arrived;

    expect(request.path).toBe("/v1/metrics");
    expect(request.contentType).toContain("application/json");
    const body = JSON.parse(request.body);
    const names = body.resourceMetrics.flatMap((rm: any) => rm.scopeMetrics.flatMap((sm: any) => sm.metrics.map((m: any) => m.name)));
    expect(names).toEqual(
      expect.arrayContaining([
        "courier_publishes_total",
        "courier_fanout_latency_seconds",
        "http.server.request.duration",
        "courier_ready",
        "courier_jobs_in_flight",
      ]),
    );
    expect(request.body).toContain('"otlp-node"');
  });

  test("the periodic reader pushes by itself on its interval", async () => {
    const receiver = startReceiver();
    cleanups.push(() => receiver.server.stop(true));
    const arrived = receiver.nextRequest();
    const telemetry = createTelemetry({ enabled: true, nodeId: "n", otlpEndpoint: receiver.endpoint, otlpIntervalMs: 50 });
    cleanups.push(() => telemetry.shutdown());
    record(telemetry);

    const request = await arrived;
    expect(request.path).toBe("/v1/metrics");
    expect(request.body).toContain("courier_publishes_total");
  });

  test("shutdown sends a final export", async () => {
    const receiver = startReceiver();
    cleanups.push(() => receiver.server.stop(true));
    const telemetry = createTelemetry({ enabled: true, nodeId: "n", otlpEndpoint: receiver.endpoint, otlpIntervalMs: 600_000 });
    record(telemetry);
    const arrived = receiver.nextRequest();
    await telemetry.shutdown();
    expect((await arrived).body).toContain("courier_fanout_latency_seconds");
  });
});
