/**
 * Builds a workspace package, packs it with `npm pack` and installs the tarball into a scratch
 * project in a temp dir outside the repo, as a user would (offline: the packages have no
 * dependencies). For the package tests; not a test file itself.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REPO = join(import.meta.dir, "../..");
export const TSC = join(REPO, "node_modules/.bin/tsc");

export interface Ran {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; never throws on a non-zero exit (the caller asserts). */
export async function run(cmd: string[], options: { cwd: string; env?: Record<string, string> }): Promise<Ran> {
  const proc = Bun.spawn(cmd, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr };
}

async function mustRun(cmd: string[], cwd: string): Promise<Ran> {
  const ran = await run(cmd, { cwd });
  if (ran.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${ran.exitCode}:\n${ran.stdout}\n${ran.stderr}`);
  return ran;
}

export interface ScratchProject {
  dir: string;
  tarball: string;
  [Symbol.dispose](): void;
}

/**
 * `bun run build`, `npm pack`, then `npm install <tarball>` into a fresh project.
 *
 * @example
 * using scratch = await packAndInstall("packages/server");
 * writeFileSync(join(scratch.dir, "main.ts"), `import { CourierServer } from "@courier/server";`);
 */
export async function packAndInstall(packageDir: string): Promise<ScratchProject> {
  const source = join(REPO, packageDir);
  await mustRun(["bun", "run", "build"], source);
  const dir = mkdtempSync(join(tmpdir(), "courier-scratch-"));
  await mustRun(["npm", "pack", "--silent", "--pack-destination", dir], source);
  const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith(".tgz"))!);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
  await mustRun(["npm", "install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], dir);
  return { dir, tarball, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A strict tsconfig for a scratch project, resolving packages through their `exports` as Node does. */
export function writeScratchTsconfig(dir: string, files: string[]): void {
  const compilerOptions = { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2022", "DOM"], strict: true, noEmit: true, types: [] };
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, files }));
}
