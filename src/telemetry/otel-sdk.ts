/**
 * The OpenTelemetry SDK for the process `src/main.ts` runs, so Courier's metrics follow the
 * standard `OTEL_*` variables like any OTel service: the resource (`OTEL_SERVICE_NAME`,
 * `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_NODE_RESOURCE_DETECTORS`), the push exporters
 * (`OTEL_METRICS_EXPORTER`, `OTEL_EXPORTER_OTLP_PROTOCOL`, `…_ENDPOINT`, `…_HEADERS`, see
 * `push-readers.ts`), `OTEL_LOG_LEVEL` and `OTEL_SDK_DISABLED`. Our Prometheus reader is one of its
 * readers, rendered by our own `/metrics` route.
 *
 * It is what `NodeSDK` (`@opentelemetry/sdk-node` 0.301) does for metrics, made of the same parts:
 * its diag logger, its resource detectors by the same names, a `MeterProvider` registered as the
 * global one. NodeSDK itself also loads the trace and log SDKs, their exporters and the
 * instrumentation loader, which Courier never starts: 268 modules and 2.3 MB of JS heap in every
 * process, and a larger heap makes each of Bun's timed collections pause the publish that meets it
 * longer (bench/PROFILE.md §7.3).
 *
 * Once per process: the provider is registered as the global one. Tests build their own with
 * `createTelemetry` instead.
 */
import { DiagConsoleLogger, DiagLogLevel, diag, metrics } from "@opentelemetry/api";
import {
  defaultResource,
  detectResources,
  envDetector,
  hostDetector,
  osDetector,
  processDetector,
  resourceFromAttributes,
  serviceInstanceIdDetector,
  type ResourceDetector,
} from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
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
  /** Default `process.env`; the exporters and the `env` detector always read `process.env`. */
  env?: Record<string, string | undefined>;
}

const truthy = (value: string | undefined) => value?.trim().toLowerCase() === "true";

/**
 * Starts the SDK and returns the Telemetry over its meter provider.
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
  // No provider at all: an unbound reader could not even render /metrics.
  if (!options.enabled || truthy(env.OTEL_SDK_DISABLED)) return disabledTelemetry();

  const histograms = new LocalHistograms();
  const prometheus = new PrometheusReader(histograms);
  const pushers = await pushReadersFromEnv({ otlpEndpoint: options.otlpEndpoint, intervalMs: options.otlpIntervalMs ?? 10_000, warn: options.warn, histograms }, env);
  const build = buildInfo(env);
  const logLevel = env.OTEL_LOG_LEVEL?.trim().toUpperCase();
  if (logLevel) diag.setLogger(new DiagConsoleLogger(), { logLevel: DIAG_LEVELS[logLevel] ?? DIAG_LEVELS.INFO! });
  // Lowest priority: the detectors (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) override these.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": "courier", "service.version": build.version, "service.instance.id": options.nodeId }))
    .merge(detectResources({ detectors: detectorsFrom(env, options.warn) }));
  const provider = new MeterProvider({ resource, readers: [prometheus, ...pushers] });
  if (!metrics.setGlobalMeterProvider(provider)) {
    await provider.shutdown().catch(() => {});
    throw new Error("startOtelSdk: a global meter provider is already registered; start the SDK once per process");
  }
  return telemetryOver({
    meter: metrics.getMeter("courier"),
    prometheus,
    histograms,
    flush: async () => {
      await Promise.all(pushers.map((reader) => reader.forceFlush()));
    },
    shutdown: () => provider.shutdown(),
    build,
  });
}

/** `OTEL_LOG_LEVEL` values, as `@opentelemetry/core`'s `diagLogLevelFromString` reads them. */
const DIAG_LEVELS: Record<string, DiagLogLevel> = {
  NONE: DiagLogLevel.NONE,
  ERROR: DiagLogLevel.ERROR,
  WARN: DiagLogLevel.WARN,
  INFO: DiagLogLevel.INFO,
  DEBUG: DiagLogLevel.DEBUG,
  VERBOSE: DiagLogLevel.VERBOSE,
  ALL: DiagLogLevel.ALL,
};

const DETECTORS: ReadonlyMap<string, ResourceDetector> = new Map([
  ["env", envDetector],
  ["host", hostDetector],
  ["os", osDetector],
  ["process", processDetector],
  ["serviceinstance", serviceInstanceIdDetector],
]);

/**
 * `OTEL_NODE_RESOURCE_DETECTORS` as NodeSDK reads it (`all`, `none`, or names from DETECTORS). Unset,
 * only `env`: NodeSDK's defaults add a random `service.instance.id` over our node id, and host and
 * process attributes to every `target_info`.
 */
function detectorsFrom(env: Record<string, string | undefined>, warn?: OtelSdkOptions["warn"]): ResourceDetector[] {
  const names = (env.OTEL_NODE_RESOURCE_DETECTORS ?? "").split(",").map((n) => n.trim()).filter(Boolean);
  if (names.length === 0) return [envDetector];
  if (names.includes("all")) return [...DETECTORS.values()];
  if (names.includes("none")) return [];
  return names.flatMap((name) => {
    const detector = DETECTORS.get(name);
    if (!detector) warn?.("unknown resource detector in OTEL_NODE_RESOURCE_DETECTORS; ignored", { detector: name, known: [...DETECTORS.keys()] });
    return detector ? [detector] : [];
  });
}
