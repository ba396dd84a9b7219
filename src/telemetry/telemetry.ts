/**
 * The Telemetry object over one meter provider and its readers: Prometheus text for our own
 * `/metrics` route, plus whatever pushes.
 *
 * Two ways to build it. `createTelemetry` makes a private `MeterProvider` (nothing global), so tests
 * and benchmarks can start any number of servers in one process. `startOtelSdk` (`otel-sdk.ts`), for
 * `src/main.ts` only, starts the OpenTelemetry metrics SDK, which registers its provider process-wide
 * and takes the resource and the push exporters from the standard `OTEL_*` variables.
 */
import { createNoopMeter, type Meter } from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { AggregationTemporality, InstrumentType, MeterProvider, type MetricData, type MetricProducer, type ResourceMetrics } from "@opentelemetry/sdk-metrics";
import type { BuildInfo } from "./build-info.ts";
import { LocalHistograms } from "./local-histograms.ts";
import { createMetrics, type GaugeSource, type Metrics } from "./metrics.ts";
import { withZeroHistograms } from "./zero-histograms.ts";
import { exportTimeoutMs, gaugesAsDelta, pushReader } from "./push-readers.ts";

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
 * The Prometheus reader behind `/metrics`: never its own server, observable gauges as deltas, and
 * `histograms` (cumulative, as every other instrument here) collected with the SDK's instruments.
 */
export class PrometheusReader extends PrometheusExporter {
  constructor(histograms?: LocalHistograms) {
    const metricProducers: MetricProducer[] | undefined = histograms && [histograms.producer(gaugesAsDelta(InstrumentType.HISTOGRAM))];
    super({ preventServerStart: true, metricProducers });
  }
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
  if (!options.enabled) return disabledTelemetry();

  const histograms = new LocalHistograms();
  const prometheus = new PrometheusReader(histograms);
  const otlp = options.otlpEndpoint
    ? pushReader(
        new OTLPMetricExporter({
          url: `${options.otlpEndpoint.replace(/\/+$/, "")}/v1/metrics`,
          timeoutMillis: exportTimeoutMs(options.otlpIntervalMs ?? 10_000),
        }),
        options.otlpIntervalMs ?? 10_000,
        histograms,
      )
    : undefined;
  const provider = new MeterProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({ "service.name": options.serviceName ?? "courier", "service.instance.id": options.nodeId }),
    ),
    readers: otlp ? [prometheus, otlp] : [prometheus],
  });
  return telemetryOver({
    meter: provider.getMeter("courier"),
    prometheus,
    histograms,
    flush: async () => {
      await otlp?.forceFlush();
    },
    shutdown: (timeoutMs) => provider.shutdown({ timeoutMillis: timeoutMs }),
  });
}

/** Every instrument a no-op and an empty exposition (`telemetry.enabled: false`, `OTEL_SDK_DISABLED`). */
export function disabledTelemetry(): Telemetry {
  const { metrics } = createMetrics(createNoopMeter());
  return {
    metrics,
    observe: () => () => {},
    render: async () => "",
    flush: async () => {},
    shutdown: async () => {},
  };
}

/** What a {@link Telemetry} is made of, whoever built the meter provider. */
export interface TelemetryParts {
  /** The meter every instrument is created on. */
  meter: Meter;
  /** Registered as a reader of that meter's provider. */
  prometheus: PrometheusReader;
  /** Where the histograms are kept, when every reader was given one of its producers; else the meter's own. */
  histograms?: LocalHistograms;
  /** Pushes pending data of every push reader now. */
  flush(): Promise<void>;
  /** Final pushes, then stops every reader; may reject or hang: callers get it bounded and settled. */
  shutdown(timeoutMs: number): Promise<void>;
  /** What `courier_build_info` shows, when the builder already read it. @default buildInfo() */
  build?: BuildInfo;
}

/** The {@link Telemetry} over `parts`. */
export function telemetryOver(parts: TelemetryParts): Telemetry {
  const { metrics, observe, histograms, close } = createMetrics(parts.meter, parts.build, parts.histograms);
  // withoutScopeInfo: one meter only, so an `otel_scope_name` label on every series would be noise.
  const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
  return {
    metrics,
    observe,
    async render() {
      const { resourceMetrics } = await parts.prometheus.collect();
      return serializer.serialize(withUnitSuffixes(withZeroHistograms(resourceMetrics, histograms)));
    },
    flush: parts.flush,
    async shutdown({ timeoutMs = 2_000 } = {}) {
      // A final push is worth a moment of the drain budget, not the exit code: an unreachable
      // collector must neither hold the process past its drain nor make it fail.
      close();
      let timer: Timer | undefined;
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      await Promise.race([parts.shutdown(timeoutMs).catch(() => {}), timeout]);
      clearTimeout(timer);
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
