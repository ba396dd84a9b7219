/**
 * The OpenTelemetry semantic-convention attributes of `http.server.request.duration`
 * (https://opentelemetry.io/docs/specs/semconv/http/http-metrics/), with bounded values only: the
 * method from the known set else `_OTHER`, the route template, never the raw path.
 */

/** The methods semconv names, each with a small index for the cache key; anything else is `_OTHER`, so a client inventing methods adds no series. */
const KNOWN_METHODS = new Map(["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "_OTHER"].map((m, i) => [m, i]));

/** Attributes of one request's duration. */
export interface HttpRequestAttributes {
  "http.request.method": string;
  "http.route": string;
  "http.response.status_code": number;
  "url.scheme": string;
  "error.type"?: string;
}

/**
 * Attributes for one answered request. `error.type` is set on a 5xx only: the thrown error's class
 * name (e.g. `StoreUnavailableError`) when the handler threw, else the status code, as semconv says
 * when nothing more specific is known. `scheme` is the listener's when the caller knows it (reading
 * `req.url` makes Bun build the whole URL string), else read from the request.
 *
 * @example
 * httpRequestAttributes(req, "/v1/publish", 503, error)
 * // { "http.request.method": "POST", "http.route": "/v1/publish", "http.response.status_code": 503,
 * //   "url.scheme": "http", "error.type": "StoreUnavailableError" }
 */
export function httpRequestAttributes(req: Request, route: string, status: number, thrown?: unknown, scheme?: "http" | "https"): HttpRequestAttributes {
  let index = KNOWN_METHODS.get(req.method);
  if (index === undefined) index = KNOWN_METHODS.get(req.method.toUpperCase()) ?? OTHER;
  const https = (scheme ?? (req.url.startsWith("https:") ? "https" : "http")) === "https";
  // A 5xx's error type is one more label: those answers are rare, built each time.
  if (status >= 500) return build(index, route, status, https, thrown instanceof Error ? errorName(thrown) : String(status));
  let byKey = cache.get(route);
  if (!byKey) cache.set(route, (byKey = new Map()));
  const key = (status * KNOWN_METHODS.size + index) * 2 + (https ? 1 : 0);
  let attributes = byKey.get(key);
  if (!attributes) byKey.set(key, (attributes = build(index, route, status, https)));
  return attributes;
}

const METHOD_NAMES = [...KNOWN_METHODS.keys()];
const OTHER = KNOWN_METHODS.get("_OTHER")!;

/**
 * One frozen attribute object per route, method, status and scheme, shared by every request that
 * earns it rather than built per request. Routes are the table's templates, statuses three digits:
 * the cache is bounded by what the server declares.
 */
const cache = new Map<string, Map<number, HttpRequestAttributes>>();

function build(index: number, route: string, status: number, https: boolean, errorType?: string): HttpRequestAttributes {
  const attributes: HttpRequestAttributes = {
    "http.request.method": METHOD_NAMES[index]!,
    "http.route": route,
    "http.response.status_code": status,
    "url.scheme": https ? "https" : "http",
  };
  if (errorType !== undefined) attributes["error.type"] = errorType;
  return Object.freeze(attributes);
}

/** A class name is bounded (our own error classes); a message never is. */
function errorName(error: Error): string {
  const name = error.constructor?.name || error.name;
  return /^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(name) ? name : "_OTHER";
}
