/**
 * The OpenTelemetry NodeSDK for the process `src/main.ts` runs, so Courier's metrics follow the
 * standard `OTEL_*` variables like any OTel service: the resource (`OTEL_SERVICE_NAME`,
 * `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_NODE_RESOURCE_DETECTORS`), the push exporters
 * (`OTEL_METRICS_EXPORTER`, `OTEL_EXPORTER_OTLP_PROTOCOL`, `…_ENDPOINT`, `…_HEADERS`, see
 * `push-readers.ts`) and `OTEL_SDK_DISABLED`. Our Prometheus reader is one of its readers, rendered
 * by our own `/metrics` route.
 *
 * Once per process: the SDK registers its meter provider as the global one. Tests build their own
 * with `createTelemetry` instead.
 */
import { metrics } from "@opentelemetry/api";
import { defaultResource, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { buildInfo } from "./build-info.ts";
import { pushReadersFromEnv } from "./push-readers.ts";
import { LocalHistograms } from "./local-histograms.ts";
import { disabledTelemetry, PrometheusReader, telemetryOver, type Telemetry } from "./telemetry.ts";

export interface OtelSdkOptions {
  /** false: no SDK, every instrument a no-op (`config.telemetry.enabled`). */
  enabled: boolean;
  /** `service.instance.id`, unless `OTEL_RESOURCE_ATTRIBUTES` sets it. */
  nodeId: string;
  /** OTLP base URL from the config (`OTEL_EXPORTER_OTLP_ENDPOINT` or the file). */
  otlpEndpoint?: string;
  /** Push interval from the config (`OTEL_METRIC_EXPORT_INTERVAL` or the file). Default 10 000 ms. */
  otlpIntervalMs?: number;
  /** Told about ignored `OTEL_*` values. */
  warn?: (message: string, fields: Record<string, unknown>) => void;
  /** Default `process.env`; NodeSDK itself always reads `process.env`. */
  env?: Record<string, string | undefined>;
}

const truthy = (value: string | undefined) => value?.trim().toLowerCase() === "true";

/**
 * Starts the NodeSDK and returns the Telemetry over its meter provider.
 *
 * @example
 * const telemetry = await startOtelSdk({
 *   enabled: config.telemetry.enabled,
 *   nodeId: config.cluster.nodeId!,
 *   otlpEndpoint: config.telemetry.otlpEndpoint,
 *   otlpIntervalMs: config.telemetry.otlpIntervalMs,
 *   warn: (msg, fields) => log.warn(msg, fields),
 * });
 */
export async function startOtelSdk(options: OtelSdkOptions): Promise<Telemetry> {
  const env = options.env ?? process.env;
  // NodeSDK would start nothing and leave our reader unbound, so /metrics could not even render.
  if (!options.enabled || truthy(env.OTEL_SDK_DISABLED)) return disabledTelemetry();

  const histograms = new LocalHistograms();
  const prometheus = new PrometheusReader(histograms);
  const pushers = await pushReadersFromEnv({ otlpEndpoint: options.otlpEndpoint, intervalMs: options.otlpIntervalMs ?? 10_000, warn: options.warn, histograms }, env);
  const build = buildInfo(env);
  const sdk = new NodeSDK({
    // Lowest priority: the detectors (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) override these.
    resource: defaultResource().merge(
      resourceFromAttributes({ "service.name": "courier", "service.version": build.version, "service.instance.id": options.nodeId }),
    ),
    // The SDK's default detectors add a random `service.instance.id` over our node id, and host and
    // process attributes to every `target_info`; `OTEL_NODE_RESOURCE_DETECTORS` still picks others.
    resourceDetectors: env.OTEL_NODE_RESOURCE_DETECTORS ? undefined : [envDetector],
    metricReaders: [prometheus, ...pushers],
    // Metrics only: without these the SDK starts OTLP trace and log exporters to localhost:4318.
    spanProcessors: [],
    logRecordProcessors: [],
  });
  const before = metrics.getMeterProvider();
  sdk.start();
  if (metrics.getMeterProvider() === before) {
    await sdk.shutdown().catch(() => {});
    throw new Error("startOtelSdk: a global meter provider is already registered; start the SDK once per process");
  }
  return telemetryOver({
    meter: metrics.getMeter("courier"),
    prometheus,
    histograms,
    flush: async () => {
      await Promise.all(pushers.map((reader) => reader.forceFlush()));
    },
    shutdown: () => sdk.shutdown(),
    build,
  });
}
