import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createTokenVerifier } from "../../src/auth/tokens.ts";
import { MAX_TTL_S, runTokenCli, USAGE } from "../../src/cli/token.ts";
import { JWT_SECRET } from "../helpers/server.ts";

async function run(...argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runTokenCli(argv, { env: { COURIER_ENV: "test" }, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const usageLine = USAGE.split("\n")[0];
const verify = createTokenVerifier({ jwtSecret: JWT_SECRET, clockToleranceS: 0 });

describe("bun run token", () => {
  test("prints a token with the asked claims and lifetime", async () => {
    const before = Math.floor(Date.now() / 1000);
    const { code, stdout, stderr } = await run("alice", "--tier", "pro", "--channels", "job:1, job:2", "--ttl", "60");
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    const principal = await verify(stdout.trim());
    expect(principal).toMatchObject({ user: "alice", tier: "pro", channels: new Set(["job:1", "job:2"]) });
    expect(principal.exp - before).toBeGreaterThanOrEqual(60);
    expect(principal.exp - before).toBeLessThanOrEqual(61);
  });

  test("without --ttl the token lives auth.devTokenTtlS", async () => {
    const before = Math.floor(Date.now() / 1000);
    const principal = await verify((await run("bob")).stdout.trim());
    expect(principal.tier).toBe("starter");
    expect(principal.exp - before).toBeGreaterThanOrEqual(3600);
    expect(principal.exp - before).toBeLessThanOrEqual(3601);
  });

  test("--help and -h print the usage, exit 0", async () => {
    expect(await run("--help")).toEqual({ code: 0, stdout: USAGE, stderr: "" });
    expect((await run("-h")).stdout).toBe(USAGE);
  });

  test.each([
    [["alice", "--ttl", "0"], `--ttl must be a whole number of seconds from 1 to ${MAX_TTL_S}, got "0"`],
    [["alice", "--ttl", "1h"], `--ttl must be a whole number of seconds from 1 to ${MAX_TTL_S}, got "1h"`],
    [["alice", "--ttl", "1.5"], `--ttl must be a whole number of seconds from 1 to ${MAX_TTL_S}, got "1.5"`],
    [["alice", "--ttl", String(MAX_TTL_S + 1)], `--ttl must be a whole number of seconds from 1 to ${MAX_TTL_S}, got "${MAX_TTL_S + 1}"`],
    [["alice", "--tier", "gold"], '--tier must be one of starter, pro, enterprise, got "gold"'],
    [[], "a user is required"],
    [["alice", "bob"], 'one user only, got also "bob"'],
    [["alice", "--tire", "pro"], "Unknown option '--tire'"],
  ])("usage error %p: exit 2, the reason and the usage line", async (argv, reason) => {
    expect(await run(...argv)).toEqual({ code: 2, stdout: "", stderr: `${reason}\n${usageLine}\n` });
  });

  test("the largest --ttl is accepted", async () => {
    expect((await run("alice", "--ttl", String(MAX_TTL_S))).code).toBe(0);
  });
});

describe("bun run token, as a process", () => {
  const spawn = (args: string[], env: Record<string, string> = {}) =>
    Bun.spawnSync(["bun", "run", "token", ...args], {
      cwd: join(import.meta.dir, "../.."),
      env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/tmp", COURIER_ENV: "test", ...env },
    });

  test("--help exits 0 with the usage on stdout", () => {
    const result = spawn(["--help"]);
    expect({ code: result.exitCode, stdout: result.stdout.toString() }).toEqual({ code: 0, stdout: USAGE });
  });

  test("a bad --ttl exits 2; production exits 1", () => {
    const bad = spawn(["alice", "--ttl", "soon"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain("--ttl must be");
    const production = spawn(["alice"], { COURIER_ENV: "production", COURIER_JWT_SECRET: "s".repeat(32), COURIER_API_KEY: "k".repeat(32) });
    expect({ code: production.exitCode, stderr: production.stderr.toString() }).toEqual({ code: 1, stderr: expect.stringContaining("refusing to mint tokens for production\n") });
  });
});

test("an option parse error keeps to one line", async () => {
  const { code, stderr } = await run("alice", "--ttl", "-5");
  expect({ code, stderr }).toEqual({ code: 2, stderr: `Option '--ttl' argument is ambiguous.\n${usageLine}\n` });
});
