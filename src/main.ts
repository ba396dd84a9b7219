/**
 * `bun run start`: the only place that builds real clocks, stores, meters and the scheduler. Loads the config
 * (exit 1 with one line naming the field when it is bad), picks the engine (Redis when
 * `COURIER_REDIS_URL` is set, else the embedded store), starts the server, drains on SIGTERM.
 */
import { ConfigError, loadConfig } from "./config/load.ts";
import type { Config } from "./config/schema.ts";
import { createEmbeddedEngine, type Engine } from "./engine/index.ts";
import { DataDirError } from "./engine/sqlite-dir-lock.ts";
import { startCourier } from "./server/app.ts";
import { systemScheduler } from "./server/scheduler.ts";
import { createLogger, type Logger } from "./telemetry/index.ts";
import { startOtelSdk } from "./telemetry/otel-sdk.ts";
import { createExtensions } from "./domain/index.ts";

async function createEngine(config: Config, log: Logger): Promise<Engine> {
  const options = {
    historySize: config.delivery.historySize,
    historyTtlMs: config.delivery.historyTtlMs,
    criticalRetentionMs: config.delivery.criticalRetentionMs,
    idempotencyTtlMs: config.delivery.idempotencyTtlMs,
    now: Date.now,
    log: (level: string, msg: string, fields?: object) => log[level === "error" ? "error" : level === "warn" ? "warn" : "info"](msg, fields as Record<string, unknown>),
  };
  if (config.cluster.redisUrl) {
    const { createRedisEngine } = await import("./engine/redis-engine.ts");
    const { nodeId, keyPrefix, heartbeatTtlMs, waitReplicas } = config.cluster;
    return createRedisEngine({ ...options, url: config.cluster.redisUrl, nodeId: nodeId!, keyPrefix: `${keyPrefix}:`, heartbeatTtlMs, waitReplicas });
  }
  const { dataDir, walLimitBytes, minFreeBytes } = config.store;
  return createEmbeddedEngine({ ...options, dataDir, walLimitBytes, minFreeBytes });
}

function describe(error: unknown): { name: string; message: string } {
  return error instanceof Error ? { name: error.name, message: error.message } : { name: "NonError", message: String(error).slice(0, 200) };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = await loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const log = createLogger({ level: config.log.level });
  // One stray promise must not take every connection down with it: log it (name and message only,
  // never a stack or a secret) and keep serving.
  process.on("unhandledRejection", (reason) => log.error("unhandled rejection", { error: describe(reason) }));
  process.on("uncaughtException", (error) => log.error("uncaught exception", { error: describe(error) }));
  const telemetry = await startOtelSdk({
    enabled: config.telemetry.enabled,
    nodeId: config.cluster.nodeId!,
    otlpEndpoint: config.telemetry.otlpEndpoint,
    otlpIntervalMs: config.telemetry.otlpIntervalMs,
    warn: (message, fields) => log.warn(message, fields),
  });
  const engine = await createEngine(config, log);
  let courier: Awaited<ReturnType<typeof startCourier>>;
  try {
    courier = await startCourier({ config, engine, log, telemetry, now: Date.now, scheduler: systemScheduler, extensions: createExtensions });
  } catch (error) {
    // PROTOCOL §1: a data dir in use by another process, or unusable, exits 1 with one line.
    if (error instanceof DataDirError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }

  let draining = false;
  const drain = async (signal: string) => {
    if (draining) return;
    draining = true;
    log.info("signal", { signal });
    const deadline = setTimeout(() => {
      log.error("drain took longer than allowed; exiting", { drainMs: config.server.drainMs });
      process.exit(1);
    }, config.server.drainMs);
    try {
      await courier.drain();
      clearTimeout(deadline);
      process.exit(0);
    } catch (error) {
      log.error("drain failed", { error: (error as Error).message });
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void drain("SIGTERM"));
  process.on("SIGINT", () => void drain("SIGINT"));
}

await main();
