/**
 * The operator's routes (PROTOCOL.md §2): `/health`, `/ready`, `/metrics`, `/ws/stats`, `/dev/token`, `/version`,
 * `/openapi.json`. One entry per path in `opsRoutes`: adding an ops route is one line there plus its
 * handler. With `server.metricsPort` set, `/metrics` is served on that port only (metrics-server.ts).
 */
import { bearer, keyMatches } from "../auth/keys.ts";
import { signToken } from "../auth/tokens.ts";
import type { Config } from "../config/schema.ts";
import type { ClusterStats } from "../engine/types.ts";
import { isTier, TIERS } from "../protocol/codes.ts";
import { isUserId, USER_ID_RULE } from "../protocol/user-id.ts";
import type { ReadinessGate, ReadinessResult } from "../resilience/index.ts";
import { PROMETHEUS_CONTENT_TYPE, type Telemetry } from "../telemetry/index.ts";
import { buildInfo, type BuildInfo } from "../telemetry/build-info.ts";
import type { MethodTable, RouteHandler } from "./extension.ts";
import { HttpError, json } from "./http.ts";
import { devTokenResponse } from "./dev-token.ts";
import { openApiRoute } from "./openapi.ts";

/** What the ops routes read. */
export interface OpsSources {
  config: Config;
  telemetry: Pick<Telemetry, "render">;
  gate: ReadinessGate;
  /** Runs the readiness checks now. */
  probe: () => Promise<ReadinessResult>;
  /** This node's stats body. */
  statsReport: () => Record<string, unknown>;
  /** Present on cluster engines: `/ws/stats?scope=cluster`. */
  cluster?: ClusterStats;
  /** What `/version` shows. @default buildInfo() */
  build?: BuildInfo;
}

/**
 * The ops routes by path.
 *
 * @example
 * for (const [path, table] of Object.entries(opsRoutes(sources))) routes.add(path, table);
 */
export function opsRoutes(s: OpsSources): Record<string, MethodTable> {
  return {
    "/health": { GET: () => json({ status: "ok" }) },
    "/ready": { GET: ready(s) },
    ...(s.config.server.metricsPort === undefined ? { "/metrics": { GET: metricsRoute(s) } } : {}),
    "/ws/stats": { GET: stats(s) },
    "/dev/token": { GET: devToken(s) },
    "/version": { GET: version(s.build ?? buildInfo()) },
    "/openapi.json": { GET: openApiRoute },
  };
}

/** 200 while ready or degraded, else 503 with `Retry-After`; draining says so whatever the checks. */
function ready({ config, gate, probe }: OpsSources): RouteHandler {
  return async () => {
    // Draining answers at once: a load balancer must not wait on dependency checks to move away.
    const result = gate.phase === "draining" ? { status: "draining" as const, checks: gate.lastResult?.checks ?? {} } : await probe();
    const ok = result.status !== "not_ready" && gate.phase === "ready";
    return json({ status: gate.phase === "draining" ? "draining" : result.status, checks: result.checks }, ok ? 200 : 503, ok ? undefined : { "retry-after": String(config.server.retryAfterS) });
  };
}

/** `GET /metrics`: on the main port, or alone on `server.metricsPort`. */
export function metricsRoute({ telemetry }: Pick<OpsSources, "telemetry">): RouteHandler {
  return async () => new Response(await telemetry.render(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store", "x-content-type-options": "nosniff" } });
}

/** `{"version","commit"?,"bun"}`: the commit only when known. */
function version(build: BuildInfo): RouteHandler {
  const body = build.commit === "unknown" ? { version: build.version, bun: build.bun } : build;
  return () => json(body);
}

/** Admin key only; `?scope=cluster` adds every node's report on a cluster engine. */
function stats({ config, statsReport, cluster }: OpsSources): RouteHandler {
  return async (req, url) => {
    if (!keyMatches(bearer(req), config.auth.adminKey)) throw new HttpError(401, "a valid admin key is required");
    if (url.searchParams.get("scope") === "cluster" && cluster) {
      return json({ scope: "cluster", nodes: await cluster.clusterStats(), self: statsReport() });
    }
    return json(statsReport());
  };
}

/** Development and test only: a token for any user and tier, signed with this environment's secret. */
function devToken({ config }: OpsSources): RouteHandler {
  return async (_req, url) => {
    if (config.env !== "development" && config.env !== "test") throw new HttpError(404, "not found");
    const user = url.searchParams.get("user") ?? "dev-user";
    const tier = url.searchParams.get("tier") ?? "starter";
    if (!isUserId(user)) throw new HttpError(400, `user must be ${USER_ID_RULE}`);
    if (!isTier(tier)) throw new HttpError(400, `tier must be one of ${TIERS.join(", ")}`);
    if (!config.auth.jwtSecret) throw new HttpError(404, "development tokens need COURIER_JWT_SECRET");
    return devTokenResponse(await signToken(config.auth.jwtSecret, { sub: user, tier }, config.auth.devTokenTtlS), url.searchParams.get("format"));
  };
}
