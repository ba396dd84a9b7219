/** Feature modules plugged into the server: jobs, signals, the agent, the status page. */
import type { Extension } from "../server/app.ts";
import type { Context } from "../server/context.ts";

export function createExtensions(_ctx: Context): Extension[] {
  return [];
}
