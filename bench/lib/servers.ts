/**
 * Starts a server under test on its own CPU and a free port, and waits for its health check.
 * Courier gets a fresh data dir per start unless one is passed (the resume scenario restarts on the
 * same one).
 */
import type { Subprocess } from "bun";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, readLines, spawnPinned, stop, waitHealthy } from "./proc.ts";
import type { TargetInfo, TargetKind } from "./target.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const COURIER_MAIN = join(ROOT, "src", "main.ts");
/** The server runs here; the load generator on the other CPU. */
export const SERVER_CPU = 0;
export const LOAD_CPU = 1;

export interface RunningServer {
  info: TargetInfo;
  proc: Subprocess<"pipe" | "ignore", "pipe", "inherit">;
  port: number;
  dataDir?: string;
  /** Last stdout lines, for error messages. */
  tail: string[];
  /** Epoch ms of the first 200 from /health. */
  healthyAt: number;
}

function command(kind: TargetKind): string[] {
  switch (kind) {
    case "bare":
      return ["bun", join(ROOT, "bench/servers/bare-bun.ts")];
    case "socketio":
      return ["node", join(ROOT, "bench/servers/socketio.mjs")];
    case "courier":
      return ["bun", COURIER_MAIN];
  }
}

/** Why Courier cannot be measured, or undefined when it can be tried. */
export function courierMissing(): string | undefined {
  return existsSync(COURIER_MAIN) ? undefined : "src/main.ts does not exist";
}

export interface StartOptions {
  port?: number;
  dataDir?: string;
  /** Extra env for Courier (it overrides COURIER_ENV=test). */
  env?: Record<string, string>;
}

export async function startServer(kind: TargetKind, options: StartOptions = {}): Promise<RunningServer> {
  const port = options.port ?? freePort();
  const env: Record<string, string> = { PORT: String(port), HOST: "127.0.0.1" };
  let dataDir: string | undefined;
  if (kind === "courier") {
    dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "courier-bench-"));
    Object.assign(env, { COURIER_ENV: "test", COURIER_DATA_DIR: dataDir }, options.env);
  }
  const proc = spawnPinned({ cmd: command(kind), cpu: SERVER_CPU, env, cwd: ROOT });
  const tail: string[] = [];
  void readLines(proc.stdout, (line) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    const healthyAt = await waitHealthy(`${base}/health`, proc, kind === "courier" ? 20_000 : 10_000);
    return { info: { kind, base }, proc, port, dataDir, tail, healthyAt };
  } catch (error) {
    await stop(proc);
    const logs = tail.slice(-5).join(" | ");
    throw new Error(`${(error as Error).message}${logs ? ` — last output: ${logs}` : ""}`);
  }
}
