/**
 * The engine boundary: the interface every engine implements, and the embedded one.
 *
 * @example
 * import { createEmbeddedEngine, type Engine } from "./engine/index.ts";
 * const engine: Engine = createEmbeddedEngine({ ...options, dataDir: "./data" });
 */
export * from "./types.ts";
export {
  createEmbeddedEngine,
  type EmbeddedEngine,
  type EmbeddedEngineOptions,
  type EmbeddedEngineStats,
} from "./embedded-engine.ts";
