/**
 * The OTel SDK path (otel-sdk.ts, what NodeSDK does for metrics), through a real process (`bun src/main.ts`): the resource and the exporters follow
 * the standard `OTEL_*` variables, `/metrics` keeps serving our Prometheus reader, and
 * `courier_build_info` says what runs. (In-process tests use `createTelemetry`: the SDK is global.)
 */
import { afterEach, describe, expect, test } from "bun:test";
import pkg from "../package.json" with { type: "json" };
import { spawnCourier, type CourierProcess } from "./helpers/process.ts";
import { startOtlpReceiver } from "./helpers/otlp-receiver.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function node(env: Record<string, string>): Promise<CourierProcess> {
  const child = await spawnCourier(env);
  cleanups.push(() => {
    child.kill("SIGKILL");
    return child.exited;
  });
  return child;
}

function receiver() {
  const r = startOtlpReceiver();
  cleanups.push(() => r.server.stop(true));
  return r;
}

/** `{key: value}` of an OTLP/JSON resource's attributes. */
function attributes(body: any): Record<string, unknown> {
  const attrs = body.resourceMetrics[0].resource.attributes as { key: string; value: Record<string, unknown> }[];
  return Object.fromEntries(attrs.map(({ key, value }) => [key, Object.values(value)[0]]));
}

describe("the OTel SDK in main.ts", () => {
  test("OTLP http/json push with the resource from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES", async () => {
    const otlp = receiver();
    const arrived = otlp.nextRequest(10_000);
    const courier = await node({
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_METRIC_EXPORT_INTERVAL: "200",
      OTEL_SERVICE_NAME: "courier-e2e",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=ci,service.namespace=realtime",
      COURIER_NODE_ID: "otel-node",
      COURIER_COMMIT: "c0ffee1",
    });
    const request = await arrived;
    expect(request).toMatchObject({ path: "/v1/metrics", contentType: expect.stringContaining("application/json") });
    const body = JSON.parse(request.body);
    expect(attributes(body)).toMatchObject({
      "service.name": "courier-e2e",
      "service.version": pkg.version,
      "service.instance.id": "otel-node",
      "service.namespace": "realtime",
      "deployment.environment.name": "ci",
    });
    const names = body.resourceMetrics.flatMap((rm: any) => rm.scopeMetrics.flatMap((sm: any) => sm.metrics.map((m: any) => m.name)));
    expect(names).toContain("courier_build_info");

    const text = await (await fetch(`${courier.http}/metrics`)).text();
    expect(text).toContain(`courier_build_info{version="${pkg.version}",commit="c0ffee1",bun="${Bun.version}"} 1`);
    expect(text).toMatch(/target_info\{[^}]*service_name="courier-e2e"/);
  });

  test("the default OTLP protocol is http/protobuf, as in every OTel SDK", async () => {
    const otlp = receiver();
    const arrived = otlp.nextRequest(10_000);
    await node({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint, OTEL_METRIC_EXPORT_INTERVAL: "200" });
    const request = await arrived;
    expect(request.path).toBe("/v1/metrics");
    expect(request.contentType).toBe("application/x-protobuf");
    expect(request.body).toContain("courier_build_info");
  });

  test("OTEL_METRICS_EXPORTER=none keeps OTLP off even with an endpoint; /metrics still serves", async () => {
    const otlp = receiver();
    const courier = await node({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint, OTEL_METRIC_EXPORT_INTERVAL: "50", OTEL_METRICS_EXPORTER: "none" });
    // A push would have come within a few intervals; the drain's final flush is the last chance.
    courier.kill("SIGTERM");
    expect(await courier.exited).toBe(0);
    expect(otlp.received).toEqual([]);
    expect(courier.output()).not.toContain('"level":"error"');
  });

  test("OTEL_NODE_RESOURCE_DETECTORS picks NodeSDK's detectors by name; unset, only env (no host, no random instance id)", async () => {
    const pushed = async (env: Record<string, string>) => {
      const otlp = receiver();
      const arrived = otlp.nextRequest(10_000);
      const courier = await node({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_METRIC_EXPORT_INTERVAL: "200", COURIER_NODE_ID: "det-node", ...env });
      const resource = attributes(JSON.parse((await arrived).body));
      // The next node takes the same data dir.
      courier.kill("SIGKILL");
      await courier.exited;
      return { resource, output: courier.output() };
    };
    const plain = await pushed({});
    expect(plain.resource["service.instance.id"]).toBe("det-node");
    expect(plain.resource).not.toHaveProperty("host.name");
    expect(plain.resource).not.toHaveProperty("process.pid");

    const chosen = await pushed({ OTEL_NODE_RESOURCE_DETECTORS: "env,host,process,bogus" });
    expect(chosen.resource).toMatchObject({ "host.name": expect.any(String), "process.pid": expect.any(Number), "service.instance.id": "det-node" });
    expect(chosen.output).toContain("unknown resource detector in OTEL_NODE_RESOURCE_DETECTORS");

    const none = await pushed({ OTEL_NODE_RESOURCE_DETECTORS: "none", OTEL_SERVICE_NAME: "ignored-without-env" });
    expect(none.resource["service.name"]).toBe("courier");
  });

  test("OTEL_SDK_DISABLED=true: no SDK, /metrics answers an empty exposition", async () => {
    const courier = await node({ OTEL_SDK_DISABLED: "true" });
    const res = await fetch(`${courier.http}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });
});
