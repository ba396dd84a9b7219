/**
 * `bun run start`: the only place that builds real clocks, stores, meters and the scheduler. Loads the config,
 * picks the engine (Redis when `COURIER_REDIS_URL` is set, else the embedded store), starts the
 * server, drains on SIGTERM. Startup either serves or exits 1 with one line naming the cause (the
 * config field and its env var, the data dir, the listen address); after startup an uncaught
 * exception drains and exits 1 (PROTOCOL §1 v1.1).
 */
import { ConfigError, loadConfig } from "./config/load.ts";
import type { Config } from "./config/schema.ts";
import { createEmbeddedEngine, type Engine } from "./engine/index.ts";
import { DataDirError } from "./engine/sqlite-dir-lock.ts";
import { startCourier, type Courier } from "./server/app.ts";
import { ListenError } from "./server/listen-error.ts";
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

/**
 * One line on stderr, then exit 1: how every startup failure ends (PROTOCOL §1 v1.1). Errors that
 * name their cause (a config field and its env var, the data dir, the listen address) are printed
 * as they are; anything else by name and message, never a stack or a secret.
 */
function startupFailed(error: unknown): never {
  const named = error instanceof ConfigError || error instanceof DataDirError || error instanceof ListenError;
  const { name, message } = describe(error);
  process.stderr.write(`${named ? message : `startup failed: ${name}: ${message}`}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  // Until the listener is open, anything thrown, even from a stray callback, is a startup failure.
  const duringStartup = (error: unknown) => startupFailed(error);
  process.on("uncaughtException", duringStartup);
  let config: Config;
  let log: Logger;
  let courier: Courier;
  try {
    config = await loadConfig();
    log = createLogger({ level: config.log.level });
    process.on("unhandledRejection", (reason) => log.error("unhandled rejection", { error: describe(reason) }));
    const telemetry = await startOtelSdk({
      enabled: config.telemetry.enabled,
      nodeId: config.cluster.nodeId!,
      otlpEndpoint: config.telemetry.otlpEndpoint,
      otlpIntervalMs: config.telemetry.otlpIntervalMs,
      warn: (message, fields) => log.warn(message, fields),
    });
    const engine = await createEngine(config, log);
    courier = await startCourier({ config, engine, log, telemetry, now: Date.now, scheduler: systemScheduler, extensions: createExtensions });
  } catch (error) {
    startupFailed(error);
  }
  process.off("uncaughtException", duringStartup);

  let exitCode = 0;
  let draining = false;
  const drain = async (why: string) => {
    if (draining) return;
    draining = true;
    log.info("signal", { signal: why });
    systemScheduler.after(config.server.drainMs, () => {
      log.error("drain took longer than allowed; exiting", { drainMs: config.server.drainMs });
      process.exit(1);
    });
    try {
      await courier.drain();
    } catch (error) {
      log.error("drain failed", { error: describe(error) });
      exitCode = 1;
    }
    process.exit(exitCode);
  };
  process.on("SIGTERM", () => void drain("SIGTERM"));
  process.on("SIGINT", () => void drain("SIGINT"));
  // An unhandled rejection (registered above) is one failed operation whose caller is gone: it is
  // logged (name and message only, never a stack or a secret) and the node keeps serving; the
  // operations that matter (publish, subscribe, the store) answer their own errors. A thrown
  // exception is different: it unwound code that may have left state half-changed, so the node
  // stops taking work, drains, and exits 1 for its supervisor to restart it.
  process.on("uncaughtException", (error) => {
    log.error("uncaught exception; draining, then exit 1", { error: describe(error) });
    exitCode = 1;
    void drain("uncaughtException");
  });
}

await main();
