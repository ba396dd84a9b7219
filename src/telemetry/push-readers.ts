/**
 * The metric readers that push (OTLP, console), chosen by the standard `OTEL_*` variables, for the
 * SDK in `otel-sdk.ts`, following NodeSDK's rules for `OTEL_METRICS_EXPORTER` with one difference: without `OTEL_METRICS_EXPORTER`, OTLP is on only
 * when an endpoint is set (PROTOCOL.md §1), never a silent push to localhost:4318.
 */
import { OTLPMetricExporter as OtlpHttpJsonExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPMetricExporter as OtlpHttpProtobufExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import {
  AggregationTemporality,
  ConsoleMetricExporter,
  InstrumentType,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import type { LocalHistograms } from "./local-histograms.ts";

/** `OTEL_EXPORTER_OTLP_PROTOCOL` values. */
export const OTLP_PROTOCOLS = ["http/protobuf", "http/json", "grpc"] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

export interface PushReaderOptions {
  /** Base URL (`config.telemetry.otlpEndpoint`, from `OTEL_EXPORTER_OTLP_ENDPOINT` or the file). */
  otlpEndpoint?: string;
  /** Push interval (`config.telemetry.otlpIntervalMs`, from `OTEL_METRIC_EXPORT_INTERVAL` or the file). */
  intervalMs: number;
  /** Told about ignored values (an unknown exporter or protocol), as the SDK's own diag would be. */
  warn?: (message: string, fields: Record<string, unknown>) => void;
  /** Histograms each reader collects too (local-histograms.ts). */
  histograms?: LocalHistograms;
}

/**
 * Observable gauges are exported as deltas: with cumulative temporality a label value observed once
 * (`courier_ready{status="draining"}`) would be reported forever after. Gauges have no temporality on
 * the wire, so receivers see plain last values; every other instrument keeps the exporter's choice.
 */
export function gaugesAsDelta(type: InstrumentType, otherwise: AggregationTemporality = AggregationTemporality.CUMULATIVE): AggregationTemporality {
  return type === InstrumentType.OBSERVABLE_GAUGE ? AggregationTemporality.DELTA : otherwise;
}

function withGaugesAsDelta(exporter: PushMetricExporter): PushMetricExporter {
  return withScopesMerged(exporter, (type) => gaugesAsDelta(type, exporter.selectAggregationTemporality?.(type)));
}

/** `exporter` exporting with {@link withMergedScopes}, its temporality chosen by `temporality`. */
function withScopesMerged(exporter: PushMetricExporter, temporality: (type: InstrumentType) => AggregationTemporality): PushMetricExporter {
  return {
    export: (metrics, done) => exporter.export(withMergedScopes(metrics), done),
    forceFlush: () => exporter.forceFlush(),
    shutdown: () => exporter.shutdown(),
    selectAggregationTemporality: temporality,
    ...(exporter.selectAggregation && { selectAggregation: (type: InstrumentType) => exporter.selectAggregation!(type) }),
  };
}

/**
 * The exporter's budget for one push (retries included) for a given interval. The SDK refuses an
 * export timeout longer than the interval, and an unreachable collector must not hold up shutdown
 * for the exporter's default ~8 s.
 */
export function exportTimeoutMs(intervalMs: number): number {
  if (!(intervalMs > 0)) throw new RangeError(`otlpIntervalMs must be positive, got ${intervalMs}`);
  return Math.min(intervalMs, 5_000);
}

/**
 * The metrics a local-histograms.ts producer adds come in their own scope entry with the meter's
 * scope: exported as one, as the SDK's own histograms were. Copies what it changes.
 */
export function withMergedScopes(resourceMetrics: ResourceMetrics): ResourceMetrics {
  const byScope = new Map<string, ResourceMetrics["scopeMetrics"][number]>();
  for (const s of resourceMetrics.scopeMetrics) {
    const key = `${s.scope.name}\u0000${s.scope.version ?? ""}\u0000${s.scope.schemaUrl ?? ""}`;
    const seen = byScope.get(key);
    byScope.set(key, seen ? { ...seen, metrics: [...seen.metrics, ...s.metrics] } : s);
  }
  return byScope.size === resourceMetrics.scopeMetrics.length ? resourceMetrics : { ...resourceMetrics, scopeMetrics: [...byScope.values()] };
}

/**
 * A periodic reader around `exporter`, with observable gauges as deltas (see {@link gaugesAsDelta})
 * and `histograms` collected in the temporality the exporter asks for.
 */
export function pushReader(exporter: PushMetricExporter, intervalMs: number, histograms?: LocalHistograms): PeriodicExportingMetricReader {
  const wrapped = withGaugesAsDelta(exporter);
  return new PeriodicExportingMetricReader({
    exporter: wrapped,
    exportIntervalMillis: intervalMs,
    exportTimeoutMillis: exportTimeoutMs(intervalMs),
    metricProducers: histograms && [histograms.producer(wrapped.selectAggregationTemporality!(InstrumentType.HISTOGRAM))],
  });
}

/**
 * One OTLP reader. `url` is the full metrics URL for HTTP (`…/v1/metrics`), the endpoint for gRPC;
 * without it the exporter reads `OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT` itself.
 */
async function otlpReader(protocol: OtlpProtocol, url: string | undefined, intervalMs: number, histograms?: LocalHistograms): Promise<PeriodicExportingMetricReader> {
  const config = { timeoutMillis: exportTimeoutMs(intervalMs), ...(url && { url }) };
  if (protocol === "grpc") {
    // Loaded only when asked for: gRPC brings @grpc/grpc-js and protobufjs.
    const { OTLPMetricExporter } = await import("@opentelemetry/exporter-metrics-otlp-grpc");
    return pushReader(new OTLPMetricExporter(config), intervalMs, histograms);
  }
  return pushReader(protocol === "http/json" ? new OtlpHttpJsonExporter(config) : new OtlpHttpProtobufExporter(config), intervalMs, histograms);
}

const list = (value: string | undefined) => (value ?? "").split(",").map((item) => item.trim().toLowerCase()).filter(Boolean);

/**
 * The push readers `env` asks for: `OTEL_METRICS_EXPORTER` (`otlp`, `console`, `none`; `prometheus`
 * is always on, as `/metrics`), `OTEL_EXPORTER_OTLP_(METRICS_)PROTOCOL` (default `http/protobuf`, as
 * in every OTel SDK), endpoints and headers as the exporters read them.
 *
 * @example
 * const readers = await pushReadersFromEnv({ otlpEndpoint: config.telemetry.otlpEndpoint, intervalMs: 10_000 });
 */
export async function pushReadersFromEnv(options: PushReaderOptions, env: Record<string, string | undefined> = process.env): Promise<PeriodicExportingMetricReader[]> {
  const metricsEndpoint = env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT?.trim();
  let exporters = list(env.OTEL_METRICS_EXPORTER);
  if (exporters.length === 0) exporters = options.otlpEndpoint || metricsEndpoint ? ["otlp"] : [];
  if (exporters.includes("none")) return [];

  const readers: PeriodicExportingMetricReader[] = [];
  for (const name of new Set(exporters)) {
    if (name === "otlp") {
      let protocol = (env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "").trim() || "http/protobuf";
      if (!(OTLP_PROTOCOLS as readonly string[]).includes(protocol)) {
        options.warn?.("unsupported OTLP protocol; using http/protobuf", { protocol, supported: OTLP_PROTOCOLS });
        protocol = "http/protobuf";
      }
      // A signal-specific endpoint is the exporter's to read; otherwise ours (env or file) decides.
      const base = options.otlpEndpoint?.replace(/\/+$/, "");
      const url = metricsEndpoint || !base ? undefined : protocol === "grpc" ? base : `${base}/v1/metrics`;
      readers.push(await otlpReader(protocol as OtlpProtocol, url, options.intervalMs, options.histograms));
    } else if (name === "console") {
      const consoleExporter = new ConsoleMetricExporter();
      const exporter = withScopesMerged(consoleExporter, (type) => consoleExporter.selectAggregationTemporality(type));
      readers.push(
        new PeriodicExportingMetricReader({
          exporter,
          exportIntervalMillis: options.intervalMs,
          metricProducers: options.histograms && [options.histograms.producer(consoleExporter.selectAggregationTemporality(InstrumentType.HISTOGRAM))],
        }),
      );
    } else if (name !== "prometheus") {
      options.warn?.("unsupported OTEL_METRICS_EXPORTER value ignored", { exporter: name, supported: ["otlp", "console", "prometheus", "none"] });
    }
  }
  return readers;
}
