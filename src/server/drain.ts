/**
 * SIGTERM, in the order PROTOCOL §1 v1.1 asks: `/ready` 503 at once; for the drain grace the
 * listener keeps answering, new upgrades and new work 503 JSON with `Retry-After` (a load balancer
 * or a proxy moves traffic away on an answer it can read, not on a refused connect that nginx
 * turns into a 502 HTML page); connected clients get `reconnect` (spread hints) and close 1012;
 * then the listener closes and the store is flushed by the caller.
 */
import type { ConnectionManager } from "../connection/manager.ts";
import type { ReadinessGate } from "../resilience/index.ts";
import type { Logger } from "../telemetry/index.ts";
import type { MethodTable, RouteHandler } from "./extension.ts";
import { HttpError } from "./http.ts";
import type { Scheduler } from "./scheduler.ts";

/** What a 503 during the drain says. */
export const DRAINING_MESSAGE = "this node is shutting down; retry on another node";

/**
 * Wraps the mutating methods of a `/v1/*` route so they answer 503 with `Retry-After` once the
 * node drains; reads (`GET`) are still served.
 *
 * @example
 * table.add("/v1/publish", refuseWhileDraining({ POST: publish }, { gate, retryAfterS: 2 }));
 */
export function refuseWhileDraining(methods: MethodTable, options: { gate: Pick<ReadinessGate, "phase">; retryAfterS: number }): MethodTable {
  const guarded: MethodTable = {};
  for (const [method, handler] of Object.entries(methods) as [keyof MethodTable, RouteHandler][]) {
    guarded[method] =
      method === "GET"
        ? handler
        : (req, url) => {
            if (options.gate.phase === "draining") throw new HttpError(503, DRAINING_MESSAGE, { retryAfterS: options.retryAfterS });
            return handler(req, url);
          };
  }
  return guarded;
}

/** Options for {@linkcode drainGrace}. */
export interface DrainGraceOptions {
  gate: Pick<ReadinessGate, "phase" | "markDraining">;
  manager: Pick<ConnectionManager, "reconnectAll" | "closeWaiting">;
  scheduler: Scheduler;
  /** How long the listener keeps answering after the drain begins. */
  graceMs: number;
  /** `reconnect.after` hints are spread over this window. */
  spreadMs: number;
  log: Logger;
}

/**
 * Runs the drain up to the moment the listener may close: resolves after `graceMs`, with every
 * connection closed or its close sent.
 *
 * @example
 * await drainGrace({ gate, manager, scheduler, graceMs: 2000, spreadMs: 5000, log });
 * await server.stop();
 */
export async function drainGrace(options: DrainGraceOptions): Promise<void> {
  const { gate, manager, scheduler, graceMs, spreadMs, log } = options;
  if (gate.phase !== "draining") gate.markDraining();
  const told = manager.reconnectAll(spreadMs);
  log.info("draining", { connections: told, spreadMs, graceMs });
  await new Promise<void>((resolve) => scheduler.after(graceMs, resolve));
  // An upgrade accepted just before the drain began opens after `reconnectAll`: tell it too, and
  // send every close still waiting for its client's pong now.
  manager.reconnectAll(0);
  manager.closeWaiting();
}
