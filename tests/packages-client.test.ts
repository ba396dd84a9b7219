/**
 * `@courier/client` as a user gets it: the browser entry's size budget, a tarball from `npm pack`
 * installed into a scratch project outside the repo, `tsc --noEmit` on a scratch file importing
 * it, and that file run with Bun against a real Courier. Also: the root package's `"."` export
 * starts nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, API_KEY, type TestServer } from "./helpers/server.ts";

const ROOT = join(import.meta.dir, "..");
const PACKAGE = join(ROOT, "packages/client");
const TSC = join(ROOT, "node_modules/.bin/tsc");
const BUDGET_GZIP_BYTES = 12 * 1024;

const scratch = mkdtempSync(join(tmpdir(), "courier-client-scratch-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(cmd: string[], cwd: string, env: Record<string, string> = {}) {
  const proc = Bun.spawnSync(cmd, { cwd, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { exitCode: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
}

describe("@courier/client browser entry", () => {
  test("minified and gzipped it stays within 12 KB, with no import left (zero dependencies)", async () => {
    const result = await Bun.build({ entrypoints: [join(PACKAGE, "src/index.ts")], minify: true, target: "browser", format: "esm" });
    expect(result.success).toBe(true);
    const code = await result.outputs[0]!.text();
    expect(code).not.toMatch(/\bimport\s*[{*\w]|\bimport\(|\brequire\(/);
    const gzipBytes = Bun.gzipSync(new TextEncoder().encode(code)).byteLength;
    console.info(`@courier/client browser entry: ${code.length} bytes minified, ${gzipBytes} bytes gzip (budget ${BUDGET_GZIP_BYTES})`);
    expect(gzipBytes).toBeLessThanOrEqual(BUDGET_GZIP_BYTES);
  });
});

describe("root package", () => {
  test('its "." export can be imported without starting a server', () => {
    const { exports } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { exports: Record<string, string> };
    const entry = join(ROOT, exports["."]!);
    // A started server keeps the process alive and logs: the child must print only the export's type and exit.
    const child = run(["bun", "-e", `const m = await import(${JSON.stringify(entry)}); console.log(typeof m.startCourier)`], scratch);
    expect({ exitCode: child.exitCode, stdout: child.stdout }).toEqual({ exitCode: 0, stdout: "function\n" });
  }, 30_000);
});

describe("@courier/client tarball in a scratch project", () => {
  let server: TestServer;
  let tarball: string;
  beforeAll(async () => {
    server = await startServer();
    const packed = run(["npm", "pack", "--json", "--pack-destination", scratch], PACKAGE);
    if (packed.exitCode !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(scratch, info!.filename);
    const files = info!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(["package.json", "README.md", "dist/index.js", "dist/index.d.ts", "dist/file-store.js", "dist/file-store.d.ts"]));
    expect(files.filter((f) => f.startsWith("src/"))).toEqual([]);
  }, 120_000);
  afterAll(() => server?.stop());

  test("installs offline, passes tsc --noEmit, connects, subscribes and receives published events", async () => {
    const project = join(scratch, "app");
    Bun.spawnSync(["mkdir", "-p", project]);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "scratch-app", private: true, type: "module" }));
    const installed = run(["npm", "install", "--offline", "--no-audit", "--no-fund", tarball], project);
    expect(installed.stderr).not.toContain("ERR");
    expect(installed.exitCode).toBe(0);
    const manifest = JSON.parse(readFileSync(join(project, "node_modules/@courier/client/package.json"), "utf8"));
    expect({ dependencies: manifest.dependencies, sideEffects: manifest.sideEffects }).toEqual({ dependencies: undefined, sideEffects: false });

    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          lib: ["ESNext", "DOM"],
          strict: true,
          noEmit: true,
          typeRoots: [join(ROOT, "node_modules/@types")],
          types: ["node"],
        },
        include: ["main.ts"],
      }),
    );
    writeFileSync(join(project, "main.ts"), SCRATCH_MAIN);
    const typecheck = run([TSC, "--noEmit", "-p", "tsconfig.json"], project);
    expect(typecheck.stdout + typecheck.stderr).toBe("");
    expect(typecheck.exitCode).toBe(0);

    const storePath = join(project, "data", "offsets.json");
    const env = { COURIER_URL: server.ws, COURIER_TOKEN: await server.token("alice", { tier: "pro" }), COURIER_API_KEY: API_KEY, STORE_PATH: storePath };
    const proc = Bun.spawn(["bun", "main.ts"], { cwd: project, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: "" });
    const out = JSON.parse(stdout) as { texts: string[]; signals: string[]; stored: { epoch: string; offset: number } };
    expect(out.texts).toEqual(["replayed", "live"]);
    expect(out.signals).toEqual(["signals:starter", "signals:pro"]);
    // The file store holds the last processed position after close().
    expect(JSON.parse(readFileSync(storePath, "utf8"))).toEqual({ "user:alice": out.stored });
    expect(existsSync(storePath)).toBe(true);
  }, 60_000);
});

/**
 * What a user writes: a backend-style publish, a typed client that resumes with `since` (the
 * replay), then a live event, both through `on("event:<name>")` with typed `data`.
 */
const SCRATCH_MAIN = `
import { CourierClient, signalsFor, type CourierEvent } from "@courier/client";
import { fileOffsetStore } from "@courier/client/file-store";

type Events = { greeting: { text: string } };

const url = process.env.COURIER_URL!;
const http = url.replace(/^ws/, "http").replace(/\\/v1\\/ws$/, "");
const publish = async (text: string) => {
  const res = await fetch(http + "/v1/publish", {
    method: "POST",
    headers: { authorization: "Bearer " + process.env.COURIER_API_KEY, "content-type": "application/json" },
    body: JSON.stringify({ channel: "user:alice", event: "greeting", data: { text } }),
  });
  return (await res.json()) as { epoch: string; offset: number };
};

const store = fileOffsetStore(process.env.STORE_PATH!);
const client = new CourierClient<Events>({ url, token: process.env.COURIER_TOKEN!, store });
const texts: string[] = [];
const done = Promise.withResolvers<void>();
client.on("error", (error) => done.reject(error));
client.on("event:greeting", (e) => {
  const text: string = e.data.text;
  // @ts-expect-error: data is typed by the event map
  e.data.missing;
  texts.push(text);
  if (texts.length === 1) void publish("live");
  else done.resolve();
});

const first = await publish("replayed");
client.subscribe("user:alice", (e: CourierEvent<Events>) => void e.offset, { since: { epoch: first.epoch, offset: first.offset - 1 } });
client.connect();
await done.promise;
client.close();
store.close();
console.log(JSON.stringify({ texts, signals: signalsFor("pro"), stored: store.get("user:alice") }));
`;
