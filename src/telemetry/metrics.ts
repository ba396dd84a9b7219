/**
 * Every Courier instrument, created once from one meter and handed around as a typed object.
 *
 * Names carry their unit (`_seconds`) because the JS Prometheus exporter adds no unit suffix while
 * the OTLP → Prometheus path does: with the unit in the name both paths give the same family name
 * and the dashboards read the same either way. Counters already end in `_total`, so neither path
 * appends it again.
 *
 * Why one file over 300 lines: it is the declarative list of every instrument with its description
 * and buckets, one place for METRIC_NAMES and the dashboards.
 */
import type { Attributes, Counter, Histogram, Meter, ObservableGauge } from "@opentelemetry/api";
import { buildInfo, type BuildInfo } from "./build-info.ts";
import type { LocalHistograms } from "./local-histograms.ts";
import { processMetrics } from "./process-metrics.ts";
import { Tally } from "./tally.ts";

/**
 * Histogram boundaries for in-process latencies, in seconds: 100 µs … 10 s, roughly ×2.5 per step.
 * Fan-out and serialization sit in the sub-millisecond buckets; the tail still has room for a GC pause.
 */
export const LATENCY_BUCKETS_S = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

/**
 * Boundaries for waits on something remote (a client's ack, the agent backend, an HTTP request
 * that stores durably): 1 ms … 30 s, because rpc budgets and confirmation timeouts reach 15 s.
 */
export const REMOTE_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30,
] as const;

/**
 * Boundaries for connects, from the upgrade request (before the token is verified) to `welcome`:
 * 100 µs … 15 s. Measured on our 2-core box (load ≈ 9), 32 local connects took 1–10 ms, 27 of
 * them 1–2 ms, so the low milliseconds are split finely; the top reaches the 10–15 s at which a
 * slow connect is an alert.
 */
export const CONNECT_BUCKETS_S = [
  0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15,
] as const;

/** Boundaries for agent runs (start to terminal event): 100 ms … 2 min; runs time out at 15 s by default. */
export const RUN_BUCKETS_S = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 60, 120] as const;

/** Outcome of one upgrade attempt (`courier_connection_attempts_total{result}`). */
export type ConnectionResult = "accepted" | "unauthorized" | "rate_limited" | "user_limit" | "unavailable" | "forbidden";
/** Outcome of a buffered event (`courier_buffer_events_total{outcome}`). */
export type BufferOutcome = "critical_kept" | "noncritical_dropped" | "overflow";
/** How an agent run ended (`courier_agent_runs_total{result}`). */
export type AgentRunResult = "completed" | "failed" | "timed_out";
/** Durability class of a publish. */
export type PublishClass = "critical" | "normal";

/**
 * The instruments, by role. Record in aggregate: one `add(n)` per batch, never one call per
 * delivery. Durations are in seconds. Counters are tallies (tally.ts): a Map lookup per `add`
 * (~0.05 µs), read by observable counters at collection. Histograms are local-histograms.ts's when
 * the readers were given its producers (createTelemetry, startOtelSdk): a frozen, reused attributes
 * object finds its cell by identity, where the SDK's own histogram sorts and JSON-hashes the
 * attributes on every `record` (~0.34 µs with four keys). With telemetry disabled, ~10 ns.
 *
 * @example
 * ```ts
 * metrics.publishes.add(batch.length, { kind: "job", class: "critical" });
 * metrics.deliveries.add(subscriberCount * batch.length);
 * metrics.fanoutLatency.record((performance.now() - acceptedAtMs) / 1000);
 * ```
 */
export interface Metrics {
  /** Upgrade attempts by outcome, counted once each, refusals included. */
  readonly connectionAttempts: Counter<{ result: ConnectionResult }>;
  /** Upgrade request received → `welcome` sent. */
  readonly connectDuration: Histogram;
  /** Accepted publishes by channel kind and durability class. */
  readonly publishes: Counter<{ kind: string; class: PublishClass }>;
  /** Local subscribers × events, added once per fan-out batch. */
  readonly deliveries: Counter;
  /** Publish accepted → `server.publish` called. */
  readonly fanoutLatency: Histogram;
  /** Critical events confirmed by a client ack, or given up on. */
  readonly confirmations: Counter<{ result: "confirmed" | "timed_out" }>;
  /** Publish → client ack, critical events only. */
  readonly confirmationTime: Histogram;
  /** `?session=` resumes that found (hit) or did not find (miss) their session. */
  readonly sessionResumes: Counter<{ result: "hit" | "miss" }>;
  /** What the priority buffer did with events under pressure. */
  readonly bufferEvents: Counter<{ outcome: BufferOutcome }>;
  /** Connections closed 4409 as slow consumers. */
  readonly backpressureCloses: Counter;
  /** Frame serialization time by path (`fast` inline, `slow` guarded for large payloads). */
  readonly serializerDuration: Histogram<{ path: "fast" | "slow" }>;
  /** Slow-path serializations that overran their budget. */
  readonly serializerTimeouts: Counter;
  /** Agent rpc calls by method and result (`ok`, `error`, `timeout`, `unavailable`, …). */
  readonly rpcDuration: Histogram<{ method: string; result: string }>;
  /**
   * HTTP request duration with OpenTelemetry semantic-convention attributes; Prometheus shows them as
   * `http_request_method`, `http_route`, `http_response_status_code`. `http.route` is the route
   * template (`/v1/publish`), never the raw path, so cardinality stays bounded.
   */
  readonly httpRequestDuration: Histogram<{
    "http.request.method": string;
    "http.route": string;
    "http.response.status_code": number;
    "url.scheme"?: string;
    "error.type"?: string;
  }>;
  /** Client frames refused (`bad_request`, `rate_limited`, `too_large`, …). */
  readonly framesRejected: Counter<{ reason: string }>;
  /** WebSocket closes by close code. */
  readonly closes: Counter<{ code: number }>;
  /** Events sent by replays (resume, `since`), counted once per replay. */
  readonly replayedEvents: Counter;
  /** Agent runs by how they ended. */
  readonly agentRuns: Counter<{ result: AgentRunResult }>;
  /** Agent run start → terminal event (or the time-out), by result. */
  readonly agentRunDuration: Histogram<{ result: AgentRunResult }>;
  /** A resume or `since` subscribe → the end of its replay: how long a reconnecting client takes to catch up. */
  readonly recoveryDuration: Histogram;
  /** Agent streams started (PROTOCOL §8). */
  readonly streamsStarted: Counter;
  /** Agent streams ended, by status (`complete`, `cancelled`, `failed`). */
  readonly streamsEnded: Counter<{ status: string }>;
  /** Appends stored to agent streams (each `texts` item counts). */
  readonly streamAppends: Counter;
  /** `stream.snapshot` frames sent to joining subscribers. */
  readonly streamSnapshots: Counter;
  /** Their text, in characters (UTF-16 units): over `streamSnapshots`, the mean snapshot size. */
  readonly streamSnapshotChars: Counter;
}

/**
 * Values the observable gauges read at collection time (every scrape or OTLP export), so the hot path
 * pays nothing for them. Report every known key each time, zeros included: a key left out
 * disappears from the exposition rather than reading 0.
 */
export interface GaugeSource {
  /** Open connections per tier, e.g. `{ starter: 10, pro: 2, enterprise: 0 }`. */
  connectionsByTier(): Record<string, number>;
  /** Active subscriptions per channel kind. */
  subscriptionsByKind(): Record<string, number>;
  /** Breaker state per dependency: 0 closed, 1 half-open, 2 open (`CIRCUIT_STATE_VALUE` in src/resilience). */
  breakerStates(): Record<string, number>;
  /** Readiness: `value` 1 ready, 0 not; `status` names why (`ready`, `draining`, `store_down`, …). */
  ready(): { status: string; value: number };
  /** Jobs currently running. */
  jobsInFlight(): number;
}

/**
 * Prometheus family name of every instrument, as `/metrics` shows it. Histograms appear there as
 * `<name>_bucket`, `<name>_sum` and `<name>_count`.
 */
export const METRIC_NAMES = [
  "courier_connections",
  "courier_connection_attempts_total",
  "courier_connect_duration_seconds",
  "courier_publishes_total",
  "courier_deliveries_total",
  "courier_fanout_latency_seconds",
  "courier_confirmations_total",
  "courier_confirmation_seconds",
  "courier_session_resumes_total",
  "courier_buffer_events_total",
  "courier_backpressure_closes_total",
  "courier_serializer_duration_seconds",
  "courier_serializer_timeouts_total",
  "courier_breaker_state",
  "courier_ready",
  "courier_rpc_duration_seconds",
  "http_server_request_duration_seconds",
  "courier_frames_rejected_total",
  "courier_closes_total",
  "courier_subscriptions",
  "courier_jobs_in_flight",
  "courier_replayed_events_total",
  "courier_streams_started_total",
  "courier_streams_ended_total",
  "courier_stream_appends_total",
  "courier_stream_snapshots_total",
  "courier_stream_snapshot_chars_total",
  "courier_build_info",
  "courier_agent_runs_total",
  "courier_agent_run_duration_seconds",
  "courier_recovery_duration_seconds",
  "courier_process_resident_memory_bytes",
  "courier_process_heap_bytes",
  "courier_process_cpu_seconds_total",
  "courier_event_loop_delay_seconds",
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/**
 * Creates every instrument on `meter`. Pass `createNoopMeter()` for instruments that cost nothing.
 * The returned `observe` adds a gauge source and returns its removal; several sources may each
 * provide part of {@link GaugeSource} (readiness from one module, breakers from another).
 */
export function createMetrics(
  meter: Meter,
  build: BuildInfo = buildInfo(),
  local?: LocalHistograms,
): { metrics: Metrics; observe(source: Partial<GaugeSource>): () => void; histograms: readonly HistogramSpec[]; close(): void } {
  const histograms: HistogramSpec[] = [];
  /**
   * A histogram in seconds; `zero` lists the label sets shown with count 0 before any recording.
   * Kept by `local` when given (its producers are the readers'), else the meter's own.
   */
  const histogram = (name: string, description: string, buckets: readonly number[], zero: Attributes[] = [{}]) => {
    histograms.push({ name, description, unit: "s", boundaries: [...buckets], zero });
    if (local) return local.histogram({ name, description, unit: "s", boundaries: buckets });
    return meter.createHistogram(name, { description, unit: "s", advice: { explicitBucketBoundaries: [...buckets] } });
  };
  /** A counter counted in plain numbers and read at collection (tally.ts); `labels` are its attribute keys. */
  const counter = <A extends Attributes = Attributes>(name: string, description: string, labels: readonly (keyof A & string)[] = []) =>
    new Tally<A>(meter, name, labels, { description });

  const metrics: Metrics = {
    connectionAttempts: counter("courier_connection_attempts_total", "WebSocket upgrade attempts by result", ["result"]),
    connectDuration: histogram("courier_connect_duration_seconds", "Upgrade request (before token verification) to welcome frame", CONNECT_BUCKETS_S),
    publishes: counter("courier_publishes_total", "Accepted publishes by channel kind and class", ["kind", "class"]),
    deliveries: counter("courier_deliveries_total", "Events handed to local subscribers (subscribers x events)"),
    fanoutLatency: histogram("courier_fanout_latency_seconds", "Publish accepted to server.publish called", LATENCY_BUCKETS_S),
    confirmations: counter("courier_confirmations_total", "Critical event confirmations by result", ["result"]),
    confirmationTime: histogram("courier_confirmation_seconds", "Publish to client ack of critical events", REMOTE_BUCKETS_S),
    sessionResumes: counter("courier_session_resumes_total", "Session resume attempts by result", ["result"]),
    bufferEvents: counter("courier_buffer_events_total", "Priority buffer events by outcome", ["outcome"]),
    backpressureCloses: counter("courier_backpressure_closes_total", "Slow consumers closed 4409"),
    serializerDuration: histogram("courier_serializer_duration_seconds", "Frame serialization time by path", LATENCY_BUCKETS_S, [{ path: "fast" }, { path: "slow" }]),
    serializerTimeouts: counter("courier_serializer_timeouts_total", "Slow-path serializations over budget"),
    rpcDuration: histogram("courier_rpc_duration_seconds", "Agent rpc duration by method and result", REMOTE_BUCKETS_S, [{ method: "agent.run", result: "ok" }]),
    // The semantic-convention name; telemetry.ts appends `_seconds` for Prometheus like the OTLP path does.
    httpRequestDuration: histogram("http.server.request.duration", "Duration of HTTP server requests", REMOTE_BUCKETS_S, [
      { "http.request.method": "POST", "http.route": "/v1/publish", "http.response.status_code": 200, "url.scheme": "http" },
    ]),
    framesRejected: counter("courier_frames_rejected_total", "Client frames rejected by reason", ["reason"]),
    closes: counter("courier_closes_total", "WebSocket closes by code", ["code"]),
    replayedEvents: counter("courier_replayed_events_total", "Events sent by replays"),
    agentRuns: counter("courier_agent_runs_total", "Agent runs by result: completed, failed, timed_out", ["result"]),
    agentRunDuration: histogram("courier_agent_run_duration_seconds", "Agent run start to its terminal event, by result", RUN_BUCKETS_S, [
      { result: "completed" },
      { result: "failed" },
      { result: "timed_out" },
    ]),
    recoveryDuration: histogram("courier_recovery_duration_seconds", "Resume or since-subscribe to the end of its replay", LATENCY_BUCKETS_S),
    streamsStarted: counter("courier_streams_started_total", "Agent streams started"),
    streamsEnded: counter("courier_streams_ended_total", "Agent streams ended by status", ["status"]),
    streamAppends: counter("courier_stream_appends_total", "Appends stored to agent streams"),
    streamSnapshots: counter("courier_stream_snapshots_total", "Stream snapshots sent to joining subscribers"),
    streamSnapshotChars: counter("courier_stream_snapshot_chars_total", "Characters of text in stream snapshots sent"),
  };

  const gauges = {
    connections: meter.createObservableGauge("courier_connections", { description: "Open connections by tier" }),
    subscriptions: meter.createObservableGauge("courier_subscriptions", { description: "Active subscriptions by channel kind" }),
    breakerState: meter.createObservableGauge("courier_breaker_state", { description: "Circuit breaker state: 0 closed, 1 half-open, 2 open" }),
    ready: meter.createObservableGauge("courier_ready", { description: "1 when every readiness check passes, else 0" }),
    jobsInFlight: meter.createObservableGauge("courier_jobs_in_flight", { description: "Jobs currently running" }),
  };

  // The usual Prometheus idiom: value 1, the facts in labels, so `* on() group_left(version)` can join them.
  meter
    .createObservableGauge("courier_build_info", { description: "Always 1; labels say which version, commit and Bun are running" })
    .addCallback((result) => result.observe(1, { version: build.version, commit: build.commit, bun: build.bun }));

  const stopProcess = processMetrics(meter);

  const sources = new Set<Partial<GaugeSource>>();
  // One batch callback reads every source; each read is guarded so a throwing source blanks only
  // its own gauge, never the others or the scrape.
  meter.addBatchObservableCallback((result) => {
    for (const source of sources) {
      observeRecord(result, gauges.connections, source.connectionsByTier, "tier");
      observeRecord(result, gauges.subscriptions, source.subscriptionsByKind, "kind");
      observeRecord(result, gauges.breakerState, source.breakerStates, "dependency");
      if (source.ready) {
        const ready = safely(source.ready);
        if (ready) result.observe(gauges.ready, ready.value, { status: ready.status });
      }
      if (source.jobsInFlight) {
        const jobs = safely(source.jobsInFlight);
        if (typeof jobs === "number") result.observe(gauges.jobsInFlight, jobs);
      }
    }
  }, Object.values(gauges));

  return {
    metrics,
    observe(source) {
      sources.add(source);
      return () => void sources.delete(source);
    },
    histograms,
    close: stopProcess,
  };
}

/**
 * A histogram as `createMetrics` made it, and the label sets it shows at count 0 before its first
 * recording. The OpenTelemetry JS SDK exports a histogram only once something was recorded
 * (checked on sdk-metrics 3.1: an unrecorded histogram is absent from `collect()`), and recording a
 * fake value would lie; `/metrics` adds these zero-count series instead (telemetry.ts). OTLP pushes
 * carry only what was recorded.
 */
export interface HistogramSpec {
  name: string;
  description: string;
  unit: string;
  boundaries: number[];
  zero: Attributes[];
}

type BatchResult = Parameters<Parameters<Meter["addBatchObservableCallback"]>[0]>[0];

function observeRecord(result: BatchResult, gauge: ObservableGauge, read: (() => Record<string, number>) | undefined, label: string) {
  if (!read) return;
  const values = safely(read);
  if (!values) return;
  for (const [key, value] of Object.entries(values)) result.observe(gauge, value, { [label]: key });
}

function safely<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}
