/**
 * The meter provider and its readers: Prometheus text for our own `/metrics` route, and an optional
 * OTLP/HTTP push.
 *
 * A bare `MeterProvider`, not `NodeSDK`: NodeSDK registers the provider as the process-wide global
 * and keeps it private, so instruments could only come from the global `metrics.getMeter()` —
 * which a second instance in the same process (every integration test that starts a server)
 * cannot re-register. It would also install a global context manager and propagators, run
 * host/os/process resource detectors, and obey `OTEL_SDK_DISABLED` silently. We need none of that:
 * one provider per Telemetry, its meter passed in, nothing global.
 */
import { createNoopMeter } from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  InstrumentType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { createMetrics, type GaugeSource, type Metrics } from "./metrics.ts";

/** Content type of {@link Telemetry.render}'s answer (Prometheus text format 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export interface TelemetryOptions {
  /** false: every instrument is a no-op and `render()` answers an empty exposition (benchmarks only). */
  enabled: boolean;
  /** `service.name` resource attribute. Default `courier`. */
  serviceName?: string;
  /** This node's id, the `service.instance.id` resource attribute. */
  nodeId: string;
  /** OTLP/HTTP base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`); metrics are posted to `<endpoint>/v1/metrics`. */
  otlpEndpoint?: string;
  /** Push interval. Default 10 000 ms. */
  otlpIntervalMs?: number;
}

export interface Telemetry {
  /** Every instrument, created once; pass this object to whoever records. */
  readonly metrics: Metrics;
  /**
   * Adds a source for the observable gauges, read on every scrape and export; returns its removal.
   * Several sources may each give part of {@link GaugeSource}.
   */
  observe(source: Partial<GaugeSource>): () => void;
  /** The Prometheus text exposition of every instrument (serve it with {@link PROMETHEUS_CONTENT_TYPE}). */
  render(): Promise<string>;
  /**
   * Pushes pending OTLP data now (no-op without an endpoint). Bounded by the export timeout
   * (min(interval, 5 s)), retries included; resolves even when the push failed.
   */
  flush(): Promise<void>;
  /**
   * Final OTLP push, then stops the readers; instruments become no-ops afterwards. Never rejects;
   * gives up after `timeoutMs` (default 2 000) so an unreachable collector cannot eat the drain.
   */
  shutdown(options?: { timeoutMs?: number }): Promise<void>;
}

/**
 * Observable gauges are exported as deltas: with the exporters' fixed cumulative temporality a label
 * value observed once (`courier_ready{status="draining"}`) would be reported forever after.
 * Gauges have no temporality on the wire, so the receivers see plain last values.
 */
const gaugesAsDelta = (type: InstrumentType) =>
  type === InstrumentType.OBSERVABLE_GAUGE ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE;

class PrometheusReader extends PrometheusExporter {
  override selectAggregationTemporality(type: InstrumentType): AggregationTemporality {
    return gaugesAsDelta(type);
  }
}

class OtlpExporter extends OTLPMetricExporter {
  override selectAggregationTemporality(type: InstrumentType): AggregationTemporality {
    return gaugesAsDelta(type);
  }
}

/**
 * Builds the metrics pipeline. `src/main.ts` calls it once; tests call it freely (nothing global).
 *
 * @example
 * ```ts
 * const telemetry = createTelemetry({
 *   enabled: config.telemetry.enabled,
 *   nodeId,
 *   otlpEndpoint: config.telemetry.otlpEndpoint,
 *   otlpIntervalMs: config.telemetry.otlpIntervalMs,
 * });
 * telemetry.observe({ connectionsByTier: () => connections.countByTier(), jobsInFlight: () => jobs.running });
 * // in the /metrics route:
 * return new Response(await telemetry.render(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
 * // on SIGTERM, after the drain:
 * await telemetry.shutdown();
 * ```
 */
export function createTelemetry(options: TelemetryOptions): Telemetry {
  if (!options.enabled) {
    const { metrics } = createMetrics(createNoopMeter());
    return {
      metrics,
      observe: () => () => {},
      render: async () => "",
      flush: async () => {},
      shutdown: async () => {},
    };
  }

  const prometheus = new PrometheusReader({ preventServerStart: true });
  const readers: (PrometheusExporter | PeriodicExportingMetricReader)[] = [prometheus];
  let otlp: PeriodicExportingMetricReader | undefined;
  if (options.otlpEndpoint) {
    const intervalMs = options.otlpIntervalMs ?? 10_000;
    if (!(intervalMs > 0)) throw new RangeError(`otlpIntervalMs must be positive, got ${intervalMs}`);
    // The SDK refuses an export timeout longer than the interval; the exporter's own budget (retries
    // included) must match it, or an unreachable collector holds up shutdown for ~8 s.
    const exportTimeoutMs = Math.min(intervalMs, 5_000);
    otlp = new PeriodicExportingMetricReader({
      exporter: new OtlpExporter({ url: `${options.otlpEndpoint.replace(/\/+$/, "")}/v1/metrics`, timeoutMillis: exportTimeoutMs }),
      exportIntervalMillis: intervalMs,
      exportTimeoutMillis: exportTimeoutMs,
    });
    readers.push(otlp);
  }

  const provider = new MeterProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({ "service.name": options.serviceName ?? "courier", "service.instance.id": options.nodeId }),
    ),
    readers,
  });
  const { metrics, observe } = createMetrics(provider.getMeter("courier"));
  // withoutScopeInfo: one meter only, so an `otel_scope_name` label on every series would be noise.
  const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);

  return {
    metrics,
    observe,
    async render() {
      const { resourceMetrics } = await prometheus.collect();
      return serializer.serialize(withUnitSuffixes(resourceMetrics));
    },
    async flush() {
      await otlp?.forceFlush();
    },
    async shutdown({ timeoutMs = 2_000 } = {}) {
      // A final push is worth a moment of the drain budget, not the exit code: an unreachable
      // collector must neither hold the process past its drain nor make it fail.
      await provider.shutdown({ timeoutMillis: timeoutMs }).catch(() => {});
    },
  };
}

/**
 * Appends `_seconds` to names whose unit is `s` and lack it, as Prometheus' own OTLP translation
 * does, so `http.server.request.duration` keeps its semantic-convention name on OTLP and reads
 * `http_server_request_duration_seconds` on both paths. Copies: descriptors are shared with the
 * SDK.
 */
function withUnitSuffixes(resourceMetrics: ResourceMetrics): ResourceMetrics {
  const rename = (metric: MetricData): MetricData =>
    metric.descriptor.unit === "s" && !metric.descriptor.name.endsWith("_seconds")
      ? { ...metric, descriptor: { ...metric.descriptor, name: `${metric.descriptor.name}_seconds` } }
      : metric;
  return {
    ...resourceMetrics,
    scopeMetrics: resourceMetrics.scopeMetrics.map((scope) => ({ ...scope, metrics: scope.metrics.map(rename) })),
  };
}
