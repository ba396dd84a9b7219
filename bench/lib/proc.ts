/**
 * Process plumbing for the harness: spawn pinned to one CPU, read CPU time and RSS from /proc, wait
 * for a health check, and kill by pid. Every wait here is bounded: the harness shares a 2-core
 * machine and must never hang or leave a process behind.
 */
import type { Subprocess } from "bun";
import { existsSync, readFileSync } from "node:fs";

const TASKSET = ["/usr/bin/taskset", "/bin/taskset"].find((path) => existsSync(path));

/** Clock ticks per second for /proc/<pid>/stat; 100 on every Linux we run on. */
const CLK_TCK = 100;

export interface ProcSample {
  /** utime + stime in ms. */
  cpuMs: number;
  /** VmRSS in KiB. */
  rssKb: number;
  /**
   * RssAnon in KiB: VmRSS without the file pages (Bun's binary, shared libraries). A server that
   * touches code for the first time during a measurement grows its file pages, which are not memory
   * a connection holds; the idle row is judged on this part.
   */
  anonKb: number;
  /** Wall clock at the sample, ms. */
  at: number;
}

/** Reads CPU and RSS of `pid`; `undefined` once the process is gone. */
export function sampleProc(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces and parentheses: fields start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { cpuMs: (ticks * 1000) / CLK_TCK, rssKb: kb("VmRSS"), anonKb: kb("RssAnon"), at: performance.now() };
  } catch {
    return undefined;
  }
}

/** CPU use between two samples as a share of one core (1 = one core busy all the time). */
export function cpuShare(from: ProcSample | undefined, to: ProcSample | undefined): number | undefined {
  if (!from || !to || to.at <= from.at) return undefined;
  return (to.cpuMs - from.cpuMs) / (to.at - from.at);
}

export interface SpawnOptions {
  cmd: string[];
  /** CPU to pin to with taskset, when taskset exists. */
  cpu?: number;
  env?: Record<string, string>;
  cwd?: string;
  stdin?: "pipe" | "ignore";
}

/** Spawns `cmd` pinned to `cpu`; stdout is piped, stderr inherited so failures are visible. */
export function spawnPinned(options: SpawnOptions): Subprocess<"pipe" | "ignore", "pipe", "inherit"> {
  const cmd = TASKSET && options.cpu !== undefined ? [TASKSET, "-c", String(options.cpu), ...options.cmd] : options.cmd;
  const proc = Bun.spawn(cmd, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdin: options.stdin ?? "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  live.add(proc);
  void proc.exited.then(() => live.delete(proc));
  return proc;
}

/** Whether spawned processes get pinned (reported with the results). */
export const pinning = TASKSET !== undefined;

const live = new Set<Subprocess>();

/**
 * `promise`'s value, or `undefined` after `ms`. The timer is cleared either way: a leftover
 * Bun.sleep keeps the harness alive long after the report is written.
 */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: Timer | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Kills `proc` by pid: SIGTERM, then SIGKILL after `graceMs`. Resolves once it has exited. */
export async function stop(proc: Subprocess, graceMs = 2_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  const exited = await within(proc.exited, graceMs);
  if (exited === undefined) {
    proc.kill("SIGKILL");
    await within(proc.exited, graceMs);
  }
}

/** Kills every process this harness spawned and that is still running (on error or SIGINT). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((proc) => stop(proc, 1_000)));
}

/** Drains a piped stdout so a chatty child never blocks on a full pipe; calls `onLine` per line. */
export async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      onLine(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  }
  if (buffered) onLine(buffered);
}

/** A free TCP port on 127.0.0.1, found by binding port 0 and releasing it. */
export function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

/**
 * Polls `url` until it answers 200, the process exits, or `timeoutMs` passes.
 * Returns the wall-clock time (epoch ms) of the first 200.
 */
export async function waitHealthy(url: string, proc: Subprocess, timeoutMs = 15_000, everyMs = 20): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`server exited (${proc.exitCode ?? proc.signalCode}) before ${url} answered`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(500) });
      await response.arrayBuffer();
      if (response.status === 200) return nowMs();
    } catch {
      // Not listening yet.
    }
    await Bun.sleep(everyMs);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
}

const TIME_ORIGIN = performance.timeOrigin;

/** Epoch ms with sub-ms precision, comparable across processes on one machine. */
export function nowMs(): number {
  return TIME_ORIGIN + performance.now();
}
