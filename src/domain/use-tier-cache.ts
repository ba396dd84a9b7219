/**
 * Plugs a {@linkcode TierCache} into the server's context: the upgrade asks it for the tier of a
 * token without a `tier` claim, and it sees connections open and close (chained onto the context's
 * telemetry hooks, which the WebSocket handler calls once per connection) so a user's entry is
 * dropped when the last connection closes.
 */
import type { Context } from "../server/context.ts";
import type { TierCache } from "./tier-cache.ts";

/**
 * Installs `tiers` on `ctx`; returns the function that restores the context.
 *
 * @example
 * const undo = useTierCache(ctx, new TierCache({ provider }));
 */
export function useTierCache(ctx: Context, tiers: TierCache): () => void {
  const { tierOf, onOpen, onClosed } = ctx;
  ctx.tierOf = (user) => tiers.tierOf(user);
  ctx.onOpen = (data, connectMs) => {
    onOpen?.(data, connectMs);
    if (!data.principal.tierFromToken) tiers.opened(data.principal.user);
  };
  ctx.onClosed = (data, code) => {
    onClosed?.(data, code);
    if (!data.principal.tierFromToken) tiers.closed(data.principal.user);
  };
  return () => Object.assign(ctx, { tierOf, onOpen, onClosed });
}
