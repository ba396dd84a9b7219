/**
 * Telemetry: metrics (OpenTelemetry, served as Prometheus text and optionally pushed over OTLP/HTTP)
 * and structured JSON logs.
 *
 * Wiring, in `src/main.ts` (the only place that builds real meters):
 * 1. `const telemetry = createTelemetry({ enabled, nodeId, otlpEndpoint, otlpIntervalMs })` from
 *    `config.telemetry`; pass `telemetry.metrics` to the modules that record.
 * 2. `telemetry.observe({ ... })` once per module that owns gauge values (connections by tier,
 *    subscriptions by kind, breakers, readiness, jobs in flight); keep the returned removal if the
 *    owner can go away.
 * 3. `GET /metrics` answers `await telemetry.render()` with `content-type: PROMETHEUS_CONTENT_TYPE`.
 * 4. Shutdown: `await telemetry.shutdown()` after the drain (it pushes a last OTLP export).
 *
 * Recording rules: durations in seconds; one `add(n)` per batch, never one call per delivery;
 * label values from small fixed sets (route templates, channel kinds, close codes), never ids.
 * Counters appear in `/metrics` from their first record; to show a series at 0 from the start,
 * `add(0, attrs)` it at startup (`zeroSeries` in src/server/server-events.ts). Histograms cannot be
 * recorded at 0 without lying: the label sets passed as `zero` in `createMetrics` are rendered with
 * count 0 until their first recording (`zero-histograms.ts`; `/metrics` only, not OTLP).
 *
 * @example
 * ```ts
 * import { createLogger, createTelemetry, PROMETHEUS_CONTENT_TYPE } from "./telemetry/index.ts";
 *
 * const log = createLogger({ level: config.log.level });
 * const telemetry = createTelemetry({ enabled: true, nodeId: "node-1" });
 * const { metrics } = telemetry;
 *
 * metrics.connectionAttempts.add(1, { result: "accepted" });
 * metrics.publishes.add(1, { kind: "job", class: "critical" });
 * metrics.deliveries.add(subscribers * events.length);
 * metrics.httpRequestDuration.record(seconds, {
 *   "http.request.method": "POST", "http.route": "/v1/publish", "http.response.status_code": 200,
 * });
 * telemetry.observe({
 *   connectionsByTier: () => ({ starter: 3, pro: 1, enterprise: 0 }),
 *   ready: () => ({ status: "ready", value: 1 }),
 * });
 * ```
 */
export {
  createTelemetry,
  PROMETHEUS_CONTENT_TYPE,
  type Telemetry,
  type TelemetryOptions,
} from "./telemetry.ts";
export {
  CONNECT_BUCKETS_S,
  createMetrics,
  LATENCY_BUCKETS_S,
  RUN_BUCKETS_S,
  type AgentRunResult,
  type HistogramSpec,
  METRIC_NAMES,
  REMOTE_BUCKETS_S,
  type BufferOutcome,
  type ConnectionResult,
  type GaugeSource,
  type MetricName,
  type Metrics,
  type PublishClass,
} from "./metrics.ts";
export { createLogger, LOG_LEVELS, type LogFields, type Logger, type LoggerOptions, type LogLevel } from "./logger.ts";
export { redact, redactString, REDACTED, SENSITIVE_KEY } from "./redact.ts";
