/** What every route and the WebSocket handler share: built once in `app.ts`, passed in. */
import type { Server } from "bun";
import type { Config } from "../config/schema.ts";
import type { Engine, PublishItem, PublishOutcome } from "../engine/types.ts";
import type { JsonGuard } from "../protocol/json-guard.ts";
import type { VerifyToken } from "../auth/tokens.ts";
import type { Hub } from "../delivery/hub.ts";
import type { BunSocket } from "../delivery/bun-transport.ts";
import type { ConnectionManager } from "../connection/manager.ts";
import type { ConnData } from "../connection/conn-data.ts";
import type { JobOwnerLookup } from "../connection/permissions.ts";
import type { NodeStats } from "./node-stats.ts";
import type { Tier } from "../protocol/codes.ts";
import type { Logger } from "../telemetry/index.ts";

/** Answers an `rpc` frame; throws `RpcError` for a coded failure. */
export type RpcHandler = (call: { user: string; method: string; data: unknown; signal: AbortSignal; deadlineMs: number }) => Promise<unknown>;

/** Where upgrades are accepted: starting and draining refuse with 503. */
export interface Gate {
  accepting(): boolean;
}

export interface Context {
  config: Config;
  engine: Engine;
  hub: Hub<BunSocket>;
  manager: ConnectionManager;
  stats: NodeStats;
  log: Logger;
  now: () => number;
  verify: VerifyToken;
  gate: Gate;
  jobOwner: JobOwnerLookup;
  /** Event names that are critical whatever the publisher says. */
  criticalEvents: ReadonlySet<string>;
  /**
   * The tier for a user whose token names none (a cached provider, answered at once when cached);
   * null keeps `starter`. Asked once per upgrade, never per broadcast.
   */
  tierOf?: (user: string) => Tier | null | Promise<Tier | null>;
  rpc?: RpcHandler;
  server: () => Server<ConnData>;
  /** Publishes through the store's breaker; rejects with StoreUnavailableError. */
  publish(items: PublishItem[]): Promise<PublishOutcome[]>;
  /** Parses large publish bodies off the event loop under the serializer budget. */
  jsonGuard: JsonGuard;

  // Telemetry and extension hooks: each called once per outcome, never per delivery.
  onUpgradeRefused?(reason: string): void;
  onResume?(hit: boolean): void;
  onOpen?(data: ConnData, connectMs: number): void;
  onClosed?(data: ConnData, code: number): void;
  onReject?(reason: string): void;
  onConfirmed?(samplesMs: number[]): void;
  onRpc?(method: string, result: string, ms: number): void;
  onSerialize?(path: "fast" | "slow", ms: number): void;
  onSerializeTimeout?(): void;
}
