/** What every route and the WebSocket handler share: built once in `app.ts`, passed in. */
import type { Server } from "bun";
import type { Config } from "../config/schema.ts";
import type { Engine } from "../engine/types.ts";
import type { VerifyToken } from "../auth/tokens.ts";
import type { Hub } from "../delivery/hub.ts";
import type { ConnectionManager } from "../connection/manager.ts";
import type { ConnData } from "../connection/conn-data.ts";
import type { JobOwnerLookup } from "../connection/permissions.ts";
import type { NodeStats } from "./node-stats.ts";
import type { Tier } from "../protocol/codes.ts";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Answers an `rpc` frame; throws `RpcError` for a coded failure. */
export type RpcHandler = (call: { user: string; method: string; data: unknown; signal: AbortSignal; deadlineMs: number }) => Promise<unknown>;

/** Where upgrades are accepted: starting and draining refuse with 503. */
export interface Gate {
  accepting(): boolean;
}

export interface Context {
  config: Config;
  engine: Engine;
  hub: Hub;
  manager: ConnectionManager;
  stats: NodeStats;
  log: Logger;
  now: () => number;
  verify: VerifyToken;
  gate: Gate;
  jobOwner: JobOwnerLookup;
  /**
   * The tier for a user whose token names none (a cached provider, answered at once when cached);
   * null keeps `starter`. Asked once per upgrade, never per broadcast.
   */
  tierOf?: (user: string) => Tier | null | Promise<Tier | null>;
  rpc?: RpcHandler;
  server: () => Server<ConnData>;
}

export interface Context {
  /** Telemetry hooks: called once per outcome. */
  onUpgradeRefused?(reason: string): void;
  onResume?(hit: boolean): void;
}

export interface Context {
  onOpen?(data: import("../connection/conn-data.ts").ConnData, connectMs: number): void;
  onClosed?(data: import("../connection/conn-data.ts").ConnData, code: number): void;
  onReject?(reason: string): void;
  onConfirmed?(samplesMs: number[]): void;
  onRpc?(method: string, result: string, ms: number): void;
}

export interface Context {
  criticalEvents: ReadonlySet<string>;
}

export interface Context {
  /** Publishes through the store's breaker; rejects with StoreUnavailableError. */
  publish(items: import("../engine/types.ts").PublishItem[]): Promise<import("../engine/types.ts").PublishOutcome[]>;
}

export interface Context {
  /** Parses large publish bodies off the event loop under the serializer budget. */
  jsonGuard: import("../protocol/json-guard.ts").JsonGuard;
  onSerialize?(path: "fast" | "slow", ms: number): void;
  onSerializeTimeout?(): void;
}
