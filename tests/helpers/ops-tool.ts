/**
 * Decides whether tests that drive an external tool (promtool, podman) run. Without the tool they
 * are skipped with the reason in their name and a warning, except under `CI=true`, where a missing
 * tool fails the file: `.ci/run` installs them, and a CI job must never go green by skipping.
 *
 * @example
 * describeWithTool("promtool", "promtool", "apt-get install prometheus", (promtool) => {
 *   test("checks the config", () => { … Bun.spawnSync([promtool, "check", "config", file]) … });
 * });
 */
import { describe } from "bun:test";

/** Where `tool` is on PATH, or null. */
export function findTool(tool: string): string | null {
  return Bun.which(tool);
}

/** `describe` when `tool` is found, else `describe.skip` naming the reason (or a failure under CI=true). */
export function describeWithTool(name: string, tool: string, install: string, body: (path: string) => void): void {
  const path = findTool(tool);
  if (path) {
    describe(name, () => body(path));
    return;
  }
  const reason = `${tool} not found (${install})`;
  if (process.env.CI === "true") throw new Error(`${name}: ${reason}; CI must install it (.ci/run)`);
  console.warn(`[skip] ${name}: ${reason}`);
  describe.skip(`${name} [skipped: ${reason}]`, () => body(tool));
}

/** Runs a tool to completion: exit code and both outputs, for assertions that show them on failure. */
export function run(cmd: string[], options: { cwd?: string; timeoutMs?: number } = {}): { code: number; out: string } {
  const result = Bun.spawnSync(cmd, { cwd: options.cwd, stdout: "pipe", stderr: "pipe", timeout: options.timeoutMs ?? 60_000 });
  return { code: result.exitCode ?? -1, out: `${result.stdout.toString()}${result.stderr.toString()}` };
}
