/**
 * `GET /v1/ws/check` (PROTOCOL.md §2 v1.1): what an upgrade with this token would get now. A
 * browser cannot read why its WebSocket was refused (it sees 1006); this answers the same decision
 * (admission.ts) as HTTP it can read: 200 `{"user","tier"}`, or the refusal's status, JSON body
 * (with `reason`) and `Retry-After`. The token comes in `Authorization` or `?token=`.
 *
 * Like an upgrade it counts against the address's upgrade rate. The per-user limit is asked by
 * taking a slot and giving it back at once: the only question every engine can answer
 * cluster-wide, at the cost of a moment in which a real upgrade of the same user sees one slot less.
 */
import { bearer } from "../auth/keys.ts";
import type { Admission } from "./admission.ts";
import type { RouteHandler } from "./extension.ts";
import { json } from "./http.ts";

/**
 * @example
 * table.add("/v1/ws/check", { GET: wsCheckRoute(admission) });
 */
export function wsCheckRoute(admission: Admission): RouteHandler {
  return async (req, url) => {
    const principal = await admission.admit(req, bearer(req) ?? url.searchParams.get("token"), admission.clientIp(req));
    await admission.takeSlot(principal.user);
    await admission.releaseSlot(principal.user);
    return json({ user: principal.user, tier: principal.tier });
  };
}
