/**
 * The OpenTelemetry semantic-convention attributes of `http.server.request.duration`
 * (https://opentelemetry.io/docs/specs/semconv/http/http-metrics/), with bounded values only: the
 * method from the known set else `_OTHER`, the route template, never the raw path.
 */

/** The methods semconv names; anything else is `_OTHER`, so a client inventing methods adds no series. */
const KNOWN_METHODS = new Set(["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"]);

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
 * when nothing more specific is known.
 *
 * @example
 * httpRequestAttributes(req, "/v1/publish", 503, error)
 * // { "http.request.method": "POST", "http.route": "/v1/publish", "http.response.status_code": 503,
 * //   "url.scheme": "http", "error.type": "StoreUnavailableError" }
 */
export function httpRequestAttributes(req: Request, route: string, status: number, thrown?: unknown): HttpRequestAttributes {
  const method = req.method.toUpperCase();
  const attributes: HttpRequestAttributes = {
    "http.request.method": KNOWN_METHODS.has(method) ? method : "_OTHER",
    "http.route": route,
    "http.response.status_code": status,
    "url.scheme": req.url.startsWith("https:") ? "https" : "http",
  };
  // A 4xx is the client's error, not the server's (semconv leaves error.type unset for it).
  if (status >= 500) attributes["error.type"] = thrown instanceof Error ? errorName(thrown) : String(status);
  return attributes;
}

/** A class name is bounded (our own error classes); a message never is. */
function errorName(error: Error): string {
  const name = error.constructor?.name || error.name;
  return /^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(name) ? name : "_OTHER";
}
