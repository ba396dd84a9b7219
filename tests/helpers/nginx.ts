/**
 * A real nginx (Debian's package) in front of Courier, for the proxy tests: the shipped
 * `deploy/nginx.conf` with only its two addresses replaced, in a temp dir of its own (pid, logs,
 * temp paths), in the foreground, stopped by `stop()`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePort } from "./process.ts";

const SHIPPED = join(import.meta.dir, "../../deploy/nginx.conf");

/** Where nginx is, or null (tests skip, or fail under CI=true, with tests/helpers/ops-tool.ts). */
export function findNginx(): string | null {
  return Bun.which("nginx") ?? Bun.which("/usr/sbin/nginx");
}

export interface Nginx {
  /** `http://127.0.0.1:<port>` */
  http: string;
  /** `ws://127.0.0.1:<port>/v1/ws` */
  ws: string;
  /** The config it runs, as written. */
  config: string;
  /** What nginx wrote to its error log so far. */
  errorLog(): string;
  stop(): Promise<void>;
}

export interface NginxOptions {
  /** Courier's address, `host:port`. */
  upstream: string;
  /** Rewrites the shipped server config before it runs (e.g. nginx's default `lingering_close`). */
  edit?: (config: string) => string;
}

/** The shipped config with nginx's default `lingering_close on` instead of the recommended `always`. */
export function defaultLingeringClose(config: string): string {
  const edited = config.replace("lingering_close always;", "lingering_close on;");
  if (edited === config) throw new Error("deploy/nginx.conf no longer sets lingering_close always");
  return edited;
}

/** Starts nginx and resolves once it proxies `/health` (bounded). */
export async function startNginx(binary: string, options: NginxOptions): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), "courier-nginx-"));
  const port = freePort();
  const shipped = readFileSync(SHIPPED, "utf8");
  const server = shipped.replace("server 127.0.0.1:8080;", `server ${options.upstream};`).replace("listen 80;", `listen 127.0.0.1:${port};`);
  if (!server.includes(options.upstream) || !server.includes(`listen 127.0.0.1:${port};`)) throw new Error("deploy/nginx.conf: upstream or listen line not found");
  const config = options.edit ? options.edit(server) : server;
  writeFileSync(join(dir, "courier.conf"), config);
  writeFileSync(
    join(dir, "nginx.conf"),
    [
      "daemon off;",
      "worker_processes 1;",
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log notice;`,
      "events { worker_connections 1024; }",
      "http {",
      "  access_log off;",
      ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${dir}/${t};`),
      `  include ${dir}/courier.conf;`,
      "}",
    ].join("\n"),
  );
  const proc: Subprocess = Bun.spawn([binary, "-p", dir, "-c", join(dir, "nginx.conf")], { stdout: "ignore", stderr: "pipe" });
  const stderr = new Response(proc.stderr as ReadableStream).text();
  const http = `http://127.0.0.1:${port}`;
  const errorLog = () => {
    try {
      return readFileSync(join(dir, "error.log"), "utf8");
    } catch {
      return "";
    }
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`nginx exited ${proc.exitCode}: ${await stderr}${errorLog()}`);
    // Courier's own /health through the proxy: nginx is listening and reaches the upstream.
    const ok = await fetch(`${http}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      proc.kill(9);
      throw new Error(`nginx did not start: ${errorLog()}`);
    }
    await Bun.sleep(25); // polling a port that has no event to wait on; bounded by the deadline
  }
  return {
    http,
    ws: `ws://127.0.0.1:${port}/v1/ws`,
    config,
    errorLog,
    async stop() {
      proc.kill("SIGTERM"); // fast shutdown: open WebSockets must not keep it running
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
