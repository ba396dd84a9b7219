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

/** A child's stdout and stderr, gathered as they arrive. */
export interface OutputWatch {
  output: () => string;
  /**
   * Resolves once `seen(output)` holds; rejects when the child's output ends without it (it
   * exited: no need to wait out the timeout) or after `timeoutMs`.
   */
  until(seen: (output: string) => boolean, what: string, timeoutMs: number): Promise<void>;
}

/**
 * Gathers `proc`'s stdout and stderr; `name` opens the error messages.
 *
 * @example
 * const watch = watchOutput(proc, "redis-server on 6390");
 * await watch.until((out) => /Ready to accept connections/.test(out), "ready line", 10_000);
 */
export function watchOutput(proc: Subprocess<"ignore", "pipe", "pipe">, name: string): OutputWatch {
  let out = "";
  let ended = false;
  const watchers = new Set<() => void>();
  const notify = () => {
    for (const w of [...watchers]) w();
  };
  // "Ended" once the child exited and both pipes are read to their end: the exit alone may come
  // before the last chunk is read.
  const pumps = [proc.stdout, proc.stderr].map((stream) =>
    pumpText(stream, (text) => {
      out += text;
      notify();
    }),
  );
  void Promise.all([...pumps, proc.exited]).then(() => {
    ended = true;
    notify();
  });
  const until = (seen: (output: string) => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const finish = (error?: Error) => {
        clearTimeout(timer);
        watchers.delete(check);
        if (error) reject(error);
        else resolve();
      };
      const check = () => {
        if (seen(out)) finish();
        else if (ended) finish(new Error(`${name} exited (${proc.exitCode}) without ${what}: ${out.slice(-500)}`));
      };
      const timer = setTimeout(() => finish(new Error(`${name}: no ${what} within ${timeoutMs} ms: ${out.slice(-500)}`)), timeoutMs);
      watchers.add(check);
      check();
    });
  return { output: () => out, until };
}

export interface CourierProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  port: number;
  http: string;
  ws: string;
  output: () => string;
  /** Resolves once the output contains `text` (or matches it), bounded by `timeoutMs`. */
  printed(text: string | RegExp, timeoutMs?: number): Promise<void>;
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
  const watch = watchOutput(proc, "courier");
  const printed = (text: string | RegExp, timeoutMs = 5000) =>
    typeof text === "string"
      ? watch.until((out) => out.includes(text), `printing ${JSON.stringify(text)}`, timeoutMs)
      : watch.until((out) => text.test(out), `printing ${text}`, timeoutMs);
  const http = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`courier exited ${proc.exitCode}: ${watch.output()}`);
    const ok = await fetch(`${http}/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      proc.kill(9);
      throw new Error(`courier did not become ready: ${watch.output()}`);
    }
    await Bun.sleep(25); // polling a port that has no event to wait on; bounded by the deadline
  }
  return {
    proc,
    port,
    http,
    ws: `ws://127.0.0.1:${port}/v1/ws`,
    output: watch.output,
    printed,
    exited: proc.exited,
    kill: (signal = "SIGTERM") => proc.kill(signal as never),
  };
}
