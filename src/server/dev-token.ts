/**
 * The answer of `GET /dev/token`: JSON `{"token"}` by default, or the bare token and a newline with
 * `?format=text`, for `TOKEN=$(curl -s 'localhost:8080/dev/token?user=alice&format=text')`.
 */
import { HttpError, json } from "./http.ts";

/** `format` query values. */
export const DEV_TOKEN_FORMATS = ["json", "text"] as const;

/**
 * @example
 * return devTokenResponse(await signToken(secret, claims, ttlS), url.searchParams.get("format"));
 */
export function devTokenResponse(token: string, format: string | null): Response {
  if (format === null || format === "json") return json({ token });
  if (format === "text") {
    return new Response(`${token}\n`, { headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" } });
  }
  throw new HttpError(400, `format must be one of ${DEV_TOKEN_FORMATS.join(", ")}`);
}
