/**
 * The scenario list and its two profiles. Quick keeps every scenario but shrinks counts so the whole
 * run takes under two minutes; full uses the sizes the goals are stated at.
 */
import type { WorkerJob } from "../load/worker.ts";
import { COURIER_TEST_API_KEY, COURIER_TEST_JWT_SECRET, type TargetKind } from "./target.ts";

export type Profile = "quick" | "full";

export interface Scenario {
  id: string;
  title: string;
  /** What it measures, for the report. */
  measures: string;
  job: WorkerJob["scenario"];
  params: Record<string, unknown>;
  targets: TargetKind[];
  timeoutMs: number;
  /** Extra env for Courier, with the reason printed in the report. */
  courierEnv?: { env: Record<string, string>; why: string };
}

/**
 * config/test.json caps a node at 1,000 connections; staging allows 20,000 and is otherwise the same
 * server, given the test secrets explicitly (staging refuses to start without them).
 */
const MANY_CONNECTIONS = {
  // Staging keeps the production limit of 50 upgrades/s per address, and every bench client is 127.0.0.1.
  env: { COURIER_ENV: "staging", COURIER_JWT_SECRET: COURIER_TEST_JWT_SECRET, COURIER_API_KEY: COURIER_TEST_API_KEY, COURIER_LIMITS__UPGRADES_PER_IP_PER_SEC: "100000" },
  why: "Courier ran with COURIER_ENV=staging: the test config caps a node at 1,000 connections",
};

const ALL: TargetKind[] = ["courier", "bare", "socketio"];

export function scenarios(profile: Profile): Scenario[] {
  const full = profile === "full";
  return [
    {
      id: "fanout-turn",
      title: "Fan-out, one publish per turn",
      measures: "deliveries/s to 1 channel × N subscribers, publishes sent one HTTP request at a time",
      job: "fanout",
      params: { subscribers: 1000, events: full ? 1000 : 200, burst: 1 },
      targets: ALL,
      timeoutMs: full ? 120_000 : 45_000,
    },
    {
      id: "fanout-burst",
      title: "Fan-out, bursts of 10",
      measures: "deliveries/s with 10 events per batch request (one server turn per 10 events)",
      job: "fanout",
      params: { subscribers: 1000, events: full ? 1000 : 200, burst: 10 },
      targets: ALL,
      timeoutMs: full ? 120_000 : 45_000,
    },
    {
      id: "fanout-burst-notelemetry",
      title: "Fan-out, bursts of 10, telemetry off",
      measures: "the bursts scenario against Courier with every metric instrument a no-op: the cost of telemetry",
      job: "fanout",
      params: { subscribers: 1000, events: full ? 1000 : 200, burst: 10 },
      targets: ["courier"],
      timeoutMs: full ? 120_000 : 45_000,
      courierEnv: { env: { COURIER_TELEMETRY: "off" }, why: "Courier ran with COURIER_TELEMETRY=off" },
    },
    {
      id: "paced",
      title: "Paced 50k deliveries/s",
      measures: "latency at a steady 50k deliveries/s offered (500 subscribers × 100 events/s): well below both Bun servers' capacity; Socket.IO saturates here on 2 cores",
      job: "paced",
      params: { subscribers: 500, ratePerSec: 100, seconds: full ? 10 : 3 },
      targets: ALL,
      timeoutMs: full ? 60_000 : 30_000,
    },
    {
      id: "idle",
      title: "Idle connections",
      measures: "server RSS per connected, subscribed, silent client",
      job: "idle",
      // Fewer than a few thousand connections measure the heap's step growth, not a connection's cost.
      params: { connections: full ? 10_000 : 5_000, settleMs: full ? 2_000 : 1_000 },
      targets: ALL,
      timeoutMs: full ? 120_000 : 60_000,
      courierEnv: MANY_CONNECTIONS,
    },
    {
      id: "roundtrip",
      title: "5 users × round trips",
      measures: "ping frame → pong on 5 connections, paced at 40/s each (Courier: also rpc agent.run)",
      job: "roundtrip",
      params: { users: 5, trips: full ? 200 : 60, intervalMs: 25, rpcs: full ? 20 : 5 },
      targets: ALL,
      timeoutMs: 60_000,
    },
    {
      id: "storm",
      title: "Connect storm",
      measures: "time until N clients are welcomed, 500 handshakes in flight",
      job: "storm",
      params: { connections: full ? 10_000 : 1_000, concurrency: 500 },
      targets: ALL,
      timeoutMs: full ? 120_000 : 45_000,
      courierEnv: full ? MANY_CONNECTIONS : undefined,
    },
    {
      id: "publish",
      title: "Publish API, non-critical",
      measures: "single HTTP publishes/s, 8 in flight, no subscribers",
      job: "publish",
      params: { count: full ? 30_000 : 6_000, concurrency: 8, critical: false, warmup: full ? 5_000 : 2_000 },
      targets: ALL,
      timeoutMs: 60_000,
    },
    {
      id: "publish-critical",
      title: "Publish API, critical",
      measures: "the same with critical:true (stored durably before the 200)",
      job: "publish",
      params: { count: full ? 30_000 : 6_000, concurrency: 8, critical: true, warmup: full ? 5_000 : 2_000 },
      targets: ["courier"],
      timeoutMs: 60_000,
    },
    {
      id: "streams",
      title: "Agent streams",
      measures: "1 stream channel × 100 subscribers, appends in texts batches of 10 vs the same tokens through /v1/publish/batch (same run); joining a stream of 10,000 appends",
      job: "streams",
      params: { subscribers: 100, tokens: full ? 20_000 : 5_000, joinAppends: 10_000, joins: full ? 200 : 50 },
      targets: ["courier"],
      timeoutMs: full ? 120_000 : 90_000,
    },
    {
      id: "resume",
      title: "Resume after kill -9",
      measures: "1,000 clients on their own channels reconnect with since after SIGKILL + restart",
      job: "resume",
      params: { clients: 1000, liveEvents: full ? 5 : 2, missedEvents: full ? 10 : 3 },
      targets: ["courier"],
      timeoutMs: 90_000,
    },
  ];
}

/** `--soak`: Courier under steady churn for `minutes`, sampled every minute (every 10 s when shorter than 3 minutes). */
export function soakScenario(minutes: number): Scenario {
  return {
    id: "soak",
    title: `Soak, ${minutes} min of churn`,
    measures: "server RSS and CPU per sample while 500 clients stay and 100 users a second come and go",
    job: "soak",
    params: { minutes, sampleEveryMs: minutes >= 3 ? 60_000 : 10_000, base: 500, churn: 100, eventsPerCycle: 20 },
    targets: ["courier"],
    timeoutMs: minutes * 60_000 + 60_000,
  };
}
