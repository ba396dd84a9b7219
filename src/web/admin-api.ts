/**
 * The admin page's HTTP calls: the keys live in this tab's `sessionStorage` and travel only as
 * `Authorization: Bearer`, never in a URL; every failure is an {@link AdminApiError} carrying the
 * server's JSON error (PROTOCOL §2).
 */

const ADMIN_KEY = "courier:admin-key";
const API_KEY = "courier:api-key";

/** The keys of this tab: `api` is the admin key when no separate API key was given. */
export interface Keys {
  admin: string;
  api: string;
}

/** The keys saved in this tab, or null before login. */
export function savedKeys(): Keys | null {
  const admin = sessionStorage.getItem(ADMIN_KEY);
  return admin ? { admin, api: sessionStorage.getItem(API_KEY) || admin } : null;
}

export function saveKeys(admin: string, api: string): void {
  sessionStorage.setItem(ADMIN_KEY, admin);
  if (api) sessionStorage.setItem(API_KEY, api);
  else sessionStorage.removeItem(API_KEY);
}

export function forgetKeys(): void {
  sessionStorage.removeItem(ADMIN_KEY);
  sessionStorage.removeItem(API_KEY);
}

/** A refused or failed call, with the server's error code and message. */
export class AdminApiError extends Error {
  override name = "AdminApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Calls `path` with the admin key (`key: "admin"`) or the API key (`key: "api"`); a body is sent
 * as JSON with POST.
 *
 * @example
 * const stats = await call<StatsBody>(keys, "/ws/stats?scope=cluster", { key: "admin" });
 * await call(keys, "/v1/publish", { key: "api", body: { channel: "user:alice", event: "hello" } });
 */
export async function call<T>(keys: Keys, path: string, options: { key: "admin" | "api" | "none"; body?: unknown }): Promise<T> {
  const headers: Record<string, string> = {};
  if (options.key !== "none") headers.authorization = `Bearer ${options.key === "admin" ? keys.admin : keys.api}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, { method: options.body === undefined ? "GET" : "POST", headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  } catch {
    throw new AdminApiError(0, "network", "the server cannot be reached");
  }
  const body = (await res.json().catch(() => null)) as (T & { error?: string; message?: string }) | null;
  // `/ready` answers its body with 503 when not ready: that is a reading, not a failure.
  if (res.ok || (path === "/ready" && body && "checks" in body)) return body as T;
  throw new AdminApiError(res.status, body?.error ?? "http_error", body?.message ?? `HTTP ${res.status}`);
}
