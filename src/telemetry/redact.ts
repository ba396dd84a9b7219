/**
 * Redaction for log fields: Courier must never log a token or a key (PROTOCOL §1), and callers
 * should not have to remember which fields hold one.
 */

/** Keys whose values are always hidden, at any depth. */
export const SENSITIVE_KEY = /token|secret|password|authorization|api[-_]?key|admin[-_]?key|cookie/i;

export const REDACTED = "[redacted]";

/** Nesting beyond this is cut: log fields are for humans, and a cycle-safe walk must stop somewhere. */
export const MAX_DEPTH = 6;
const MAX_ARRAY_ITEMS = 50;

// Three base64url segments, the header starting `eyJ` (`{"`): a JWT wherever it sits in a string.
const JWT = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
const BEARER = /\b(Bearer|bearer|BEARER)\s+[^\s,;"']+/g;
// `?token=…`, `&api_key=…` in URLs and query strings.
const SENSITIVE_PARAM = /([?&;][^=&\s#]*(?:token|secret|password|api[-_]?key|admin[-_]?key)[^=&\s#]*=)[^&\s#]*/gi;

/** Hides credentials inside free text (messages, URLs, error messages). */
export function redactString(text: string): string {
  if (!text.includes("eyJ") && !/bearer|[?&;]/i.test(text)) return text;
  return text
    .replace(JWT, REDACTED)
    .replace(BEARER, (_, scheme: string) => `${scheme} ${REDACTED}`)
    .replace(SENSITIVE_PARAM, (_, prefix: string) => `${prefix}${REDACTED}`);
}

/**
 * A JSON-safe copy of `value` with credentials hidden: sensitive keys replaced by `"[redacted]"`,
 * JWTs and Bearer credentials cut out of strings, Errors reduced to `{name, message}` (no stack:
 * stacks leak paths and are useless in aggregated logs), cycles and depth bounded.
 *
 * @example
 * ```ts
 * redact({ user: "u1", headers: { authorization: "Bearer abc" } });
 * // → { user: "u1", headers: { authorization: "[redacted]" } }
 * ```
 */
export function redact(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  switch (typeof value) {
    case "string":
      return redactString(value);
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "boolean":
      return value;
    case "bigint":
      return value.toString();
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
  }
  if (value === null) return null;
  const object = value as object;
  if (object instanceof Date) return Number.isNaN(object.getTime()) ? null : object.toISOString();
  if (object instanceof Error) return errorFields(object);
  if (ArrayBuffer.isView(object)) return `[${object.byteLength} bytes]`;
  if (seen.has(object)) return "[circular]";
  if (depth >= MAX_DEPTH) return "[truncated]";
  seen.add(object);
  try {
    if (Array.isArray(object)) {
      const items = object.slice(0, MAX_ARRAY_ITEMS).map((item) => redact(item, depth + 1, seen) ?? null);
      if (object.length > MAX_ARRAY_ITEMS) items.push(`[${object.length - MAX_ARRAY_ITEMS} more]`);
      return items;
    }
    const entries = object instanceof Map ? [...object.entries()].map(([k, v]) => [String(k), v] as const) : Object.entries(object);
    const out: Record<string, unknown> = {};
    for (const [key, field] of entries) {
      const clean = SENSITIVE_KEY.test(key) ? REDACTED : redact(field, depth + 1, seen);
      if (clean !== undefined) out[key] = clean;
    }
    return out;
  } finally {
    seen.delete(object);
  }
}

function errorFields(error: Error): Record<string, unknown> {
  const fields: Record<string, unknown> = { name: error.name, message: redactString(error.message) };
  // Domain errors carry a code (see src/protocol/codes.ts); it is what an operator greps for.
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" || typeof code === "number") fields.code = code;
  return fields;
}
