/**
 * `/metrics` on its own port (`server.metricsPort`, `COURIER_METRICS_PORT`; PROTOCOL.md §1 v1.1),
 * bound to the same host as the main listener, so a proxy in front of the main port cannot serve
 * it publicly. Nothing else answers there (404 JSON).
 */
import type { Server } from "bun";
import type { RouteHandler } from "./extension.ts";
import { httpError } from "./http.ts";

/** Options of {@linkcode startMetricsServer}. */
export interface MetricsServerOptions {
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  metrics: RouteHandler;
}

/**
 * @example
 * const server = startMetricsServer({ hostname: "0.0.0.0", port: 9464, metrics: metricsRoute({ telemetry }) });
 * await server.stop(true);
 */
export function startMetricsServer(options: MetricsServerOptions): Server<undefined> {
  return Bun.serve({
    hostname: options.hostname,
    port: options.port,
    routes: { "/metrics": { GET: (req: Request) => options.metrics(req, new URL(req.url)) } },
    fetch: (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/metrics") return httpError(405, `${req.method.slice(0, 16)} is not allowed here; use GET`, { headers: { allow: "GET" } });
      return httpError(404, `only /metrics is served on this port, not ${path.slice(0, 100)}`);
    },
    error: () => httpError(500, "internal error"),
  });
}
