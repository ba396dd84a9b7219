import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ConfigError, loadConfig, parseConfig } from "../../src/config/load.ts";
import { ENVIRONMENTS } from "../../src/config/schema.ts";

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
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("auth.jwtSecret");
  });
});
