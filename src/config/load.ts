/**
 * Loads the config once at start: schema defaults, then `config/<env>.json` overrides, then the env
 * vars of PROTOCOL.md §1. A bad config throws `ConfigError` naming the field.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { ConfigSchema, ENVIRONMENTS, type Config, type Environment } from "./schema.ts";

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

type Env = Record<string, string | undefined>;

const CONFIG_DIR = join(import.meta.dir, "..", "..", "config");

/**
 * Builds the config for `env.COURIER_ENV` from its file and the environment.
 *
 * @example
 * const config = await loadConfig({ COURIER_ENV: "test", PORT: "0" });
 */
export async function loadConfig(env: Env = process.env, configDir = CONFIG_DIR): Promise<Config> {
  const name = env.COURIER_ENV ?? "development";
  if (!(ENVIRONMENTS as readonly string[]).includes(name)) {
    throw new ConfigError(`config error: COURIER_ENV must be one of ${ENVIRONMENTS.join(", ")}, got "${name}"`, "env");
  }
  const file = Bun.file(join(configDir, `${name}.json`));
  let overrides: Record<string, unknown> = {};
  if (await file.exists()) {
    try {
      overrides = (await file.json()) as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError(`config error: config/${name}.json is not valid JSON (${(error as Error).message})`, "file");
    }
  }
  return parseConfig(name as Environment, overrides, env);
}

/** Validates `overrides` for `name` with the env vars applied on top. */
export function parseConfig(name: Environment, overrides: Record<string, unknown>, env: Env = {}): Config {
  const raw = structuredClone(overrides);
  raw.env = name;
  const set = (section: string, key: string, value: unknown) => {
    if (value === undefined || value === "") return;
    const target = ((raw[section] as Record<string, unknown> | undefined) ??= {});
    target[key] = value;
  };
  set("server", "host", env.HOST);
  set("server", "port", env.PORT === undefined ? undefined : Number(env.PORT));
  set("auth", "jwtSecret", env.COURIER_JWT_SECRET);
  set("auth", "jwksUrl", env.COURIER_JWKS_URL);
  set("auth", "apiKey", env.COURIER_API_KEY);
  set("auth", "adminKey", env.COURIER_ADMIN_KEY);
  set("store", "dataDir", env.COURIER_DATA_DIR);
  set("cluster", "redisUrl", env.COURIER_REDIS_URL);
  set("cluster", "nodeId", env.COURIER_NODE_ID);
  set("telemetry", "otlpEndpoint", env.OTEL_EXPORTER_OTLP_ENDPOINT);
  // A benchmarking switch (the cost of metrics), not part of the protocol's env vars.
  if (env.COURIER_TELEMETRY === "off") set("telemetry", "enabled", false);

  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.join(".") || "(root)";
    // Never echo the offending value: it may be a secret.
    throw new ConfigError(`config error: ${field}: ${issue.message}`, field);
  }
  const config = result.data;
  config.auth.adminKey ??= config.auth.apiKey;
  config.cluster.nodeId ??= `${hostname()}-${process.pid}`;
  return config;
}
