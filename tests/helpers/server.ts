/**
 * Starts the real Courier on 127.0.0.1:0 with a temporary data dir, for integration tests.
 * Logs are captured (tests assert no secret reaches them).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { createEmbeddedEngine } from "../../src/engine/index.ts";
import type { Engine } from "../../src/engine/types.ts";
import { signToken } from "../../src/auth/tokens.ts";
import { startCourier, type Courier, type CourierDeps } from "../../src/server/app.ts";
import { createLogger, createTelemetry } from "../../src/telemetry/index.ts";
import { createExtensions } from "../../src/domain/index.ts";
import type { Tier } from "../../src/protocol/codes.ts";
import type { Scheduler } from "../../src/server/scheduler.ts";
import testConfig from "../../config/test.json";

export const API_KEY = "test-api-key-0123456789abcdef";
export const JWT_SECRET = "test-only-secret-0123456789abcdef";

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface TestServer {
  courier: Courier;
  config: Config;
  engine: Engine;
  http: string;
  ws: string;
  dataDir: string;
  logs: string[];
  token(user: string, claims?: { tier?: Tier; channels?: string[]; ttlS?: number }): Promise<string>;
  publish(body: Record<string, unknown>, headers?: Record<string, string>): Promise<Response>;
  stats(): Promise<Record<string, any>>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function merge(base: Record<string, any>, over: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = v && typeof v === "object" && !Array.isArray(v) ? merge(base[k] ?? {}, v) : v;
  }
  return out;
}

export interface StartOptions {
  config?: DeepPartial<Config>;
  dataDir?: string;
  engine?: (config: Config, dataDir: string) => Engine;
  extensions?: CourierDeps["extensions"];
  now?: () => number;
  /** The housekeeping timers (default: real ones); a `FakeScheduler` lets a test move time. */
  scheduler?: Scheduler;
  keepDataDir?: boolean;
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "courier-test-"));
  const config = parseConfig("test", merge(merge(testConfig, { store: { dataDir }, cluster: { nodeId: "test-node" } }), options.config ?? {}));
  const logs: string[] = [];
  const log = createLogger({ level: "debug", sink: (line) => logs.push(line) });
  const telemetry = createTelemetry({ enabled: true, nodeId: "test-node" });
  const now = options.now ?? Date.now;
  const engine =
    options.engine?.(config, dataDir) ??
    createEmbeddedEngine({
      dataDir,
      historySize: config.delivery.historySize,
      historyTtlMs: config.delivery.historyTtlMs,
      criticalRetentionMs: config.delivery.criticalRetentionMs,
      idempotencyTtlMs: config.delivery.idempotencyTtlMs,
      now,
    });
  const courier = await startCourier({ config, engine, log, telemetry, now, scheduler: options.scheduler, extensions: options.extensions ?? createExtensions });
  const http = `http://127.0.0.1:${courier.server.port}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await courier.stop();
    await telemetry.shutdown();
    if (!options.keepDataDir && !options.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  return {
    courier,
    config,
    engine,
    http,
    ws: `ws://127.0.0.1:${courier.server.port}/v1/ws`,
    dataDir,
    logs,
    token: (user, claims = {}) => {
      const body: { sub: string; tier?: Tier; channels?: string[] } = { sub: user };
      if (claims.tier) body.tier = claims.tier;
      if (claims.channels) body.channels = claims.channels;
      return signToken(JWT_SECRET, body, claims.ttlS ?? 3600);
    },
    publish: (body, headers = {}) =>
      fetch(`${http}/v1/publish`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json", ...headers }, body: JSON.stringify(body) }),
    stats: async () => (await (await fetch(`${http}/ws/stats`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as Record<string, any>,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
