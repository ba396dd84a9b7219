import { describe, expect, test } from "bun:test";
import { createTelemetry, METRIC_NAMES, type GaugeSource, type Telemetry } from "../../src/telemetry/index.ts";

const fullSource: GaugeSource = {
  connectionsByTier: () => ({ starter: 3, pro: 1, enterprise: 0 }),
  subscriptionsByKind: () => ({ job: 2, user: 4 }),
  breakerStates: () => ({ agent: 2, redis: 0 }),
  ready: () => ({ status: "ready", value: 1 }),
  jobsInFlight: () => 5,
};

function recordOneEach(telemetry: Telemetry) {
  const m = telemetry.metrics;
  m.connectionAttempts.add(1, { result: "accepted" });
  m.connectDuration.record(0.0004);
  m.publishes.add(1, { kind: "job", class: "critical" });
  m.deliveries.add(1000);
  m.fanoutLatency.record(0.0002);
  m.confirmations.add(1, { result: "confirmed" });
  m.confirmationTime.record(0.012);
  m.sessionResumes.add(1, { result: "hit" });
  m.bufferEvents.add(1, { outcome: "critical_kept" });
  m.backpressureCloses.add(1);
  m.serializerDuration.record(0.00001, { path: "fast" });
  m.serializerTimeouts.add(1);
  m.rpcDuration.record(0.3, { method: "run", result: "ok" });
  m.httpRequestDuration.record(0.002, { "http.request.method": "POST", "http.route": "/v1/publish", "http.response.status_code": 200 });
  m.framesRejected.add(1, { reason: "bad_request" });
  m.closes.add(1, { code: 4409 });
  m.replayedEvents.add(7);
  m.agentRuns.add(1, { result: "completed" });
  m.streamsStarted.add(1);
  m.streamsEnded.add(1, { status: "complete" });
  m.streamAppends.add(3);
  m.streamSnapshots.add(1);
  m.streamSnapshotChars.add(42);
  telemetry.observe(fullSource);
}

/** Family names from `# TYPE <name> <type>` lines. */
function families(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

describe("createTelemetry", () => {
  test("render shows every family of METRIC_NAMES after one record each, and nothing else", async () => {
    const telemetry = createTelemetry({ enabled: true, nodeId: "node-a" });
    recordOneEach(telemetry);
    const found = families(await telemetry.render());
    found.delete("target_info");
    expect([...found.keys()].sort()).toEqual([...METRIC_NAMES].sort());
    await telemetry.shutdown();
  });

  test("families have the Prometheus types the dashboards assume", async () => {
    const telemetry = createTelemetry({ enabled: true, nodeId: "node-a" });
    recordOneEach(telemetry);
    const found = families(await telemetry.render());
    for (const name of METRIC_NAMES) {
      // The event-loop delay is a gauge in seconds (a windowed figure, not a distribution).
      const expected = name.endsWith("_total") ? "counter" : name.endsWith("_seconds") && name !== "courier_event_loop_delay_seconds" ? "histogram" : "gauge";
      expect({ name, type: found.get(name) }).toEqual({ name, type: expected });
    }
    await telemetry.shutdown();
  });

  test("values and labels render as recorded", async () => {
    const telemetry = createTelemetry({ enabled: true, nodeId: "node-a", serviceName: "courier-test" });
    recordOneEach(telemetry);
    telemetry.metrics.publishes.add(2, { kind: "job", class: "critical" });
    const text = await telemetry.render();
    expect(text).toContain('courier_publishes_total{kind="job",class="critical"} 3');
    expect(text).toContain("courier_deliveries_total 1000");
    expect(text).toContain('courier_connections{tier="enterprise"} 0');
    expect(text).toContain('courier_breaker_state{dependency="agent"} 2');
    expect(text).toContain('courier_ready{status="ready"} 1');
    expect(text).toContain("courier_jobs_in_flight 5");
    expect(text).toContain('courier_closes_total{code="4409"} 1');
    expect(text).toContain(
      'http_server_request_duration_seconds_count{http_request_method="POST",http_route="/v1/publish",http_response_status_code="200"} 1',
    );
    expect(text).toMatch(/target_info\{[^}]*service_name="courier-test"[^}]*service_instance_id="node-a"/);
    await telemetry.shutdown();
  });

  test("histograms use sub-millisecond buckets", async () => {
    const telemetry = createTelemetry({ enabled: true, nodeId: "n" });
    telemetry.metrics.fanoutLatency.record(0.00015);
    const text = await telemetry.render();
    expect(text).toContain('courier_fanout_latency_seconds_bucket{le="0.0001"} 0');
    expect(text).toContain('courier_fanout_latency_seconds_bucket{le="0.00025"} 1');
    expect(text).toContain('courier_fanout_latency_seconds_bucket{le="10"} 1');
    await telemetry.shutdown();
  });

  test("a gauge label value no longer observed leaves the exposition", async () => {
    const telemetry = createTelemetry({ enabled: true, nodeId: "n" });
    let status = "ready";
    telemetry.observe({ ready: () => ({ status, value: status === "ready" ? 1 : 0 }) });
    expect(await telemetry.render()).toContain('courier_ready{status="ready"} 1');
    status = "draining";
    const text = await telemetry.render();
    expect(text).toContain('courier_ready{status="draining"} 0');
    expect(text).not.toContain('status="ready"');
    await telemetry.shutdown();
  });

  test("a throwing gauge source blanks only its own gauge; removal stops observation", async () => {
    const telemetry = createTelemetry({ enabled: true, nodeId: "n" });
    telemetry.observe({
      connectionsByTier: () => {
        throw new Error("boom");
      },
      jobsInFlight: () => 2,
    });
    const remove = telemetry.observe({ subscriptionsByKind: () => ({ user: 1 }) });
    let text = await telemetry.render();
    expect(text).toContain("courier_jobs_in_flight 2");
    expect(text).toContain('courier_subscriptions{kind="user"} 1');
    expect(text).not.toContain("courier_connections{");
    remove();
    text = await telemetry.render();
    expect(text).not.toContain("courier_subscriptions{");
    await telemetry.shutdown();
  });

  test("two instances in one process are independent", async () => {
    const a = createTelemetry({ enabled: true, nodeId: "a" });
    const b = createTelemetry({ enabled: true, nodeId: "b" });
    a.metrics.deliveries.add(5);
    b.metrics.deliveries.add(9);
    expect(await a.render()).toContain("courier_deliveries_total 5");
    expect(await b.render()).toContain("courier_deliveries_total 9");
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  test("disabled telemetry records nothing and renders an empty exposition", async () => {
    const telemetry = createTelemetry({ enabled: false, nodeId: "n", otlpEndpoint: "http://127.0.0.1:1" });
    recordOneEach(telemetry);
    expect(await telemetry.render()).toBe("");
    await telemetry.flush();
    await telemetry.shutdown();
  });

  test("a non-positive OTLP interval is a RangeError", () => {
    expect(() => createTelemetry({ enabled: true, nodeId: "n", otlpEndpoint: "http://127.0.0.1:1", otlpIntervalMs: 0 })).toThrow(RangeError);
  });
});
