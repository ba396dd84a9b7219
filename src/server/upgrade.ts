/**
 * `GET /v1/ws` (PROTOCOL.md §3): every refusal happens here, as HTTP, before the upgrade —
 * 401 bad token, 429 per-user limit, 503 not ready / draining / node full.
 */
import { bearer } from "../auth/keys.ts";
import { TokenError } from "../auth/tokens.ts";
import { newConnData } from "../connection/conn-data.ts";
import type { Context } from "./context.ts";
import { httpError } from "./http.ts";

export async function upgrade(ctx: Context, req: Request, url: URL): Promise<Response | undefined> {
  const { config } = ctx;
  const retryAfterS = config.server.retryAfterS;
  const refuse = (status: number, message: string, reason: string, retryAfterMs?: number) => {
    ctx.events.upgradeRefused(reason);
    return httpError(status, message, { retryAfterS: retryAfterMs ? Math.max(1, Math.ceil(retryAfterMs / 1000)) : retryAfterS });
  };
  if (!ctx.gate.accepting()) return refuse(503, "not accepting connections right now", "unavailable");
  const origin = req.headers.get("origin");
  if (origin && config.server.allowedOrigins.length > 0 && !config.server.allowedOrigins.includes(origin)) {
    return refuse(403, "origin not allowed", "forbidden");
  }

  let principal;
  try {
    principal = await ctx.verify(bearer(req) ?? url.searchParams.get("token"));
  } catch (error) {
    if (error instanceof TokenError && error.reason === "unavailable") return refuse(503, error.message, "unavailable");
    return refuse(401, error instanceof TokenError ? error.message : "invalid token", "unauthorized");
  }
  if (!principal.tierFromToken) {
    try {
      principal.tier = (await ctx.tierOf(principal.user)) ?? principal.tier;
    } catch {
      // A failing tier provider must not refuse the user: the default tier is the safe side.
    }
  }
  if (ctx.manager.size >= config.limits.connectionsPerNode) return refuse(503, "this node is full", "unavailable");

  // PROTOCOL §6: a hit resumes (taking over the session if it is still open here), a miss starts fresh.
  const { sessionId, state: resume, takeover } = await ctx.sessions.resume(url.searchParams.get("session"), principal.user);

  if (!takeover) {
    let ok: boolean;
    try {
      ok = await ctx.slots.acquireConnection(principal.user, config.limits.connectionsPerUser);
    } catch {
      return refuse(503, "connection limits are unavailable", "unavailable");
    }
    if (!ok) return refuse(429, `at most ${config.limits.connectionsPerUser} connections per user`, "user_limit", ctx.slots.connectionRetryAfterMs?.(principal.user));
  }
  const data = newConnData(principal, sessionId, resume, ctx.now(), config.limits.frameBurst);
  ctx.manager.reserve();
  if (takeover) ctx.sessions.takeOver(takeover);
  if (ctx.server().upgrade(req, { data })) return undefined;
  ctx.manager.unreserve();
  if (!takeover) await ctx.slots.releaseConnection(principal.user).catch(() => {});
  return httpError(400, "expected a WebSocket upgrade");
}
