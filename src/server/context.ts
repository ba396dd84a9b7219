/**
 * What the server's own routes, the upgrade and the WebSocket handler share: built once in
 * `app.ts`, passed in. Parts, not closures: each field is a named object a reader can open.
 */
import type { Server } from "bun";
import type { VerifyToken } from "../auth/tokens.ts";
import type { ConnData } from "../connection/conn-data.ts";
import type { ConnectionManager } from "../connection/manager.ts";
import type { Hub } from "../delivery/hub.ts";
import type { BunSocket } from "../delivery/bun-transport.ts";
import type { Broker, ConnectionSlots } from "../engine/types.ts";
import type { Tier } from "../protocol/codes.ts";
import type { ExtensionContext, ExtensionSet } from "./extension.ts";
import type { ServerEvents } from "./server-events.ts";
import type { Sessions } from "./sessions.ts";

/** Where upgrades are accepted: starting and draining refuse with 503. */
export interface Gate {
  accepting(): boolean;
}

export interface Context extends ExtensionContext {
  readonly hub: Hub<BunSocket>;
  readonly manager: ConnectionManager;
  readonly verify: VerifyToken;
  /** History for the polling route. */
  readonly broker: Pick<Broker, "position" | "history">;
  readonly slots: ConnectionSlots;
  readonly sessions: Sessions;
  readonly events: ServerEvents;
  /** Asked for job owners (the `job:<id>` permission) and rpc handlers. */
  readonly extensions: Pick<ExtensionSet, "jobOwner" | "rpc">;
  /**
   * The tier for a user whose token names none (the extensions' cached provider, then
   * `config.auth.tiers`); null keeps `starter`. Asked once per upgrade, never per broadcast.
   */
  tierOf(user: string): Promise<Tier | null>;
  server(): Server<ConnData>;
}
