/**
 * A private `redis-server` for destructive chaos tests: its own port and `--dir`, started and
 * killed by the test (never the machine's shared Redis). Readiness is the server's own
 * "Ready to accept connections" log line, not a polling loop.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, watchOutput } from "../helpers/process.ts";

export interface PrivateRedis {
  port: number;
  url: string;
  dir: string;
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the server logged. */
  output: () => string;
  /** Resolves once the server has logged a line matching `pattern`. */
  logged(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Runs `redis-cli` against this server; resolves with its trimmed output. */
  cli(...args: string[]): Promise<string>;
  kill9(): Promise<void>;
}

const all: PrivateRedis[] = [];
const dirs: string[] = [];

/** A fresh temp dir for one scenario's Redis data; removed by `stopAllRedis`. */
export function redisDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "courier-chaos-redis-"));
  dirs.push(dir);
  return dir;
}

/**
 * Starts `redis-server` on `port` (default: a free one) in `dir` with `args` (e.g. RDB or AOF
 * settings, `--replicaof`), and resolves once it accepts connections.
 *
 * @example
 * const redis = await startRedis({ dir: redisDir(), args: ["--save", "", "--appendonly", "no"] });
 * await redis.cli("SAVE");
 */
export async function startRedis(o: { dir: string; port?: number; args?: string[] }): Promise<PrivateRedis> {
  const port = o.port ?? freePort();
  const proc = Bun.spawn(
    ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--dir", o.dir, "--dbfilename", "dump.rdb", "--enable-debug-command", "local", ...(o.args ?? [])],
    { stdout: "pipe", stderr: "pipe" },
  );
  const watch = watchOutput(proc, `redis-server on ${port}`);
  const logged = (pattern: RegExp, timeoutMs = 10_000) => watch.until((out) => pattern.test(out), String(pattern), timeoutMs);
  const redis: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir: o.dir,
    proc,
    output: watch.output,
    logged,
    async cli(...args: string[]) {
      const p = Bun.spawn(["redis-cli", "-p", String(port), ...args], { stdout: "pipe", stderr: "pipe" });
      const [text] = await Promise.all([new Response(p.stdout).text(), p.exited]);
      return text.trim();
    },
    async kill9() {
      proc.kill(9);
      await proc.exited;
    },
  };
  all.push(redis);
  await logged(/Ready to accept connections/);
  return redis;
}

/** Kills every server started here and removes their dirs (for `afterAll`). */
export async function stopAllRedis(): Promise<void> {
  for (const r of all.splice(0)) {
    r.proc.kill(9);
    await r.proc.exited;
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
