/**
 * The one config schema: every field documented here, with its default. `config/<env>.json` holds
 * only overrides; the env vars of PROTOCOL.md §1 override both (see `load.ts`).
 */
import { z } from "zod";
import { TIERS } from "../protocol/codes.ts";

const ms = (d: number) => z.number().int().min(0).default(d);
const positive = (d: number) => z.number().int().min(1).default(d);

export const ENVIRONMENTS = ["development", "test", "staging", "production"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export const ConfigSchema = z
  .object({
    /** Which environment this is (`COURIER_ENV`). */
    env: z.enum(ENVIRONMENTS).default("development"),
    server: z
      .object({
        /** Listen address (`HOST`). */
        host: z.string().default("0.0.0.0"),
        /** Listen port (`PORT`); 0 picks a free one. */
        port: z.number().int().min(0).max(65535).default(8080),
        /** Seconds between server pings (`welcome.heartbeat`); a client silent for twice this is closed. */
        heartbeatS: z.number().int().min(4).max(300).default(15),
        /** How long SIGTERM may take before the process exits. */
        drainMs: ms(10_000),
        /** `reconnect.after` hints are spread over this window so clients do not return at once. */
        drainSpreadMs: ms(5_000),
        /** `Retry-After` seconds on 503 answers. */
        retryAfterS: positive(2),
        /** Browser origins allowed to upgrade; empty means any. */
        allowedOrigins: z.array(z.string()).default([]),
      })
      .prefault({}),
    limits: z
      .object({
        /** Concurrent connections per user (PROTOCOL §3: 3 in every shipped config). */
        connectionsPerUser: positive(3),
        /** Connections this node accepts before answering 503. */
        connectionsPerNode: positive(1_000),
        /** Largest client frame in bytes; larger closes 1009. */
        maxFrameBytes: positive(64 * 1024),
        /** Largest publish body in bytes; larger answers 413. */
        maxPublishBodyBytes: positive(1024 * 1024),
        /** Deepest JSON nesting accepted in a client frame. */
        maxJsonDepth: positive(32),
        /** Channels one connection may join. */
        subscriptionsPerConnection: positive(100),
        /** Items in one batch publish. */
        batchMaxItems: positive(100),
        /** Sustained client frames per second per connection. */
        framesPerSecond: positive(50),
        /** Burst of client frames allowed above the rate. */
        frameBurst: positive(100),
        /** Rate-limited frames tolerated before closing 4429. */
        rateLimitStrikes: positive(50),
        /** Protocol errors tolerated per connection before closing 4400. */
        protocolErrorStrikes: positive(20),
        /** Bytes queued to one socket before it is a slow consumer (closed 4409). */
        slowConsumerBytes: positive(4 * 1024 * 1024),
      })
      .prefault({}),
    auth: z
      .object({
        /** HS256 secret for user tokens (`COURIER_JWT_SECRET`). */
        jwtSecret: z.string().min(16).optional(),
        /** JWKS URL for RS256/ES256 tokens (`COURIER_JWKS_URL`). */
        jwksUrl: z.url().optional(),
        /** Key for the publish API (`COURIER_API_KEY`). */
        apiKey: z.string().min(16).optional(),
        /** Key for admin routes (`COURIER_ADMIN_KEY`); defaults to the API key. */
        adminKey: z.string().min(16).optional(),
        /** Required `aud` claim, when set. */
        audience: z.string().optional(),
        /** Required `iss` claim, when set. */
        issuer: z.string().optional(),
        /** Clock skew tolerated on `exp`/`nbf`, in seconds. */
        clockToleranceS: z.number().int().min(0).max(300).default(5),
        /** Lifetime of tokens made by `/dev/token` and `bun run token`. */
        devTokenTtlS: positive(3600),
        /** Tier per user, used when a token carries no `tier` claim. */
        tiers: z.record(z.string(), z.enum(TIERS)).default({}),
      })
      .prefault({}),
    delivery: z
      .object({
        /** Event names that are critical whatever the publisher says. */
        criticalEvents: z
          .array(z.string())
          .default(["agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed", "agent_failed"]),
        /** Non-critical events retained per channel. */
        historySize: positive(1_000),
        /** Age after which non-critical events leave history. */
        historyTtlMs: ms(60 * 60 * 1000),
        /** Critical events are kept at least this long. */
        criticalRetentionMs: ms(24 * 60 * 60 * 1000),
        /** Memory for recent events across all channels; past it, events spill to the store. */
        memoryCapBytes: positive(64 * 1024 * 1024),
        /** Recent events kept in memory per channel for fast catch-up. */
        recentPerChannel: positive(256),
        /** Most events one replay sends. */
        replayLimit: positive(10_000),
        /** Unacknowledged critical events older than this trigger a ping probe. */
        confirmTimeoutMs: ms(5_000),
        /** After a probe, a pong must come within this, or the connection is closed 4408. */
        probeTimeoutMs: ms(5_000),
        /** How long a disconnected session can be resumed. */
        resumeWindowMs: ms(120_000),
        /** How long an `Idempotency-Key` answers the first offset. */
        idempotencyTtlMs: ms(5 * 60 * 1000),
        /** Payloads larger than this (bytes) are serialized on the guarded slow path. */
        slowPathBytes: positive(256 * 1024),
        /** Slow-path serialization budget. */
        serializeTimeoutMs: positive(1_000),
      })
      .prefault({}),
    store: z
      .object({
        /** Where the embedded store lives (`COURIER_DATA_DIR`). */
        dataDir: z.string().default("./data"),
        /** How often history is trimmed and expired state swept. */
        cleanupIntervalMs: positive(30_000),
      })
      .prefault({}),
    cluster: z
      .object({
        /** Redis URL (`COURIER_REDIS_URL`): set means cluster mode. */
        redisUrl: z.string().optional(),
        /** This node's name (`COURIER_NODE_ID`); defaults to hostname + pid. */
        nodeId: z.string().min(1).max(128).optional(),
        /** How often a node reports its stats into Redis. */
        statsIntervalMs: positive(5_000),
      })
      .prefault({}),
    resilience: z
      .object({
        /** The whole `/ready` answer is bounded by this. */
        readinessBudgetMs: positive(5_000),
        /** Per-check timeouts, by group. */
        readinessGroupsMs: z
          .object({ store: positive(3_000), broker: positive(2_000), optional: positive(1_000) })
          .prefault({}),
        /** Failures within `breakerWindowMs` that open a breaker. */
        breakerFailures: positive(5),
        breakerWindowMs: positive(10_000),
        /** How long an open breaker waits before a half-open probe. */
        breakerRecoveryMs: positive(10_000),
      })
      .prefault({}),
    agent: z
      .object({
        /** Agent backend URL for `rpc` frames; unset uses the built-in demo agent. */
        url: z.url().optional(),
        /** Budget for one rpc call. */
        rpcTimeoutMs: positive(15_000),
        /** A run with no terminal event within this gets a critical `agent_failed`. */
        executionTimeoutMs: positive(15_000),
        /** Pacing of the demo agent's steps. */
        demoStepMs: ms(150),
      })
      .prefault({}),
    jobs: z
      .object({
        /** Multiplies the simulator's stage durations (1 = the seeds' ~12 s pipeline). */
        simulatorSpeed: z.number().positive().max(1000).default(1),
      })
      .prefault({}),
    telemetry: z
      .object({
        /** Metrics on or off (off only for benchmarking their cost). */
        enabled: z.boolean().default(true),
        /** OTLP/HTTP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`); set means metrics are also pushed. */
        otlpEndpoint: z.url().optional(),
        otlpIntervalMs: positive(10_000),
      })
      .prefault({}),
    log: z
      .object({
        level: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    if (config.env !== "production" && config.env !== "staging") return;
    if (!config.auth.jwtSecret && !config.auth.jwksUrl) {
      ctx.addIssue({ code: "custom", path: ["auth", "jwtSecret"], message: `${config.env} requires COURIER_JWT_SECRET or COURIER_JWKS_URL` });
    }
    if (!config.auth.apiKey) {
      ctx.addIssue({ code: "custom", path: ["auth", "apiKey"], message: `${config.env} requires COURIER_API_KEY` });
    }
  });

export type Config = z.infer<typeof ConfigSchema>;
