import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { applyEnvOverrides, envVarOf, NAMED_ENV_VARS, screamingSnake } from "../../src/config/env-overrides.ts";
import { ConfigError, loadConfig, parseConfig } from "../../src/config/load.ts";
import { ConfigSchema, ENVIRONMENTS } from "../../src/config/schema.ts";

const secrets = { COURIER_JWT_SECRET: "s".repeat(32), COURIER_API_KEY: "k".repeat(32) };

describe("config files", () => {
  test.each(ENVIRONMENTS)("config/%s.json parses", async (env) => {
    const config = await loadConfig({ COURIER_ENV: env, ...secrets });
    expect(config.env).toBe(env);
    expect(config.limits.connectionsPerUser).toBe(3);
  });

  test("node limits per environment", async () => {
    expect((await loadConfig({ COURIER_ENV: "development" })).limits.connectionsPerNode).toBe(1_000);
    expect((await loadConfig({ COURIER_ENV: "production", ...secrets })).limits.connectionsPerNode).toBe(100_000);
  });

  test("env vars override the file", async () => {
    const config = await loadConfig({ COURIER_ENV: "test", PORT: "1234", HOST: "::1", COURIER_DATA_DIR: "/tmp/x", COURIER_NODE_ID: "n1", COURIER_API_KEY: "a".repeat(20) });
    expect(config.server).toMatchObject({ port: 1234, host: "::1" });
    expect(config.store.dataDir).toBe("/tmp/x");
    expect(config.cluster.nodeId).toBe("n1");
    expect(config.auth.adminKey).toBe("a".repeat(20));
  });

  test("COURIER_TELEMETRY=off turns metrics off (a benchmarking switch)", async () => {
    expect((await loadConfig({ COURIER_ENV: "test" })).telemetry.enabled).toBe(true);
    expect((await loadConfig({ COURIER_ENV: "test", COURIER_TELEMETRY: "off" })).telemetry.enabled).toBe(false);
  });

  test("a bad field names the field and never echoes the value", () => {
    expect(() => parseConfig("test", { limits: { connectionsPerUser: 0 } })).toThrow(/limits\.connectionsPerUser/);
    try {
      parseConfig("test", { auth: { apiKey: "short-secret" } });
      throw new Error("expected a ConfigError");
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).field).toBe("auth.apiKey");
      expect((error as Error).message).not.toContain("short-secret");
    }
  });

  test("an unknown environment is refused", async () => {
    await expect(loadConfig({ COURIER_ENV: "prod" })).rejects.toThrow(/COURIER_ENV/);
  });

  test("production without secrets is refused naming the field", () => {
    expect(() => parseConfig("production", {}, {})).toThrow(/auth\.jwtSecret/);
    expect(() => parseConfig("production", {}, { COURIER_JWT_SECRET: "s".repeat(32) })).toThrow(/auth\.apiKey/);
    expect(parseConfig("production", {}, { COURIER_JWKS_URL: "https://id.example/jwks", COURIER_API_KEY: "k".repeat(32) }).env).toBe("production");
  });
});

/** The one-line message `parseConfig` throws for these inputs (fails the test when it does not throw). */
function configError(overrides: Record<string, unknown>, env: Record<string, string> = {}, name: (typeof ENVIRONMENTS)[number] = "test"): string {
  try {
    parseConfig(name, overrides, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("expected a ConfigError");
}

/** A config dir holding one `test.json` with this text. */
function configDirWith(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "courier-config-"));
  writeFileSync(join(dir, "test.json"), text);
  return dir;
}

describe("config errors", () => {
  test("an unknown key in the file is an error, with a suggestion when one is close", () => {
    expect(configError({ limts: { connectionsPerNode: 5 } })).toBe("config error: limts: unknown key in the config file (did you mean limits?)");
    expect(configError({ server: { prot: 1, banana: true } })).toBe(
      "config error: server.prot: unknown key in the config file (did you mean port?); server.banana: unknown key in the config file",
    );
    expect(configError({ resilience: { readinessGroupsMs: { stroe: 1 } } })).toBe(
      "config error: resilience.readinessGroupsMs.stroe: unknown key in the config file (did you mean store?)",
    );
  });

  test("every error is listed at once, each with its field and env var", () => {
    expect(configError({ limits: { connectionsPerUser: 0 }, auth: { apiKey: "short" }, server: { drainGraceMs: -1 } })).toBe(
      "config error: server.drainGraceMs (COURIER_SERVER__DRAIN_GRACE_MS): Too small: expected number to be >=0; " +
        "limits.connectionsPerUser (COURIER_LIMITS__CONNECTIONS_PER_USER): Too small: expected number to be >=1; " +
        "auth.apiKey (COURIER_API_KEY): Too small: expected string to have >=16 characters",
    );
  });

  test("ConfigError carries the issues as data; field is the first one's", () => {
    try {
      parseConfig("test", { limits: { maxJsonDepth: 0 } }, { COURIER_LIMTS__X: "1" });
      throw new Error("expected a ConfigError");
    } catch (error) {
      expect((error as ConfigError).issues).toEqual([
        { field: "COURIER_LIMTS__X", message: "names no config field" },
        { field: "limits.maxJsonDepth", envVar: "COURIER_LIMITS__MAX_JSON_DEPTH", message: "Too small: expected number to be >=1" },
      ]);
      expect((error as ConfigError).field).toBe("COURIER_LIMTS__X");
    }
  });

  test("production lists every missing secret with the other errors", () => {
    expect(configError({ limits: { frameBurst: 0 } }, {}, "production")).toBe(
      "config error: limits.frameBurst (COURIER_LIMITS__FRAME_BURST): Too small: expected number to be >=1; " +
        "auth.jwtSecret (COURIER_JWT_SECRET): production requires COURIER_JWT_SECRET or COURIER_JWKS_URL; " +
        "auth.apiKey (COURIER_API_KEY): production requires COURIER_API_KEY",
    );
  });

  test("a bad value from the environment names its variable, never the value", () => {
    const message = configError({}, { COURIER_API_KEY: "short-secret", COURIER_LIMITS__CONNECTIONS_PER_NODE: "lots", PORT: "http" });
    expect(message).toBe(
      "config error: server.port (PORT): Invalid input: expected number, received string; " +
        "limits.connectionsPerNode (COURIER_LIMITS__CONNECTIONS_PER_NODE): Invalid input: expected number, received string; " +
        "auth.apiKey (COURIER_API_KEY): Too small: expected string to have >=16 characters",
    );
    expect(message).not.toContain("short-secret");
  });

  test("an env var naming no field is an error; other variables are not ours", () => {
    expect(configError({}, { COURIER_LIMTS__CONNECTIONS_PER_NODE: "5", COURIER_LIMITS__CONECTIONS: "5", COURIER_SERVER__PORT__X: "1" })).toBe(
      "config error: COURIER_LIMITS__CONECTIONS: names no config field; COURIER_LIMTS__CONNECTIONS_PER_NODE: names no config field; COURIER_SERVER__PORT__X: names no config field",
    );
    expect(() => parseConfig("test", {}, { COURIER_SOMETHING: "1", OTHER__THING: "1", COURIER_LIMITS__MAX_JSON_DEPTH: "" })).not.toThrow();
  });

  test("the env is a COURIER_ENV matter, not a file key", () => {
    expect(configError({ env: "production" })).toBe("config error: env: set by COURIER_ENV, not in the config file");
  });

  test("cross-field rules: drain grace inside the drain, metrics port apart from the port", () => {
    expect(configError({ server: { drainMs: 1000, drainGraceMs: 1000 } })).toBe(
      "config error: server.drainGraceMs (COURIER_SERVER__DRAIN_GRACE_MS): must be less than server.drainMs (1000)",
    );
    expect(configError({}, { PORT: "9000", COURIER_METRICS_PORT: "9000" })).toBe("config error: server.metricsPort (COURIER_METRICS_PORT): must differ from server.port (PORT)");
  });

  test("trusted proxies must be IPs or CIDRs; the key prefix must keep hash tags intact", () => {
    expect(configError({ server: { trustedProxies: ["10.0.0.0/8", "proxy.internal"] }, cluster: { keyPrefix: "a{b}" } })).toBe(
      "config error: server.trustedProxies.1 (COURIER_SERVER__TRUSTED_PROXIES): expected an IP address or CIDR; " +
        "cluster.keyPrefix (COURIER_CLUSTER__KEY_PREFIX): expected 1-64 characters without braces or spaces",
    );
  });

  test("invalid JSON in a file names file, line and column", async () => {
    const dir = configDirWith('{\n  "limits": {\n    "connectionsPerNode": 5,\n  }\n}\n');
    await expect(loadConfig({ COURIER_ENV: "test" }, dir)).rejects.toThrow(
      new ConfigError([{ field: `${join(dir, "test.json")}:4:3`, message: "invalid JSON (Property name must be a string literal)" }]).message,
    );
  });

  test.each([
    ['{"a": 1,}', "1:9"],
    ['{"a": tru}', "1:7"],
    ["[1, 2", "1:6"],
    ['{\n  // a comment\n  "a": 1\n}', "2:3"],
    ['{"a": "line\nbreak"}', "1:12"],
    ['{"a": 1} x', "1:10"],
  ])("JSON error position of %p is %s", async (text, position) => {
    const dir = configDirWith(text);
    const error = await loadConfig({ COURIER_ENV: "test" }, dir).catch((e: ConfigError) => e);
    expect((error as ConfigError).field).toBe(`${join(dir, "test.json")}:${position}`);
  });

  test("a file that is not an object is refused", async () => {
    const dir = configDirWith("[]");
    await expect(loadConfig({ COURIER_ENV: "test" }, dir)).rejects.toThrow(`config error: ${join(dir, "test.json")}: expected a JSON object`);
  });
});

describe("COURIER_<SECTION>__<FIELD>", () => {
  test("sets any field, numbers and booleans parsed", () => {
    const config = parseConfig("test", {}, {
      COURIER_LIMITS__CONNECTIONS_PER_NODE: "50000",
      COURIER_TELEMETRY__ENABLED: "false",
      COURIER_JOBS__SIMULATOR_SPEED: "2.5",
      COURIER_SERVER__HEARTBEAT_S: "20",
      COURIER_LOG__LEVEL: "debug",
    });
    expect(config.limits.connectionsPerNode).toBe(50_000);
    expect(config.telemetry.enabled).toBe(false);
    expect(config.jobs.simulatorSpeed).toBe(2.5);
    expect(config.server.heartbeatS).toBe(20);
    expect(config.log.level).toBe("debug");
  });

  test("arrays as comma-separated or JSON, records as JSON, deeper sections with more __", () => {
    const config = parseConfig("test", {}, {
      COURIER_DELIVERY__CRITICAL_EVENTS: "a, b,,c",
      COURIER_SERVER__TRUSTED_PROXIES: '["10.0.0.0/8","::1"]',
      COURIER_AUTH__TIERS: '{"alice":"pro"}',
      COURIER_RESILIENCE__READINESS_GROUPS_MS__STORE: "250",
    });
    expect(config.delivery.criticalEvents).toEqual(["a", "b", "c"]);
    expect(config.server.trustedProxies).toEqual(["10.0.0.0/8", "::1"]);
    expect(config.auth.tiers).toEqual({ alice: "pro" });
    expect(config.resilience.readinessGroupsMs).toEqual({ store: 250, broker: 2_000, optional: 1_000 });
  });

  test("unparsable JSON is an error naming the variable", () => {
    expect(configError({}, { COURIER_AUTH__TIERS: '{"alice"' })).toBe("config error: auth.tiers (COURIER_AUTH__TIERS): not valid JSON");
  });

  test("overrides the file; the PROTOCOL's named variables win over it", () => {
    const config = parseConfig("test", { server: { port: 1 }, limits: { frameBurst: 7 } }, { COURIER_SERVER__PORT: "2", PORT: "3", COURIER_LIMITS__FRAME_BURST: "8" });
    expect(config.server.port).toBe(3);
    expect(config.limits.frameBurst).toBe(8);
  });

  test("every field of the schema has a variable that sets it", () => {
    const leaves: string[][] = [];
    const walk = (node: any, path: string[]) => {
      if (node.type === "object" && node.properties) for (const [key, child] of Object.entries(node.properties)) walk(child, [...path, key]);
      else if (path.length >= 2) leaves.push(path);
    };
    walk(z.toJSONSchema(ConfigSchema, { io: "input" }), []);
    expect(leaves.length).toBeGreaterThan(60);
    for (const path of leaves) {
      const generic = `COURIER_${path.map(screamingSnake).join("__")}`;
      const raw: Record<string, any> = {};
      expect({ generic, issues: applyEnvOverrides(raw, { [generic]: "[]" }) }).toEqual({ generic, issues: [] });
      expect(path.reduce((node, key) => node?.[key], raw as any)).toBeDefined();
      expect(envVarOf(path)).toBe(NAMED_ENV_VARS[path.join(".")] ?? generic);
    }
  });

  test("the v1.1 named variables", () => {
    const config = parseConfig("test", {}, { COURIER_ALLOWED_ORIGINS: "https://a.example, https://b.example", COURIER_METRICS_PORT: "9464", OTEL_METRIC_EXPORT_INTERVAL: "1500" });
    expect(config.server.allowedOrigins).toEqual(["https://a.example", "https://b.example"]);
    expect(config.server.metricsPort).toBe(9464);
    expect(config.telemetry.otlpIntervalMs).toBe(1500);
  });

  test("the v1.1 fields and their defaults", () => {
    const config = parseConfig("test", {});
    expect(config.server).toMatchObject({ drainGraceMs: 2_000, trustedProxies: [] });
    expect(config.server.metricsPort).toBeUndefined();
    expect(config.limits).toMatchObject({ upgradesPerIpPerSec: 50, maxEventFrameBytes: 1_048_000 });
    expect(config.cluster.keyPrefix).toBe("courier");
  });
});

describe("bun run start", () => {
  test("production without secrets exits 1 with one clear line", async () => {
    const proc = Bun.spawn(["bun", join(import.meta.dir, "../../src/main.ts")], {
      env: { PATH: process.env.PATH, COURIER_ENV: "production", PORT: "0", HOST: "127.0.0.1" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(code).toBe(1);
    const lines = stderr.trim().split("\n");
    expect(lines).toEqual([
      "config error: auth.jwtSecret (COURIER_JWT_SECRET): production requires COURIER_JWT_SECRET or COURIER_JWKS_URL; auth.apiKey (COURIER_API_KEY): production requires COURIER_API_KEY",
    ]);
  });
});
