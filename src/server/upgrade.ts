/**
 * `GET /v1/ws` (PROTOCOL.md §3): every refusal happens before the upgrade, as HTTP, decided by
 * admission.ts (the same decision `GET /v1/ws/check` reports). The token comes from
 * `Authorization`, the subprotocol `courier.token.<jwt>` (v1.1: browsers, keeping it out of URLs
 * and proxy logs; `courier.v1` is then selected in the 101) or `?token=`.
 */
import { bearer } from "../auth/keys.ts";
import { newConnData } from "../connection/conn-data.ts";
import { RefusalReason, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX } from "../protocol/codes.ts";
import type { ConnectionResult } from "../telemetry/index.ts";
import { AdmissionRefused, type Admission } from "./admission.ts";
import type { Context } from "./context.ts";
import { toErrorResponse } from "./error-response.ts";
import { httpError } from "./http.ts";
import type { RefusalFields } from "./refusal-log.ts";

/** The `courier_connection_attempts_total{result}` label of each refusal: the series dashboards already read. */
const RESULT: Record<RefusalReason, ConnectionResult> = {
  [RefusalReason.TokenExpired]: "unauthorized",
  [RefusalReason.Unauthorized]: "unauthorized",
  [RefusalReason.ForbiddenOrigin]: "forbidden",
  [RefusalReason.TooManyConnections]: "user_limit",
  [RefusalReason.RateLimited]: "rate_limited",
  [RefusalReason.Unavailable]: "unavailable",
};

/** What the upgrade needs beyond the context: the decision and where refusals are logged. */
export interface UpgradeParts {
  admission: Admission;
  refused(fields: RefusalFields): void;
}

/**
 * The subprotocols a client offered, and the token among them. A client that offers any must offer
 * `courier.v1`: Bun would otherwise select the first one offered, the token included, in the 101.
 */
export function offeredSubprotocols(req: Request): { offered: boolean; v1: boolean; token: string | null } {
  const header = req.headers.get("sec-websocket-protocol");
  if (header === null) return { offered: false, v1: false, token: null };
  const list = header.split(",").map((p) => p.trim());
  const token = list.find((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
  return { offered: true, v1: list.includes(SUBPROTOCOL), token: token ? token.slice(TOKEN_SUBPROTOCOL_PREFIX.length) : null };
}

export async function upgrade(ctx: Context, parts: UpgradeParts, req: Request, url: URL): Promise<Response | undefined> {
  const startedMs = performance.now();
  const { config } = ctx;
  const { admission } = parts;
  const protocols = offeredSubprotocols(req);
  if (protocols.offered && !protocols.v1) return httpError(400, `offer the subprotocol ${SUBPROTOCOL} (with ${TOKEN_SUBPROTOCOL_PREFIX}<jwt> to pass the token)`);
  const ip = admission.clientIp(req);
  let user: string | undefined;
  try {
    const principal = await admission.admit(req, bearer(req) ?? protocols.token ?? url.searchParams.get("token"), ip);
    user = principal.user;
    // PROTOCOL §6: a hit resumes (taking over the session if it is still open here), a miss starts fresh.
    const { sessionId, state: resume, takeover } = await ctx.sessions.resume(url.searchParams.get("session"), principal.user);
    if (!takeover) await admission.takeSlot(principal.user);
    const data = newConnData(principal, sessionId, resume, ctx.now(), config.limits.frameBurst);
    data.upgradeStartedMs = startedMs;
    ctx.manager.reserve();
    if (takeover) ctx.sessions.takeOver(takeover);
    const headers = protocols.offered ? { "Sec-WebSocket-Protocol": SUBPROTOCOL } : undefined;
    if (ctx.server().upgrade(req, { data, headers })) return undefined;
    ctx.manager.unreserve();
    if (!takeover) await admission.releaseSlot(principal.user);
    return httpError(400, "expected a WebSocket upgrade");
  } catch (error) {
    if (!(error instanceof AdmissionRefused)) throw error;
    ctx.events.upgradeRefused(RESULT[error.reason]);
    parts.refused(user === undefined ? { reason: error.reason, status: error.status, ip } : { reason: error.reason, status: error.status, ip, user });
    return toErrorResponse(error, { log: ctx.log, retryAfterS: config.server.retryAfterS });
  }
}
