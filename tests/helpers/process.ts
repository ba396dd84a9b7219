/** Courier as a child process (`bun src/main.ts`), for crash, drain and multi-node tests. */
import { join } from "node:path";
import type { Subprocess } from "bun";

const MAIN = join(import.meta.dir, "../../src/main.ts");

/** A port that was free a moment ago (the child binds it itself). */
export function freePort(): number {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

/** Reads `stream` to its end, handing each decoded chunk to `onText`. */
export async function pumpText(stream: ReadableStream<Uint8Array>, onText: (text: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    onText(decoder.decode(value, { stream: true }));
  }
}

export interface CourierProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  http: string;
  ws: string;
  output: () => string;
  /** Resolves once the output contains `text` (bounded by `timeoutMs`). */
  printed(text: string, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code. */
  exited: Promise<number>;
  kill(signal?: NodeJS.Signals | number): void;
}

function childEnv(env: Record<string, string>, port: number): Record<string, string> {
  return { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/tmp", COURIER_ENV: "test", HOST: "127.0.0.1", PORT: String(port), ...env };
}

/** Runs a node that is expected to refuse to start: resolves with its exit code and output. */
export async function runCourierToExit(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(["bun", MAIN], { env: childEnv(env, freePort()), stdout: "pipe", stderr: "pipe" });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, stdout, stderr };
}

/** Starts a node and resolves once `/health` answers (bounded); `preload` runs a module before it (fault injection). */
export async function spawnCourier(env: Record<string, string>, port = freePort(), options: { preload?: string } = {}): Promise<CourierProcess> {
  const preload = options.preload ? ["--preload", options.preload] : [];
  const proc = Bun.spawn(["bun", ...preload, MAIN], { env: childEnv(env, port), stdout: "pipe", stderr: "pipe" });
  let out = "";
  const watchers = new Set<() => void>();
  for (const stream of [proc.stdout, proc.stderr]) {
    void pumpText(stream, (text) => {
      out += text;
      for (const w of [...watchers]) w();
    });
  }
  const printed = (text: string, timeoutMs = 5000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!out.includes(text)) return;
        clearTimeout(timer);
        watchers.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        watchers.delete(check);
        reject(new Error(`courier did not print ${JSON.stringify(text)} within ${timeoutMs} ms: ${out.slice(-500)}`));
      }, timeoutMs);
      watchers.add(check);
      check();
    });
  const http = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`courier exited ${proc.exitCode}: ${out}`);
    const ok = await fetch(`${http}/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      proc.kill(9);
      throw new Error(`courier did not become ready: ${out}`);
    }
    await Bun.sleep(25); // polling a port that has no event to wait on; bounded by the deadline
  }
  return {
    proc,
    port,
    http,
    ws: `ws://127.0.0.1:${port}/v1/ws`,
    output: () => out,
    printed,
    exited: proc.exited,
    kill: (signal = "SIGTERM") => proc.kill(signal as never),
  };
}
