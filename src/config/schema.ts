/**
 * The one config schema: every field documented here, with its default. `config/<env>.json` holds
 * only overrides; the env vars of PROTOCOL.md §1 override both (see `load.ts`). Every object is
 * strict, so a misspelt key is an error rather than a silently ignored setting. The descriptions
 * (`.meta`) become `config/schema.json` (`bun run config:schema`), which editors use to check the
 * config files.
 */
import { z } from "zod";
import { TIERS } from "../protocol/codes.ts";
import { isIpOrCidr } from "../server/client-ip.ts";

const ms = (d: number) => z.number().int().min(0).default(d);
const positive = (d: number) => z.number().int().min(1).default(d);

export const ENVIRONMENTS = ["development", "test", "staging", "production"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export const ConfigSchema = z
  .strictObject({
    $schema: z.string().optional().describe("The JSON Schema the file follows (`./schema.json`); editors read it, Courier ignores it."),
    env: z.enum(ENVIRONMENTS).default("development").describe("Which environment this is (`COURIER_ENV`)."),
    server: z
      .strictObject({
        host: z.string().default("0.0.0.0").describe("Listen address (`HOST`)."),
        port: z.number().int().min(0).max(65535).default(8080).describe("Listen port (`PORT`); 0 picks a free one."),
        heartbeatS: z.number().int().min(4).max(300).default(15).describe("Seconds between server pings (`welcome.heartbeat`); a client silent for twice this is closed."),
        drainMs: ms(10_000).describe("How long SIGTERM may take before the process exits."),
        drainSpreadMs: ms(5_000).describe("`reconnect.after` hints are spread over this window so clients do not return at once."),
        retryAfterS: positive(2).describe("`Retry-After` seconds on 503 answers."),
        allowedOrigins: z.array(z.string()).default([]).describe("Browser origins allowed to upgrade; empty means any."),
        metricsPort: z.number().int().min(0).max(65535).optional().describe("Serve `/metrics` only on this port (bound to `host`), not on `port` (`COURIER_METRICS_PORT`)."),
        drainGraceMs: ms(2_000).describe("After SIGTERM, how long the listener keeps answering (503 + `Retry-After` to new work) before it closes."),
        trustedProxies: z
          .array(z.string().refine(isIpOrCidr, "expected an IP address or CIDR"))
          .default([])
          .describe("Proxies (IPs or CIDRs) whose `X-Forwarded-For` is believed; empty: the socket peer is the client."),
      })
      .prefault({}),
    limits: z
      .strictObject({
        connectionsPerUser: positive(3).describe("Concurrent connections per user (PROTOCOL §3: 3 in every shipped config)."),
        connectionsPerNode: positive(1_000).describe("Connections this node accepts before answering 503."),
        maxFrameBytes: positive(64 * 1024).describe("Largest client frame in bytes; larger closes 1009."),
        maxPublishBodyBytes: positive(1024 * 1024).describe("Largest publish body in bytes; larger answers 413."),
        maxJsonDepth: positive(32).describe("Deepest JSON nesting accepted in a client frame."),
        subscriptionsPerConnection: positive(100).describe("Channels one connection may join."),
        batchMaxItems: positive(100).describe("Items in one batch publish."),
        framesPerSecond: positive(50).describe("Sustained client frames per second per connection."),
        frameBurst: positive(100).describe("Burst of client frames allowed above the rate."),
        rateLimitStrikes: positive(50).describe("Rate-limited frames tolerated before closing 4429."),
        acksPerSecond: positive(1_000).describe(
          "Sustained `ack` frames per second per connection, counted apart from `framesPerSecond`: a client acking every event of busy channels is never closed 4429.",
        ),
        ackBurst: positive(2_000).describe("Burst of `ack` frames allowed above `acksPerSecond`."),
        historyPerUserPerSec: positive(20).describe("Sustained `GET /v1/history` requests per second per user (429 with `Retry-After` past it)."),
        historyBurst: positive(100).describe(
          "Burst of `GET /v1/history` requests per user above `historyPerUserPerSec`: one polling round of a full connection (`subscriptionsPerConnection`) fits.",
        ),
        protocolErrorStrikes: positive(20).describe("Protocol errors tolerated per connection before closing 4400."),
        slowConsumerBytes: positive(4 * 1024 * 1024).describe("Bytes queued to one socket before it is a slow consumer (closed 4409)."),
        upgradesPerIpPerSec: positive(50).describe("WebSocket upgrades per second from one client IP, counted before the token is verified."),
        maxEventFrameBytes: positive(1_048_000).describe(
          "Largest `event` frame a publish may produce, in bytes; larger answers 413. " +
            "Below the 1 MiB default frame limit of common clients (Python `websockets`), so no event can poison a resume.",
        ),
      })
      .prefault({}),
    auth: z
      .strictObject({
        jwtSecret: z.string().min(16).optional().describe("HS256 secret for user tokens (`COURIER_JWT_SECRET`)."),
        jwksUrl: z.url().optional().describe("JWKS URL for RS256/ES256 tokens (`COURIER_JWKS_URL`)."),
        apiKey: z.string().min(16).optional().describe("Key for the publish API (`COURIER_API_KEY`)."),
        adminKey: z.string().min(16).optional().describe("Key for admin routes (`COURIER_ADMIN_KEY`); defaults to the API key."),
        audience: z.string().optional().describe("Required `aud` claim, when set."),
        issuer: z.string().optional().describe("Required `iss` claim, when set."),
        clockToleranceS: z.number().int().min(0).max(300).default(5).describe("Clock skew tolerated on `exp`/`nbf`, in seconds."),
        devTokenTtlS: positive(3600).describe("Lifetime of tokens made by `/dev/token` and `bun run token`."),
        tiers: z.record(z.string(), z.enum(TIERS)).default({}).describe("Tier per user, used when a token carries no `tier` claim."),
      })
      .prefault({}),
    delivery: z
      .strictObject({
        criticalEvents: z
          .array(z.string())
          .default(["agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed", "agent_failed"])
          .describe("Event names that are critical whatever the publisher says."),
        historySize: positive(1_000).describe("Non-critical events retained per channel."),
        historyTtlMs: ms(60 * 60 * 1000).describe("Age after which non-critical events leave history."),
        criticalRetentionMs: ms(24 * 60 * 60 * 1000).describe("Critical events are kept at least this long."),
        memoryCapBytes: positive(64 * 1024 * 1024).describe("Memory for recent events across all channels; past it, events spill to the store."),
        recentPerChannel: positive(256).describe("Recent events kept in memory per channel for fast catch-up."),
        replayLimit: positive(10_000).describe("Most events one replay sends."),
        confirmTimeoutMs: ms(5_000).describe("Unacknowledged critical events older than this trigger a ping probe."),
        probeTimeoutMs: ms(5_000).describe("After a probe, a pong must come within this, or the connection is closed 4408."),
        resumeWindowMs: ms(120_000).describe("How long a disconnected session can be resumed."),
        idempotencyTtlMs: ms(5 * 60 * 1000).describe("How long an `Idempotency-Key` answers the first offset."),
        slowPathBytes: positive(256 * 1024).describe("Payloads larger than this (bytes) are serialized on the guarded slow path."),
        serializeTimeoutMs: positive(1_000).describe("Slow-path serialization budget."),
      })
      .prefault({}),
    store: z
      .strictObject({
        dataDir: z.string().default("./data").describe("Where the embedded store lives (`COURIER_DATA_DIR`)."),
        cleanupIntervalMs: positive(30_000).describe("How often history is trimmed and expired state swept."),
        walLimitBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .default(16 * 1024 * 1024)
          .describe("Bound of the embedded store's `-wal` file in bytes (the checkpoint worker has the WAL start over from a sixteenth of it, the writer itself at a quarter)."),
        minFreeBytes: positive(1024 * 1024).describe("Below this much free space (bytes) on the data dir's filesystem, `/ready` answers 503."),
      })
      .prefault({}),
    cluster: z
      .strictObject({
        redisUrl: z.string().optional().describe("Redis URL (`COURIER_REDIS_URL`): set means cluster mode."),
        nodeId: z.string().min(1).max(128).optional().describe("This node's name (`COURIER_NODE_ID`); defaults to hostname + pid."),
        statsIntervalMs: positive(5_000).describe("How often a node reports its stats into Redis."),
        keyPrefix: z
          .string()
          .regex(/^[^{}\s]{1,64}$/, "expected 1-64 characters without braces or spaces")
          .default("courier")
          .describe("Prefix of every Redis key (`<prefix>:…`), so several deployments can share one Redis database."),
        heartbeatTtlMs: z
          .number()
          .int()
          .min(300)
          .default(3_000)
          .describe(
            "A node whose heartbeat is older than this is dead: its connection slots stop counting, so a user whose node crashed reconnects elsewhere within it. Nodes beat every third of it.",
          ),
        waitReplicas: z
          .number()
          .int()
          .min(0)
          .max(16)
          .default(0)
          .describe(
            "Redis replicas that must hold a critical publish before it answers 200 (`WAIT`, within the publish's command timeout; fewer answers 503 \"outcome unknown\"). 0: the primary's answer is enough.",
          ),
      })
      .prefault({}),
    resilience: z
      .strictObject({
        readinessBudgetMs: positive(5_000).describe("The whole `/ready` answer is bounded by this."),
        readinessGroupsMs: z
          .strictObject({
            store: positive(3_000).describe("Budget of the durable store's check."),
            broker: positive(2_000).describe("Budget of the cluster broker's (Redis) check."),
            optional: positive(1_000).describe("Budget of optional checks (a failure there only makes the node `degraded`)."),
          })
          .prefault({})
          .describe("Per-check timeouts, by group."),
        breakerFailures: positive(5).describe("Failures within `breakerWindowMs` that open a breaker."),
        breakerWindowMs: positive(10_000).describe("The window in which `breakerFailures` are counted."),
        breakerRecoveryMs: positive(2_000).describe(
          "How long an open breaker waits before a half-open probe. Kept at `server.retryAfterS`: a longer wait answers 503 to clients that retried when `Retry-After` told them to (a store outage's 503 advertises at least what is left of it, and a passing store check closes it at once).",
        ),
      })
      .prefault({}),
    agent: z
      .strictObject({
        url: z.url().optional().describe("Agent backend URL for `rpc` frames; unset uses the built-in demo agent."),
        rpcTimeoutMs: positive(15_000).describe("Budget for one rpc call."),
        executionTimeoutMs: positive(15_000).describe("A run with no terminal event within this gets a critical `agent_failed`."),
        trackPublishedRuns: z
          .boolean()
          .default(false)
          .describe("Also time out runs whose `agent_started {run}` a backend published itself (default: only runs the server started through `rpc`)."),
        demoStepMs: ms(150).describe("Pacing of the demo agent's steps."),
      })
      .prefault({}),
    jobs: z
      .strictObject({
        simulatorSpeed: z.number().positive().max(1000).default(1).describe("Multiplies the simulator's stage durations (1 = the seeds' ~12 s pipeline)."),
      })
      .prefault({}),
    telemetry: z
      .strictObject({
        enabled: z.boolean().default(true).describe("Metrics on or off (off only for benchmarking their cost)."),
        otlpEndpoint: z
          .url()
          .optional()
          .describe("OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`); set means metrics are also pushed (see README: Observability for `OTEL_*`)."),
        otlpIntervalMs: positive(10_000).describe("OTLP push interval (`OTEL_METRIC_EXPORT_INTERVAL`)."),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(["debug", "info", "warn", "error", "silent"]).default("info").describe("Least severe level written."),
      })
      .prefault({}),
  });

export type Config = z.infer<typeof ConfigSchema>;
