/**
 * Environment variables over the config file: the named variables of PROTOCOL.md §1 (`PORT`,
 * `COURIER_API_KEY`, …) and, for every field, `COURIER_<SECTION>__<FIELD>` (camelCase keys in
 * SCREAMING_SNAKE_CASE, deeper sections joined by more `__`). Fields and their types are read from
 * the JSON Schema of the zod schema, so a new config field is settable by env without code here.
 */
import { z } from "zod";
import { ConfigSchema } from "./schema.ts";

/** One problem found in the config, named by field and, when it has one, its env var. */
export interface ConfigIssue {
  /** Dotted path (`auth.apiKey`), or the env var's name when it names no field. */
  field: string;
  envVar?: string;
  message: string;
}

/** Fields with a PROTOCOL env var of their own; these win over `COURIER_<SECTION>__<FIELD>`. */
export const NAMED_ENV_VARS: Readonly<Record<string, string>> = {
  "server.host": "HOST",
  "server.port": "PORT",
  "server.allowedOrigins": "COURIER_ALLOWED_ORIGINS",
  "server.metricsPort": "COURIER_METRICS_PORT",
  "auth.jwtSecret": "COURIER_JWT_SECRET",
  "auth.jwksUrl": "COURIER_JWKS_URL",
  "auth.apiKey": "COURIER_API_KEY",
  "auth.adminKey": "COURIER_ADMIN_KEY",
  "store.dataDir": "COURIER_DATA_DIR",
  "cluster.redisUrl": "COURIER_REDIS_URL",
  "cluster.nodeId": "COURIER_NODE_ID",
  "telemetry.otlpEndpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
  "telemetry.otlpIntervalMs": "OTEL_METRIC_EXPORT_INTERVAL",
};

const PREFIX = "COURIER_";

interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

let root: SchemaNode | undefined;
const schemaRoot = (): SchemaNode => (root ??= z.toJSONSchema(ConfigSchema, { io: "input" }) as SchemaNode);

/** `connectionsPerNode` → `CONNECTIONS_PER_NODE`. */
export function screamingSnake(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * The env var that sets the field at `path` (array indexes name their array's variable), or
 * `undefined` for a path outside the schema.
 *
 * @example
 * envVarOf(["auth", "apiKey"]); // "COURIER_API_KEY"
 * envVarOf(["limits", "connectionsPerNode"]); // "COURIER_LIMITS__CONNECTIONS_PER_NODE"
 */
export function envVarOf(path: readonly PropertyKey[]): string | undefined {
  const keys: string[] = [];
  let node: SchemaNode | undefined = schemaRoot();
  for (const key of path) {
    if (typeof key !== "string" || !node?.properties?.[key]) break;
    node = node.properties[key];
    keys.push(key);
  }
  if (keys.length < 2) return undefined;
  return NAMED_ENV_VARS[keys.join(".")] ?? PREFIX + keys.map(screamingSnake).join("__");
}

/** The keys the schema allows in the object at `path` (a section, or the root for `[]`). */
export function knownKeys(path: readonly PropertyKey[]): string[] {
  let node: SchemaNode | undefined = schemaRoot();
  for (const key of path) node = typeof key === "string" ? node?.properties?.[key] : undefined;
  return Object.keys(node?.properties ?? {});
}

/** The field a `COURIER_<SECTION>__<FIELD>` variable names, or `undefined` when it names none. */
function resolve(name: string): { path: string[]; node: SchemaNode } | undefined {
  const path: string[] = [];
  let node = schemaRoot();
  for (const segment of name.slice(PREFIX.length).split("__")) {
    const key = Object.keys(node.properties ?? {}).find((k) => screamingSnake(k) === segment);
    if (!key) return undefined;
    path.push(key);
    node = node.properties![key]!;
  }
  return path.length >= 2 ? { path, node } : undefined;
}

type Parsed = { value: unknown } | { error: string };

/**
 * Converts env text to the field's type. Text that is not of that type is passed through unchanged,
 * so the schema reports it the same way as a bad value in the file.
 */
function parseValue(node: SchemaNode, text: string): Parsed {
  const trimmed = text.trim();
  switch (node.type) {
    case "integer":
    case "number":
      return { value: trimmed !== "" && Number.isFinite(Number(trimmed)) ? Number(trimmed) : text };
    case "boolean":
      return { value: trimmed === "true" || trimmed === "1" ? true : trimmed === "false" || trimmed === "0" ? false : text };
    case "array":
      if (trimmed.startsWith("[")) return parseJson(trimmed);
      return {
        value: trimmed
          .split(",")
          .map((item) => item.trim())
          .filter((item) => item !== "")
          .map((item) => (node.items ? valueOf(parseValue(node.items, item), item) : item)),
      };
    case "object":
      return parseJson(trimmed);
    default:
      return { value: text };
  }
}

const valueOf = (parsed: Parsed, fallback: unknown) => ("value" in parsed ? parsed.value : fallback);

function parseJson(text: string): Parsed {
  try {
    return { value: JSON.parse(text) };
  } catch {
    return { error: "not valid JSON" };
  }
}

function setPath(raw: Record<string, unknown>, path: readonly string[], value: unknown) {
  let target = raw;
  for (const key of path.slice(0, -1)) {
    const next = target[key];
    target = (target[key] = next && typeof next === "object" && !Array.isArray(next) ? next : {}) as Record<string, unknown>;
  }
  target[path.at(-1)!] = value;
}

/**
 * Writes the env overrides into `raw` (the parsed config file) and returns the problems found: an
 * unknown `COURIER_<SECTION>__<FIELD>` (a typo must not pass silently) or unparsable JSON. Empty
 * variables count as unset.
 */
export function applyEnvOverrides(raw: Record<string, unknown>, env: Record<string, string | undefined>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const apply = (envVar: string, path: string[], node: SchemaNode, text: string) => {
    const parsed = parseValue(node, text);
    if ("error" in parsed) issues.push({ field: path.join("."), envVar, message: parsed.error });
    else setPath(raw, path, parsed.value);
  };
  for (const [name, text] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!name.startsWith(PREFIX) || !name.includes("__") || !text) continue;
    const field = resolve(name);
    if (field) apply(name, field.path, field.node, text);
    else issues.push({ field: name, message: "names no config field" });
  }
  for (const [dotted, name] of Object.entries(NAMED_ENV_VARS)) {
    const text = env[name];
    if (!text) continue;
    const path = dotted.split(".");
    apply(name, path, path.reduce((node, key) => node.properties![key]!, schemaRoot()), text);
  }
  return issues;
}
