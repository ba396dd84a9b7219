/**
 * CORS for every HTTP route (PROTOCOL.md §2 v1.1), in one place: the route table asks it to answer
 * preflights and to mark answers, and the upgrade asks it whether an `Origin` may connect, so the
 * WebSocket and HTTP share one allowlist (`server.allowedOrigins`, `COURIER_ALLOWED_ORIGINS`).
 *
 * An empty allowlist lets any origin in and answers `*`: the same bytes for every origin, so no
 * `Vary: Origin` is needed and caches stay shared. A non-empty one echoes the allowed origin and
 * always says `Vary: Origin`, because the answer then depends on it. Credentials are never
 * allowed: user tokens travel in `Authorization`, not cookies, and `*` forbids credentials anyway.
 *
 * One route is open to every origin whatever the list: `/v1/ws/check`, whose whole purpose is to
 * tell a refused page why — `forbidden_origin` included, which a page could never read otherwise.
 * It reveals only the user and tier of the token the page itself sends.
 */

/** Request headers a page may send. Named one by one: the Fetch standard's `*` does not cover `Authorization`. */
export const CORS_ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key";
/** Answer headers scripts may read beyond the safelisted ones: the backoff hint of a 429/503. */
export const CORS_EXPOSED_HEADERS = "Retry-After";
/** How long a browser may cache a preflight, in seconds. */
const PREFLIGHT_MAX_AGE_S = "600";

/** The CORS policy of one server. */
export interface Cors {
  /** Whether a page (or a WebSocket) from `origin` may use Courier; an absent origin (not a browser) may. */
  allows(origin: string | null): boolean;
  /** Adds the CORS headers `req`'s origin earns to `res` (mutated and returned); `anyOrigin` for a route open to all. */
  decorate(req: Request, res: Response, anyOrigin?: boolean): Response;
  /** The 204 answer to a preflight of a route that takes `methods`. */
  preflight(req: Request, methods: readonly string[], anyOrigin?: boolean): Response;
}

/**
 * @example
 * const cors = corsPolicy(config.server.allowedOrigins);
 * if (req.method === "OPTIONS") return cors.preflight(req, ["GET"]);
 * return cors.decorate(req, await handler(req));
 */
export function corsPolicy(allowedOrigins: readonly string[]): Cors {
  // `https://app.example.com/` in a config means the origin without the slash browsers send.
  const allowed = new Set(allowedOrigins.map((o) => o.trim().replace(/\/+$/, "")).filter((o) => o !== ""));
  const open = allowed.size === 0;
  const allows = (origin: string | null) => open || origin === null || allowed.has(origin);
  /** The `Access-Control-Allow-Origin` value, or undefined when the origin earns none. */
  const allowOrigin = (origin: string | null, anyOrigin = false): string | undefined =>
    open ? "*" : origin !== null && (anyOrigin || allowed.has(origin)) ? origin : undefined;

  return {
    allows,
    decorate(req, res, anyOrigin) {
      // An open policy answers `*` whatever the origin: no need to look the header up.
      const value = open ? "*" : allowOrigin(req.headers.get("origin"), anyOrigin);
      const headers = res.headers;
      if (!open) headers.append("vary", "Origin");
      if (value === undefined) return res;
      headers.set("access-control-allow-origin", value);
      headers.set("access-control-expose-headers", CORS_EXPOSED_HEADERS);
      return res;
    },
    preflight(req, methods, anyOrigin) {
      const headers: Record<string, string> = { "cache-control": "no-store" };
      if (!open) headers.vary = "Origin";
      const value = allowOrigin(req.headers.get("origin"), anyOrigin);
      if (value !== undefined) {
        headers["access-control-allow-origin"] = value;
        headers["access-control-allow-methods"] = [...methods, "OPTIONS"].join(", ");
        headers["access-control-allow-headers"] = CORS_ALLOWED_HEADERS;
        headers["access-control-max-age"] = PREFLIGHT_MAX_AGE_S;
        delete headers["cache-control"];
      }
      return new Response(null, { status: 204, headers });
    },
  };
}
