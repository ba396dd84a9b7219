import { describe, expect, test } from "bun:test";
import { dashboardQueries, metricNames } from "../../src/telemetry/dashboard-metrics.ts";
import { createTelemetry, METRIC_NAMES } from "../../src/telemetry/index.ts";

/** Every panel reads the `datasource` variable, so the dashboard imports into any Grafana. */
const DATASOURCE_UID = "${datasource}";

interface Panel {
  type: string;
  title: string;
  datasource?: { uid?: string };
  targets?: { expr?: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
}

const dashboard = await Bun.file(new URL("../../grafana/dashboards/courier.json", import.meta.url)).json();
const allPanels = (panels: Panel[]): Panel[] => panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
const panels = allPanels(dashboard.panels).filter((panel) => panel.type !== "row");
const queries = dashboardQueries(dashboard);

describe("metricNames", () => {
  test("extracts family names and ignores functions, matchers, ranges, grouping and offsets", () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, http_route) (rate(http_server_request_duration_seconds_bucket{instance=~"$instance",le!="x"}[$__rate_interval])))',
      ),
    ).toEqual(["http_server_request_duration_seconds"]);
    expect(
      metricNames('sum(rate(a_total{result="hit"}[5m])) / clamp_min(sum(rate(b_total[1m] offset 5m)), 1e-9) + on(instance) group_left c'),
    ).toEqual(["a_total", "b_total", "c"]);
    expect(metricNames("sum(courier_rpc_duration_seconds_count) / sum(courier_rpc_duration_seconds_sum)")).toEqual([
      "courier_rpc_duration_seconds",
    ]);
  });
});

describe("grafana/dashboards/courier.json", () => {
  test("has a datasource variable for Prometheus, defaulting to the provisioned one", () => {
    const variable = dashboard.templating.list.find((v: { name: string }) => v.name === "datasource");
    expect(variable).toMatchObject({ type: "datasource", query: "prometheus", current: { value: "courier-prometheus" } });
    const others = dashboard.templating.list.filter((v: { name: string; datasource?: { uid?: string } }) => v.name !== "datasource");
    expect(others.map((v: { datasource?: { uid?: string } }) => v.datasource?.uid)).toEqual(others.map(() => DATASOURCE_UID));
  });

  test("opens with a stat row: connections, publish rate, 5xx share, confirmation time-outs, breakers open", () => {
    const [first, ...rest] = dashboard.panels as (Panel & { gridPos: { y: number } })[];
    expect(first!.type).toBe("row");
    const top = rest.slice(0, rest.findIndex((p) => p.type === "row"));
    expect(top.map((p) => [p.type, p.title])).toEqual([
      ["stat", "Connections"],
      ["stat", "Publish rate"],
      ["stat", "5xx share"],
      ["stat", "Confirmation time-outs"],
      ["stat", "Breakers open"],
    ]);
    // A stat must read a number on a fresh node too, where a ratio of zero rates is empty.
    for (const panel of top) expect({ panel: panel.title, fallback: panel.targets![0]!.expr!.endsWith("or vector(0)") }).toEqual({ panel: panel.title, fallback: true });
  });

  test("has the stable uid and queries only the datasource variable", () => {
    expect(dashboard.uid).toBe("courier-overview");
    expect(panels.length).toBeGreaterThanOrEqual(16);
    const wrong = panels.flatMap((panel) =>
      [panel.datasource?.uid, ...(panel.targets ?? []).map((t) => t.datasource?.uid)]
        .filter((uid) => uid !== DATASOURCE_UID)
        .map((uid) => ({ panel: panel.title, uid })),
    );
    expect(wrong).toEqual([]);
  });

  test("every panel has a query that reads at least one metric", () => {
    const empty = panels.filter((panel) => !queries.some((q) => q.panel === panel.title && q.metrics.length > 0));
    expect(empty.map((panel) => panel.title)).toEqual([]);
  });

  test("every metric a query or variable reads is exported by src/telemetry", () => {
    const known = new Set<string>(METRIC_NAMES);
    const unknown = queries.flatMap((q) => q.metrics.filter((m) => !known.has(m)).map((metric) => ({ panel: q.panel, metric })));
    expect(queries.length).toBeGreaterThan(20);
    expect(unknown).toEqual([]);
  });

  test("a panel reads every family Courier exports (build info is a label source, not a panel)", () => {
    const used = new Set(queries.flatMap((q) => q.metrics));
    expect(METRIC_NAMES.filter((name) => !used.has(name) && name !== "courier_build_info")).toEqual([]);
  });

  test("every metric the dashboard reads is in a real render once each instrument has a value", async () => {
    const telemetry = createTelemetry({ enabled: true, nodeId: "n" });
    const m = telemetry.metrics;
    m.connectionAttempts.add(1, { result: "accepted" });
    m.connectDuration.record(0.001);
    m.publishes.add(1, { kind: "job", class: "normal" });
    m.deliveries.add(1);
    m.fanoutLatency.record(0.001);
    m.confirmations.add(1, { result: "timed_out" });
    m.confirmationTime.record(0.1);
    m.sessionResumes.add(1, { result: "miss" });
    m.bufferEvents.add(1, { outcome: "overflow" });
    m.backpressureCloses.add(1);
    m.serializerDuration.record(0.001, { path: "slow" });
    m.serializerTimeouts.add(1);
    m.rpcDuration.record(1, { method: "run", result: "timeout" });
    m.httpRequestDuration.record(0.01, { "http.request.method": "GET", "http.route": "/ready", "http.response.status_code": 503 });
    m.framesRejected.add(1, { reason: "rate_limited" });
    m.streamsStarted.add(1);
    m.streamsEnded.add(1, { status: "cancelled" });
    m.streamAppends.add(10);
    m.streamSnapshots.add(1);
    m.streamSnapshotChars.add(120);
    m.closes.add(1, { code: 1000 });
    m.replayedEvents.add(1);
    m.agentRuns.add(1, { result: "timed_out" });
    telemetry.observe({
      connectionsByTier: () => ({ starter: 0 }),
      subscriptionsByKind: () => ({ user: 0 }),
      breakerStates: () => ({ agent: 1 }),
      ready: () => ({ status: "draining", value: 0 }),
      jobsInFlight: () => 0,
    });
    const text = await telemetry.render();
    await telemetry.shutdown();
    const missing = [...new Set(queries.flatMap((q) => q.metrics))].filter((metric) => !text.includes(`# TYPE ${metric} `));
    expect(missing).toEqual([]);
  });
});
