/**
 * PROTOCOL §1 v1.1 through a real process: `bun src/main.ts` with a bad config exits 1 with one line
 * on stderr listing every problem; the config env vars reach a real server.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisClient } from "bun";
import { API_KEY } from "./helpers/server.ts";
import { spawnCourier, type CourierProcess } from "./helpers/process.ts";
import { describeRedis } from "./redis-env.ts";

const MAIN = join(import.meta.dir, "../src/main.ts");
const CONFIG_DIR = join(import.meta.dir, "../config");

const running: { kill(): void }[] = [];
afterEach(() => {
  for (const proc of running.splice(0)) proc.kill();
});

/** A copy of `config/` with `test.json` replaced by `text`. */
function configDirWith(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "courier-config-"));
  cpSync(CONFIG_DIR, dir, { recursive: true });
  writeFileSync(join(dir, "test.json"), text);
  return dir;
}

/** Runs `bun src/main.ts` to its exit; a process that starts serving instead is killed by afterEach. */
async function start(env: Record<string, string>) {
  const proc = Bun.spawn(["bun", MAIN], {
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/tmp", COURIER_ENV: "test", HOST: "127.0.0.1", PORT: "0", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  running.push(proc);
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, stdout, stderrLines: stderr.trimEnd().split("\n") };
}

describe("startup with a bad config", () => {
  test("an unknown key in the file: exit 1, one line naming it", async () => {
    const dir = configDirWith(JSON.stringify({ limts: { connectionsPerNode: 10 }, server: { port: 0 } }));
    expect(await start({ COURIER_CONFIG_DIR: dir })).toEqual({
      code: 1,
      stdout: "",
      stderrLines: [`config error: limts: unknown key in ${join(dir, "test.json")} (did you mean limits?)`],
    });
  });

  test("a typo in a COURIER_ variable and a bad value: exit 1, both on one line with their variables", async () => {
    expect(await start({ COURIER_LIMTS__CONNECTIONS_PER_NODE: "50000", COURIER_SERVER__DRAIN_GRACE_MS: "soon", COURIER_API_KEY: "too-short" })).toEqual({
      code: 1,
      stdout: "",
      stderrLines: [
        "config error: COURIER_LIMTS__CONNECTIONS_PER_NODE: names no config field; " +
          "server.drainGraceMs (COURIER_SERVER__DRAIN_GRACE_MS): Invalid input: expected number, received string; " +
          "auth.apiKey (COURIER_API_KEY): Too small: expected string to have >=16 characters",
      ],
    });
  });

  test("invalid JSON: exit 1, one line with file, line and column", async () => {
    const dir = configDirWith('{\n  "server": { "port": 0, }\n}\n');
    expect(await start({ COURIER_CONFIG_DIR: dir })).toEqual({
      code: 1,
      stdout: "",
      stderrLines: [`config error: ${join(dir, "test.json")}:2:26: invalid JSON (Property name must be a string literal)`],
    });
  });
});

describe("config env vars reach a real server", () => {
  let node: CourierProcess | undefined;
  afterEach(() => node?.kill("SIGKILL"));

  test("COURIER_ALLOWED_ORIGINS (comma-separated) drives the upgrade's Origin check", async () => {
    node = await spawnCourier({ COURIER_ALLOWED_ORIGINS: "https://app.example, https://admin.example" });
    // Refused before the token is looked at: no token needed to see the origin verdict.
    const upgrade = (origin: string) =>
      fetch(`${node!.http}/v1/ws`, { headers: { origin, connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" } });
    expect((await upgrade("https://evil.example")).status).toBe(403);
    expect((await upgrade("https://admin.example")).status).toBe(401);
  });
});

describeRedis("COURIER_CLUSTER__KEY_PREFIX", (redisUrl) => {
  let node: CourierProcess | undefined;
  afterEach(() => node?.kill("SIGKILL"));

  test("a real node keeps every Redis key under the configured prefix", async () => {
    const prefix = `h8-prefix-${crypto.randomUUID().slice(0, 8)}`;
    node = await spawnCourier({ COURIER_REDIS_URL: redisUrl, COURIER_NODE_ID: prefix, COURIER_CLUSTER__KEY_PREFIX: prefix });
    const res = await fetch(`${node.http}/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ channel: "user:prefixed", event: "note", data: {} }),
    });
    expect(res.status).toBe(200);

    const redis = new RedisClient(redisUrl);
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = (await redis.send("SCAN", [cursor, "MATCH", `${prefix}:*`, "COUNT", "1000"])) as [string, string[]];
      cursor = next;
      keys.push(...batch);
    } while (cursor !== "0");
    expect(keys).toContain(`${prefix}:{user:prefixed}:m`);
    expect(keys.every((key) => key.startsWith(`${prefix}:`))).toBe(true);
    if (keys.length > 0) await redis.send("DEL", keys);
    redis.close();
  });
});
