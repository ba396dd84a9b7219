/**
 * Startup either serves or exits 1 with one line naming the cause (PROTOCOL §1 v1.1), with real
 * processes (`bun src/main.ts`): the port in use, an address this host does not have, a data dir
 * that cannot be one, a bad config field. Never exit 0 without serving, never an "uncaught
 * exception" log line instead of the cause. Each case prints its exit code and line.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCourierToExit } from "./helpers/process.ts";

const root = mkdtempSync(join(tmpdir(), "courier-startup-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh, usable data dir, so each case fails for its own reason only. */
function dataDir(name: string): string {
  return join(root, name);
}

/** Runs a node expected to refuse, prints what it said, and returns the exit code and stderr lines. */
async function refuse(name: string, env: Record<string, string>): Promise<{ code: number; lines: string[]; stdout: string }> {
  const { code, stdout, stderr } = await runCourierToExit(env);
  const lines = stderr.split("\n").filter((l) => l.trim() !== "");
  console.log(`[startup] ${name}: exit ${code}; stderr: ${JSON.stringify(lines)}`);
  return { code, lines, stdout };
}

test("the port in use: exit 1 with one line naming the address and PORT", async () => {
  using holder = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("someone else") });
  const port = holder.port!;
  const { code, lines, stdout } = await refuse("port in use", { PORT: String(port), COURIER_DATA_DIR: dataDir("port") });
  expect({ code, lines }).toEqual({ code: 1, lines: [`cannot listen on 127.0.0.1:${port} (server.port, env PORT): the port is already in use`] });
  expect(stdout).not.toContain("uncaught exception");
  expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe("someone else");
});

test("an address this host does not have: exit 1 with one line naming HOST", async () => {
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a host.
  const { code, lines } = await refuse("foreign address", { HOST: "192.0.2.1", COURIER_DATA_DIR: dataDir("host") });
  expect(code).toBe(1);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toStartWith("cannot listen on 192.0.2.1:");
  expect(lines[0]).toContain("(server.host, env HOST)");
});

test("a data dir under a regular file: exit 1 with one line naming the path", async () => {
  // Root ignores permission bits, so "unwritable" is made of a path no one can create.
  const file = join(root, "file-not-dir");
  writeFileSync(file, "not a directory");
  const path = join(file, "data");
  const { code, lines, stdout } = await refuse("data dir under a file", { COURIER_DATA_DIR: path });
  expect(code).toBe(1);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toStartWith(`data dir ${path} cannot be used:`);
  expect(stdout).not.toContain("uncaught exception");
});

test("a bad config field: exit 1 with one line naming the field and its env var", async () => {
  const { code, lines } = await refuse("bad config", { COURIER_API_KEY: "short", COURIER_DATA_DIR: dataDir("config") });
  expect(code).toBe(1);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toStartWith("config error:");
  expect(lines[0]).toContain("auth.apiKey (COURIER_API_KEY)");
});
