/**
 * The root package's entry (`import … from "courier"`), free of side effects: the parts to embed
 * Courier in another Bun process. `bun run start` (`src/main.ts`) is what runs the server.
 *
 * @example
 * import { createEmbeddedEngine, createExtensions, createLogger, createTelemetry, loadConfig, startCourier } from "courier";
 * const config = await loadConfig();
 * const log = createLogger({ level: config.log.level });
 * const engine = await createEmbeddedEngine({ dataDir: config.store.dataDir, ... });
 * const courier = await startCourier({ config, engine, log, telemetry: createTelemetry({ enabled: false, nodeId: "n1" }), extensions: createExtensions });
 */
export { startCourier } from "./server/app.ts";
export { ConfigError, loadConfig } from "./config/load.ts";
export type { Config } from "./config/schema.ts";
export { createEmbeddedEngine } from "./engine/index.ts";
export type { Engine } from "./engine/index.ts";
export { createExtensions } from "./domain/index.ts";
export { createLogger, createTelemetry } from "./telemetry/index.ts";
export type { Logger } from "./telemetry/index.ts";
