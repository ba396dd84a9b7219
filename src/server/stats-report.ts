/** The `/ws/stats` body of this node (and what it reports into a cluster engine). */
import type { ConnectionManager } from "../connection/manager.ts";
import type { Hub } from "../delivery/hub.ts";
import type { CircuitBreaker, ReadinessGate } from "../resilience/index.ts";
import type { ExtensionSet } from "./extension.ts";
import type { NodeStats } from "./node-stats.ts";

/** The parts a stats report reads; nothing here counts anything itself. */
export interface StatsSources {
  node: string | undefined;
  engine: string;
  gate: ReadinessGate;
  manager: Pick<ConnectionManager, "size" | "users" | "byTier">;
  hub: Pick<Hub<unknown>, "bufferStats" | "subscriptionsByKind">;
  stats: NodeStats;
  breakers: () => readonly CircuitBreaker[];
  extensions: Pick<ExtensionSet, "stats">;
}

/**
 * Reads every source once.
 *
 * @example
 * json(statsReport(sources)) // { node, engine, status, readiness, connections, … }
 */
export function statsReport(s: StatsSources): Record<string, unknown> {
  const buffer = s.hub.bufferStats();
  const { stats } = s;
  return {
    node: s.node,
    engine: s.engine,
    status: s.gate.phase,
    readiness: s.gate.lastResult?.status ?? "unknown",
    connections: s.manager.size,
    users: s.manager.users,
    byTier: s.manager.byTier(),
    subscriptions: s.hub.subscriptionsByKind(),
    publishes: stats.publishes,
    resumes: { hits: stats.resumeHits, misses: stats.resumeMisses },
    confirmations: stats.confirmations(),
    buffer: {
      criticalKept: buffer.criticalKept,
      nonCriticalDropped: buffer.nonCriticalDropped + stats.trimmedDropped,
      overflows: buffer.overflows,
      bytes: buffer.bytes,
      channels: buffer.channels,
    },
    slowConsumerCloses: stats.slowConsumerCloses,
    rejectedFrames: stats.rejectedFrames,
    refusedUpgrades: stats.refusedUpgrades,
    breakers: Object.fromEntries(s.breakers().map((b) => [b.name, b.snapshot()])),
    ...s.extensions.stats(),
  };
}
