/**
 * The server's outcomes, each counted once where it happens, never per delivery: the one place
 * that turns them into `/ws/stats` counters, OpenTelemetry instruments and extension hooks. The
 * upgrade, the WebSocket handler, the hub, the sweeps and the body readers call it; before this
 * file the same wiring was written as closures in three places of `app.ts`.
 */
import type { ConnData } from "../connection/conn-data.ts";
import type { AckOutcome } from "../delivery/critical-tracker.ts";
import { CloseCode } from "../protocol/codes.ts";
import { STREAM_STATUSES } from "../protocol/streams.ts";
import type { ConnectionManager } from "../connection/manager.ts";
import type { Hub } from "../delivery/hub.ts";
import { CIRCUIT_STATE_VALUE, type CircuitBreaker, type ReadinessGate } from "../resilience/index.ts";
import type { ConnectionResult, GaugeSource, Metrics } from "../telemetry/index.ts";
import { AfterWrites } from "./after-writes.ts";
import type { ExtensionSet } from "./extension.ts";
import type { NodeStats } from "./node-stats.ts";

/** Every outcome the server reports. */
export interface ServerEvents {
  upgradeRefused(reason: string): void;
  resumed(hit: boolean): void;
  opened(data: ConnData, connectMs: number): void;
  closed(data: ConnData, code: number): void;
  /** A frame refused (bad JSON, rate limit, …); the connection may stay. */
  rejected(reason: string): void;
  confirmed(outcome: AckOutcome): void;
  rpc(method: string, result: string, ms: number): void;
  serialized(path: "fast" | "slow", ms: number): void;
  serializeTimedOut(): void;
  /** One hub fan-out batch of `events` to `subscribers` local subscribers. */
  fannedOut(events: number, subscribers: number, latencyMs: number): void;
  replayed(events: number): void;
  streamStarted(): void;
  streamEnded(status: string): void;
  streamAppended(count: number): void;
  /** A joining subscriber got a `stream.snapshot` of `textLength` characters. */
  streamSnapshot(textLength: number): void;
  /** A sweep closed a connection (slow consumer, stale, unconfirmed critical events). */
  sweptClose(code: CloseCode, detail?: { unconfirmed?: number }): void;
  /** Critical events past the confirmation timeout without an ack, each reported once. */
  confirmTimedOut(events: number): void;
  /** A resume or `since` subscribe finished its replay `ms` after it began. */
  recovered(ms: number): void;
}

/**
 * The attributes of `serialized`, recorded once per publish: built once. The SDK still hashes them
 * on every record (metrics.ts says what that costs); this saves only the object.
 */
const SERIALIZER_PATHS = { fast: Object.freeze({ path: "fast" }), slow: Object.freeze({ path: "slow" }) } as const;

/**
 * The events of one server, recorded into `metrics` and `stats` and passed on to `extensions`. The
 * two a publish reports in its own turn (`serialized` before its `server.publish`, `fannedOut`
 * after) are recorded by `later`, once the turn's writes are out (after-writes.ts).
 *
 * @example
 * const events = serverEvents(telemetry.metrics, stats, extensions);
 * events.rejected("bad_json");
 */
export function serverEvents(
  metrics: Metrics,
  stats: NodeStats,
  extensions: Pick<ExtensionSet, "connectionOpened" | "connectionClosed">,
  later: AfterWrites = new AfterWrites(),
): ServerEvents {
  return {
    upgradeRefused(reason) {
      stats.refusedUpgrades++;
      metrics.connectionAttempts.add(1, { result: reason as ConnectionResult });
    },
    resumed(hit) {
      if (hit) stats.resumeHits++;
      else stats.resumeMisses++;
      metrics.sessionResumes.add(1, { result: hit ? "hit" : "miss" });
    },
    opened(data, connectMs) {
      metrics.connectionAttempts.add(1, { result: "accepted" });
      metrics.connectDuration.record(connectMs / 1000);
      extensions.connectionOpened(data);
    },
    closed(data, code) {
      metrics.closes.add(1, { code });
      extensions.connectionClosed(data);
    },
    rejected(reason) {
      stats.rejectedFrames++;
      metrics.framesRejected.add(1, { reason });
    },
    confirmed(outcome) {
      stats.confirmed += outcome.confirmed;
      stats.confirmTotalMs += outcome.totalMs;
      metrics.confirmations.add(outcome.samplesMs.length, { result: "confirmed" });
      for (const ms of outcome.samplesMs) metrics.confirmationTime.record(ms / 1000);
    },
    rpc(method, result, ms) {
      metrics.rpcDuration.record(ms / 1000, { method: method.slice(0, 32), result });
    },
    serialized(path, ms) {
      later.run(() => metrics.serializerDuration.record(ms / 1000, SERIALIZER_PATHS[path]));
    },
    serializeTimedOut() {
      metrics.serializerTimeouts.add(1);
    },
    fannedOut(events, subscribers, latencyMs) {
      later.run(() => {
        if (subscribers > 0) metrics.deliveries.add(events * subscribers);
        metrics.fanoutLatency.record(Math.max(0, latencyMs) / 1000);
      });
    },
    replayed(events) {
      metrics.replayedEvents.add(events);
    },
    streamStarted() {
      metrics.streamsStarted.add(1);
    },
    streamEnded(status) {
      metrics.streamsEnded.add(1, { status });
    },
    streamAppended(count) {
      metrics.streamAppends.add(count);
    },
    streamSnapshot(textLength) {
      metrics.streamSnapshots.add(1);
      metrics.streamSnapshotChars.add(textLength);
    },
    sweptClose(code, detail) {
      if (code === CloseCode.SlowConsumer) {
        stats.slowConsumerCloses++;
        metrics.backpressureCloses.add(1);
      }
      // Events not yet counted by the time-out sweep (delivered less than the timeout ago) are
      // given up on with the connection.
      if (code === CloseCode.Stale && detail?.unconfirmed) this.confirmTimedOut(detail.unconfirmed);
    },
    confirmTimedOut(events) {
      stats.timedOut += events;
      metrics.confirmations.add(events, { result: "timed_out" });
    },
    recovered(ms) {
      metrics.recoveryDuration.record(Math.max(0, ms) / 1000);
    },
  };
}

/** Channel kinds of PROTOCOL §4 with a permission rule; other kinds appear once used. */
const KNOWN_KINDS = ["user", "job", "signals", "public"] as const;
/** Every reason the WebSocket handler rejects a frame with (`events.rejected`). */
const REJECT_REASONS = [
  "bad_json", "too_deep", "not_object", "unknown_type", "invalid", "bad_channel", "binary", "rate_limited",
  "too_large", "subscriptions_limit", "ack_unsubscribed", "cancel_unsubscribed",
] as const;

/** Series that should read 0 rather than be absent until their first event. */
export function zeroSeries(metrics: Metrics): void {
  for (const result of ["accepted", "unauthorized", "rate_limited", "user_limit", "unavailable", "forbidden"] as const) metrics.connectionAttempts.add(0, { result });
  for (const kind of KNOWN_KINDS) for (const cls of ["critical", "normal"] as const) metrics.publishes.add(0, { kind, class: cls });
  for (const reason of REJECT_REASONS) metrics.framesRejected.add(0, { reason });
  for (const result of ["completed", "failed", "timed_out"] as const) metrics.agentRuns.add(0, { result });
  for (const code of Object.values(CloseCode)) metrics.closes.add(0, { code });
  for (const result of ["confirmed", "timed_out"] as const) metrics.confirmations.add(0, { result });
  for (const result of ["hit", "miss"] as const) metrics.sessionResumes.add(0, { result });
  for (const outcome of ["critical_kept", "noncritical_dropped", "overflow"] as const) metrics.bufferEvents.add(0, { outcome });
  metrics.backpressureCloses.add(0);
  metrics.serializerTimeouts.add(0);
  metrics.replayedEvents.add(0);
  metrics.deliveries.add(0);
  metrics.streamsStarted.add(0);
  metrics.streamAppends.add(0);
  metrics.streamSnapshots.add(0);
  metrics.streamSnapshotChars.add(0);
  for (const status of STREAM_STATUSES) metrics.streamsEnded.add(0, { status });
}

/** The parts the observable gauges read at each scrape or export. */
export interface GaugeParts {
  manager: Pick<ConnectionManager, "byTier">;
  hub: Pick<Hub<unknown>, "subscriptionsByKind">;
  breakers: () => readonly CircuitBreaker[];
  gate: ReadinessGate;
  extensions: Pick<ExtensionSet, "jobsInFlight">;
}

/**
 * The gauges' source for `telemetry.observe`.
 *
 * @example
 * telemetry.observe(gaugeSource({ manager, hub, breakers: () => breakers, gate, extensions }));
 */
export function gaugeSource({ manager, hub, breakers, gate, extensions }: GaugeParts): GaugeSource {
  return {
    connectionsByTier: () => manager.byTier(),
    subscriptionsByKind: () => ({ ...Object.fromEntries(KNOWN_KINDS.map((kind) => [kind, 0])), ...hub.subscriptionsByKind() }),
    breakerStates: () =>
      Object.fromEntries(
        breakers().map((b) => {
          const s = b.snapshot();
          return [s.name, CIRCUIT_STATE_VALUE[s.state]];
        }),
      ),
    ready: () => ({ status: gate.phase === "ready" ? (gate.lastResult?.status ?? "ready") : gate.phase, value: gate.accepting() ? 1 : 0 }),
    jobsInFlight: () => extensions.jobsInFlight(),
  };
}
