/**
 * Lets domain modules see what was stored, whoever published it: `ctx.publish` is the single
 * publish path (the publish API, the job simulator, the demo agent), so wrapping it once shows the
 * agent tracker a backend's `agent_started` and the job registry a backend's `job_completed`.
 * Listeners run only after the store accepted the items: an event that was refused never happened.
 */
import type { PublishItem, PublishOutcome } from "../engine/types.ts";
import type { Context } from "../server/context.ts";

/** Sees each stored batch; a throwing listener is logged and never fails the publish. */
export type PublishListener = (items: readonly PublishItem[], outcomes: readonly PublishOutcome[]) => void;

const listenersOf = new WeakMap<Context, Set<PublishListener>>();

/**
 * Calls `listener` after every successful `ctx.publish`; returns the function that stops it.
 *
 * @example
 * const stop = observePublishes(ctx, (items) => {
 *   for (const item of items) if (item.event === "agent_started") track(item);
 * });
 */
export function observePublishes(ctx: Context, listener: PublishListener): () => void {
  let listeners = listenersOf.get(ctx);
  if (!listeners) {
    const set = new Set<PublishListener>();
    listeners = set;
    listenersOf.set(ctx, set);
    const publish = ctx.publish.bind(ctx);
    ctx.publish = async (items) => {
      const outcomes = await publish(items);
      for (const l of set) {
        try {
          l(items, outcomes);
        } catch (error) {
          ctx.log.error("publish listener failed", { error: (error as Error).message });
        }
      }
      return outcomes;
    };
  }
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/**
 * The JSON object in an item's `dataJson`, or null when it is not an object. Only called for the
 * few event names a listener cares about, so ordinary publishes are never parsed twice.
 *
 * @example
 * dataOf({ dataJson: '{"run":"r1"}' } as PublishItem) // { run: "r1" }
 */
export function dataOf(item: PublishItem): Record<string, unknown> | null {
  try {
    const data: unknown = JSON.parse(item.dataJson);
    return typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
