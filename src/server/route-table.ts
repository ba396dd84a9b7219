/**
 * The HTTP route table handed to `Bun.serve`: every handler timed into
 * `courier_http_request_duration_seconds`, every thrown error answered by the one mapper, and a
 * known path asked with another method answered 405 with `Allow`.
 */
import type { Metrics } from "../telemetry/index.ts";
import { toErrorResponse, type ErrorMapping } from "./error-response.ts";
import type { MethodTable, RouteHandler } from "./extension.ts";
import { httpError } from "./http.ts";

type BunHandler = (req: Request) => Promise<Response>;

/**
 * Routes by path.
 *
 * @example
 * const table = new RouteTable({ metrics, errors: { log, retryAfterS: 2 } });
 * table.add("/health", { GET: () => json({ status: "ok" }) });
 * Bun.serve({ routes: table.routes, fetch: (req) => table.fallback(req, new URL(req.url)) });
 */
export class RouteTable {
  readonly #routes: Record<string, unknown> = {};
  /** Methods per route path, for the 405 of a known path asked with another method. */
  readonly #allowed = new Map<string, string>();
  readonly #metrics: Pick<Metrics, "httpRequestDuration">;
  readonly #errors: ErrorMapping;

  constructor(options: { metrics: Pick<Metrics, "httpRequestDuration">; errors: ErrorMapping }) {
    this.#metrics = options.metrics;
    this.#errors = options.errors;
  }

  /** The table for `Bun.serve({ routes })`. */
  get routes(): Record<string, unknown> {
    return this.#routes;
  }

  add(path: string, table: MethodTable): this {
    this.#allowed.set(path, Object.keys(table).join(", "));
    const methods: Record<string, BunHandler> = {};
    for (const [method, handler] of Object.entries(table)) methods[method] = (req) => this.serve(path, req, () => (handler as RouteHandler)(req, new URL(req.url)));
    this.#routes[path] = methods;
    return this;
  }

  /** Routes handed to Bun.serve as they are (HTML imports): not timed, not mapped. */
  addStatic(routes: Record<string, unknown>): this {
    Object.assign(this.#routes, routes);
    return this;
  }

  /**
   * Runs one request of `route`, maps what it throws and records its duration; `undefined` (an
   * upgraded WebSocket) is neither answered nor recorded.
   */
  async serve<R extends Response | undefined>(route: string, req: Request, run: () => Promise<R> | R): Promise<R | Response> {
    const started = performance.now();
    let response: R | Response;
    try {
      response = await run();
    } catch (error) {
      response = toErrorResponse(error, this.#errors);
    }
    if (response) {
      this.#metrics.httpRequestDuration.record((performance.now() - started) / 1000, {
        "http.request.method": req.method,
        "http.route": route,
        "http.response.status_code": response.status,
      });
    }
    return response;
  }

  /** The answer for a path no route took: 405 with `Allow` for a known path, else 404. */
  fallback(req: Request, url: URL): Response {
    const allow = this.#allowed.get(url.pathname);
    if (allow && !allow.split(", ").includes(req.method)) return httpError(405, `${req.method.slice(0, 16)} is not allowed here; use ${allow}`, { headers: { allow } });
    return httpError(404, `no route for ${req.method.slice(0, 16)} ${url.pathname.slice(0, 100)}`);
  }
}
