/**
 * The HTTP route table handed to `Bun.serve`: every handler timed into
 * `courier_http_request_duration_seconds`, every thrown error answered by the one mapper, every
 * answer marked for CORS (cors.ts) and every `OPTIONS` preflight answered 204, and a known path
 * asked with another method answered 405 `method_not_allowed` with `Allow`.
 */
import type { Metrics } from "../telemetry/index.ts";
import { AfterWrites } from "./after-writes.ts";
import type { Cors } from "./cors.ts";
import { httpRequestAttributes } from "../telemetry/http-attributes.ts";
import { toErrorResponse, type ErrorMapping } from "./error-response.ts";
import type { MethodTable, RouteHandler, RouteUrl } from "./extension.ts";
import { httpError } from "./http.ts";

type BunHandler = (req: Request) => Promise<Response>;

/**
 * Routes by path.
 *
 * @example
 * const table = new RouteTable({ metrics, errors: { log, retryAfterS: 2 }, cors: corsPolicy([]) });
 * table.add("/health", { GET: () => json({ status: "ok" }) });
 * Bun.serve({ routes: table.routes, fetch: (req) => table.fallback(req, new URL(req.url)) });
 */
export class RouteTable {
  readonly #routes: Record<string, unknown> = {};
  /** Methods per route path, for the 405 of a known path asked with another method. */
  readonly #allowed = new Map<string, string[]>();
  /** Paths open to every origin (cors.ts says which and why). */
  readonly #anyOrigin = new Set<string>();
  readonly #metrics: Pick<Metrics, "httpRequestDuration">;
  readonly #errors: ErrorMapping;
  readonly #cors: Cors;
  readonly #scheme: "http" | "https" | undefined;
  readonly #later: AfterWrites;

  /**
   * `scheme`: the listener's, for the `url.scheme` label; when absent, each request's URL says.
   * `later` records the durations once the turn's writes are out (after-writes.ts).
   */
  constructor(options: { metrics: Pick<Metrics, "httpRequestDuration">; errors: ErrorMapping; cors: Cors; scheme?: "http" | "https"; later?: AfterWrites }) {
    this.#metrics = options.metrics;
    this.#errors = options.errors;
    this.#cors = options.cors;
    this.#scheme = options.scheme;
    this.#later = options.later ?? new AfterWrites();
  }

  /** The table for `Bun.serve({ routes })`. */
  get routes(): Record<string, unknown> {
    return this.#routes;
  }

  add(path: string, table: MethodTable, options: { anyOrigin?: boolean } = {}): this {
    this.known(path, Object.keys(table));
    if (options.anyOrigin) this.#anyOrigin.add(path);
    const methods: Record<string, BunHandler> = {};
    for (const [method, handler] of Object.entries(table)) methods[method] = (req) => this.serve(path, req, () => (handler as RouteHandler)(req, lazyUrl(req)));
    methods.OPTIONS = async (req) => this.#cors.preflight(req, this.#allowed.get(path)!, options.anyOrigin);
    this.#routes[path] = methods;
    return this;
  }

  /** Declares the methods of a path served outside the table (the WebSocket upgrade), for its 405 and preflight. */
  known(path: string, methods: readonly string[]): this {
    this.#allowed.set(path, [...methods]);
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
    let thrown: unknown;
    try {
      response = await run();
    } catch (error) {
      thrown = error;
      response = toErrorResponse(error, this.#errors);
    }
    if (response) {
      this.#cors.decorate(req, response, this.#anyOrigin.has(route));
      const seconds = (performance.now() - started) / 1000;
      const attributes = httpRequestAttributes(req, route, response.status, thrown, this.#scheme);
      this.#later.run(() => this.#metrics.httpRequestDuration.record(seconds, attributes));
    }
    return response;
  }

  /**
   * The answer for a request no route took: a preflight of a known path 204, another method 405
   * with `Allow`, an unknown path 404; CORS-marked like every answer.
   */
  fallback(req: Request, url: URL): Response {
    const methods = this.#allowed.get(url.pathname);
    if (methods && req.method === "OPTIONS") return this.#cors.preflight(req, methods);
    if (methods && !methods.includes(req.method)) {
      const allow = methods.join(", ");
      return this.#cors.decorate(req, httpError(405, `${req.method.slice(0, 16)} is not allowed here; use ${allow}`, { headers: { allow } }));
    }
    return this.#cors.decorate(req, httpError(404, `no route for ${req.method.slice(0, 16)} ${url.pathname.slice(0, 100)}`));
  }
}

/** `req`'s query, parsed when a handler first reads it (extension.ts says why). */
function lazyUrl(req: Request): RouteUrl {
  let searchParams: URLSearchParams | undefined;
  return {
    get searchParams() {
      return (searchParams ??= new URL(req.url).searchParams);
    },
  };
}
