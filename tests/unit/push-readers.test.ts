import { afterEach, describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import { MeterProvider, type PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { pushReadersFromEnv } from "../../src/telemetry/push-readers.ts";
import { startOtlpReceiver } from "../helpers/otlp-receiver.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Records one counter through `readers` and pushes it now. */
async function pushOnce(readers: PeriodicExportingMetricReader[]) {
  const provider = new MeterProvider({ readers });
  cleanups.push(() => provider.shutdown());
  provider.getMeter("t").createCounter("pushed_total").add(1);
  await Promise.all(readers.map((reader) => reader.forceFlush()));
}

function receiver() {
  const r = startOtlpReceiver();
  cleanups.push(() => r.server.stop(true));
  return r;
}

/** A bare OTLP/gRPC metrics receiver (grpc-js, raw bytes) that resolves with the first request body. */
async function grpcReceiver() {
  const raw = (b: Buffer) => b;
  const method = { path: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", requestStream: false, responseStream: false };
  const server = new grpc.Server();
  const first = Promise.withResolvers<Buffer>();
  server.addService(
    { Export: { ...method, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        first.resolve(call.request);
        done(null, Buffer.alloc(0));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
  );
  cleanups.push(() => server.forceShutdown());
  return { endpoint: `http://127.0.0.1:${port}`, first: first.promise };
}

describe("pushReadersFromEnv", () => {
  test("no OTEL_METRICS_EXPORTER and no endpoint: nothing pushes (no silent localhost:4318)", async () => {
    expect(await pushReadersFromEnv({ intervalMs: 1_000 }, {})).toEqual([]);
  });

  test("an endpoint turns OTLP on, http/protobuf by default", async () => {
    const otlp = receiver();
    const readers = await pushReadersFromEnv({ otlpEndpoint: `${otlp.endpoint}/`, intervalMs: 600_000 }, {});
    expect(readers).toHaveLength(1);
    const arrived = otlp.nextRequest();
    await pushOnce(readers);
    expect(await arrived).toMatchObject({ path: "/v1/metrics", contentType: "application/x-protobuf", body: expect.stringContaining("pushed_total") });
  });

  test("OTEL_EXPORTER_OTLP_PROTOCOL=http/json", async () => {
    const otlp = receiver();
    const readers = await pushReadersFromEnv({ otlpEndpoint: otlp.endpoint, intervalMs: 600_000 }, { OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" });
    const arrived = otlp.nextRequest();
    await pushOnce(readers);
    const request = await arrived;
    expect(request.contentType).toContain("application/json");
    expect(JSON.parse(request.body).resourceMetrics[0].scopeMetrics[0].metrics[0].name).toBe("pushed_total");
  });

  test("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=grpc reaches a gRPC receiver", async () => {
    const collector = await grpcReceiver();
    const readers = await pushReadersFromEnv({ otlpEndpoint: collector.endpoint, intervalMs: 600_000 }, { OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" });
    await pushOnce(readers);
    expect((await collector.first).toString("latin1")).toContain("pushed_total");
  });

  test("OTEL_METRICS_EXPORTER: none wins; console adds a reader; prometheus is /metrics already", async () => {
    expect(await pushReadersFromEnv({ otlpEndpoint: "http://127.0.0.1:1", intervalMs: 1_000 }, { OTEL_METRICS_EXPORTER: "otlp,none" })).toEqual([]);
    expect(await pushReadersFromEnv({ intervalMs: 1_000 }, { OTEL_METRICS_EXPORTER: "prometheus" })).toEqual([]);
    const readers = await pushReadersFromEnv({ intervalMs: 600_000 }, { OTEL_METRICS_EXPORTER: "console" });
    expect(readers).toHaveLength(1);
    await Promise.all(readers.map((reader) => reader.shutdown()));
  });

  test("unsupported values are reported and ignored, as the SDK does", async () => {
    const warnings: unknown[] = [];
    const warn = (message: string, fields: Record<string, unknown>) => void warnings.push({ message, ...fields });
    const readers = await pushReadersFromEnv({ otlpEndpoint: "http://127.0.0.1:1", intervalMs: 600_000, warn }, { OTEL_METRICS_EXPORTER: "otlp,zipkin", OTEL_EXPORTER_OTLP_PROTOCOL: "carrier-pigeon" });
    expect(readers).toHaveLength(1);
    expect(warnings).toEqual([
      { message: "unsupported OTLP protocol; using http/protobuf", protocol: "carrier-pigeon", supported: ["http/protobuf", "http/json", "grpc"] },
      { message: "unsupported OTEL_METRICS_EXPORTER value ignored", exporter: "zipkin", supported: ["otlp", "console", "prometheus", "none"] },
    ]);
    await Promise.all(readers.map((reader) => reader.shutdown()));
  });

  test("a non-positive interval is a RangeError", async () => {
    await expect(pushReadersFromEnv({ otlpEndpoint: "http://127.0.0.1:1", intervalMs: 0 }, {})).rejects.toThrow(RangeError);
  });
});
