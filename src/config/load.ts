/**
 * Loads the config once at start: schema defaults, then `config/<env>.json` overrides, then the env
 * vars (`env-overrides.ts`). A bad config throws one `ConfigError` listing every problem, each named
 * by its field and env var, never by its value (it may be a secret).
 */
import { hostname } from "node:os";
import { join } from "node:path";
import type { z } from "zod";
import { applyEnvOverrides, envVarOf, knownKeys, type ConfigIssue } from "./env-overrides.ts";
import { JsonSyntaxError, parseJson } from "./parse-json.ts";
import { ConfigSchema, ENVIRONMENTS, type Config, type Environment } from "./schema.ts";

export type { ConfigIssue } from "./env-overrides.ts";

/** Every problem of a config; `message` is the one line main.ts prints before exiting 1. */
export class ConfigError extends Error {
  override name = "ConfigError";
  /** The first problem's field (`auth.apiKey`). */
  readonly field: string;
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(`config error: ${issues.map(formatIssue).join("; ")}`);
    this.field = issues[0]?.field ?? "(root)";
  }
}

/** `auth.apiKey (COURIER_API_KEY): Too small: expected string to have >=16 characters`. */
export function formatIssue(issue: ConfigIssue): string {
  return `${issue.field}${issue.envVar ? ` (${issue.envVar})` : ""}: ${issue.message}`;
}

type Env = Record<string, string | undefined>;

const CONFIG_DIR = join(import.meta.dir, "..", "..", "config");

/**
 * Builds the config for `env.COURIER_ENV` from its file (in `COURIER_CONFIG_DIR`, default the
 * repository's `config/`) and the environment.
 *
 * @example
 * const config = await loadConfig({ COURIER_ENV: "test", PORT: "0" });
 */
export async function loadConfig(env: Env = process.env, configDir = env.COURIER_CONFIG_DIR || CONFIG_DIR): Promise<Config> {
  const name = env.COURIER_ENV || "development";
  if (!(ENVIRONMENTS as readonly string[]).includes(name)) {
    throw new ConfigError([{ field: "env", envVar: "COURIER_ENV", message: `must be one of ${ENVIRONMENTS.join(", ")}, got "${name}"` }]);
  }
  const source = configDir === CONFIG_DIR ? `config/${name}.json` : join(configDir, `${name}.json`);
  const file = Bun.file(join(configDir, `${name}.json`));
  let overrides: Record<string, unknown> = {};
  if (await file.exists()) {
    try {
      overrides = parseJson(await file.text()) as Record<string, unknown>;
    } catch (error) {
      if (!(error instanceof JsonSyntaxError)) throw error;
      throw new ConfigError([{ field: `${source}:${error.line}:${error.column}`, message: `invalid JSON (${error.message})` }]);
    }
    if (!overrides || typeof overrides !== "object" || Array.isArray(overrides)) {
      throw new ConfigError([{ field: source, message: "expected a JSON object" }]);
    }
  }
  return parseConfig(name as Environment, overrides, env, { source });
}

/**
 * Validates `overrides` for `name` with the env vars applied on top.
 *
 * @example
 * parseConfig("test", { limits: { connectionsPerNode: 10 } }, { PORT: "0" });
 */
export function parseConfig(name: Environment, overrides: Record<string, unknown>, env: Env = {}, { source = "the config file" } = {}): Config {
  const raw = structuredClone(overrides);
  const issues = applyEnvOverrides(raw, env);
  if ("env" in raw) issues.unshift({ field: "env", message: `set by COURIER_ENV, not in ${source}` });
  raw.env = name;
  // A benchmarking switch (the cost of metrics), not part of the protocol's env vars.
  if (env.COURIER_TELEMETRY === "off") ((raw.telemetry as Record<string, unknown> | undefined) ??= {}).enabled = false;

  const result = ConfigSchema.safeParse(raw);
  if (!result.success) issues.push(...result.error.issues.flatMap((issue) => fromZod(issue, source)));
  issues.push(...requiredSecrets(name, raw));
  if (result.success) issues.push(...crossFieldIssues(result.data));
  if (issues.length > 0) throw new ConfigError(issues);

  const config = result.data!;
  config.auth.adminKey ??= config.auth.apiKey;
  config.cluster.nodeId ??= `${hostname()}-${process.pid}`;
  return config;
}

function fromZod(issue: z.core.$ZodIssue, source: string): ConfigIssue[] {
  if (issue.code === "unrecognized_keys") {
    const known = knownKeys(issue.path);
    return issue.keys.map((key) => {
      const near = known.find((candidate) => editDistance(candidate.toLowerCase(), key.toLowerCase()) <= 2);
      return { field: [...issue.path, key].join("."), message: `unknown key in ${source}${near ? ` (did you mean ${near}?)` : ""}` };
    });
  }
  // Never echo the offending value: zod's messages name types and bounds, not inputs.
  return [{ field: issue.path.join(".") || "(root)", envVar: envVarOf(issue.path), message: issue.message }];
}

/** Staging and production must not start on the shipped development secrets' absence. */
function requiredSecrets(name: Environment, raw: Record<string, unknown>): ConfigIssue[] {
  if (name !== "production" && name !== "staging") return [];
  const auth = (raw.auth ?? {}) as Record<string, unknown>;
  const issues: ConfigIssue[] = [];
  if (!auth.jwtSecret && !auth.jwksUrl) {
    issues.push({ field: "auth.jwtSecret", envVar: envVarOf(["auth", "jwtSecret"]), message: `${name} requires COURIER_JWT_SECRET or COURIER_JWKS_URL` });
  }
  if (!auth.apiKey) issues.push({ field: "auth.apiKey", envVar: envVarOf(["auth", "apiKey"]), message: `${name} requires COURIER_API_KEY` });
  return issues;
}

/** Rules between fields, checked once each field is valid on its own. */
function crossFieldIssues(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const { server } = config;
  if (server.drainGraceMs >= server.drainMs) {
    issues.push({ field: "server.drainGraceMs", envVar: envVarOf(["server", "drainGraceMs"]), message: `must be less than server.drainMs (${server.drainMs})` });
  }
  if (server.metricsPort !== undefined && server.metricsPort !== 0 && server.metricsPort === server.port) {
    issues.push({ field: "server.metricsPort", envVar: envVarOf(["server", "metricsPort"]), message: "must differ from server.port (PORT)" });
  }
  return issues;
}

/** Levenshtein distance, for "did you mean" on a misspelt key. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length]!;
}
