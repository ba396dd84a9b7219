/**
 * The control bus of a single node: a command runs here and nowhere else, so every answer is this
 * node's and none can be missing. The embedded engine has no bus of its own; the server uses this.
 */
import type { ControlBus, ControlOutcome } from "./types.ts";

/**
 * Creates a bus that runs commands on this node only.
 *
 * @example
 * const bus = localControlBus();
 * bus.serve((command) => ({ count: 0 }));
 * await bus.broadcast({ kind: "disconnect", user: "alice" }, 1000); // { replies: [{ count: 0 }], missing: 0 }
 */
export function localControlBus(): ControlBus {
  let handler: ((command: unknown) => unknown) | null = null;
  return {
    serve(h) {
      handler = h;
    },
    async broadcast(command): Promise<ControlOutcome> {
      if (!handler) return { replies: [], missing: 1 };
      return { replies: [await handler(command)], missing: 0 };
    },
  };
}
