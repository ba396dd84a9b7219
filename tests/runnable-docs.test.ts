/**
 * Runnable docs: every fenced block marked ```ts runnable or ```sh runnable in README.md,
 * docs/*.md and packages/*\/README.md is run against a real Courier, so a copied example works.
 * Each block gets COURIER_URL (HTTP base), COURIER_WS_URL (the WebSocket URL), COURIER_API_KEY and COURIER_TOKEN (a token for the user `alice`);
 * ts blocks run with Bun from a temp dir whose tsconfig maps `@courier/*` to the packages' sources.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { API_KEY, startServer, type TestServer } from "./helpers/server.ts";
import { REPO, run } from "./helpers/pack-install.ts";

const BLOCK_TIMEOUT_MS = 20_000;

export interface RunnableBlock {
  /** `path:line` of the block's first line, relative to the repo. */
  where: string;
  lang: "ts" | "sh";
  code: string;
}

/** The runnable blocks of one markdown text. */
export function runnableBlocks(markdown: string, file: string): RunnableBlock[] {
  const blocks: RunnableBlock[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(\S+)(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang, rest] = open;
    const close = lines.findIndex((l, j) => j > i && l.trim() === fence);
    const end = close === -1 ? lines.length : close;
    if ((lang === "ts" || lang === "sh") && /(^|\s)runnable(\s|$)/.test(rest!)) {
      const body = lines.slice(i + 1, end).map((l) => (l.startsWith(indent!) ? l.slice(indent!.length) : l));
      blocks.push({ where: `${file}:${i + 2}`, lang, code: body.join("\n") + "\n" });
    }
    i = end;
  }
  return blocks;
}

function docFiles(): string[] {
  const files = ["README.md"];
  if (existsSync(join(REPO, "docs"))) files.push(...readdirSync(join(REPO, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`));
  for (const pkg of readdirSync(join(REPO, "packages"))) if (existsSync(join(REPO, "packages", pkg, "README.md"))) files.push(`packages/${pkg}/README.md`);
  return files;
}

const WORK = join(REPO, "tests/artifacts/runnable-docs");

/** A tsconfig mapping every workspace package's name to its source entry, as the tarball would resolve. */
function writeWorkTsconfig(): void {
  const paths: Record<string, string[]> = {};
  // Each export of each package resolves to its source (`.` → src/index.ts, `./x` → src/x.ts), so
  // the blocks run against the code as it is, built or not.
  for (const pkg of readdirSync(join(REPO, "packages"))) {
    const manifest = join(REPO, "packages", pkg, "package.json");
    if (!existsSync(manifest)) continue;
    const { name, exports = { ".": {} } } = JSON.parse(readFileSync(manifest, "utf8")) as { name: string; exports?: Record<string, unknown> };
    for (const subpath of Object.keys(exports)) {
      const entry = join(REPO, "packages", pkg, "src", subpath === "." ? "index.ts" : `${subpath.slice(2)}.ts`);
      if (existsSync(entry)) paths[subpath === "." ? name : `${name}/${subpath.slice(2)}`] = [relative(WORK, entry)];
    }
  }
  writeFileSync(join(WORK, "tsconfig.json"), JSON.stringify({ compilerOptions: { paths } }));
}

/** Runs one block; resolves with a failure text naming the block's location, or null. */
export async function runBlock(block: RunnableBlock, env: Record<string, string>): Promise<string | null> {
  const file = join(WORK, `${block.where.replace(/[^A-Za-z0-9]+/g, "_")}.${block.lang}`);
  writeFileSync(file, block.code);
  const cmd = block.lang === "ts" ? ["bun", file] : ["bash", file];
  const timeout = AbortSignal.timeout(BLOCK_TIMEOUT_MS);
  const proc = Bun.spawn(cmd, { cwd: WORK, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe", signal: timeout });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (exitCode === 0) return null;
  const why = timeout.aborted ? `did not stop within ${BLOCK_TIMEOUT_MS} ms` : `exited ${exitCode}`;
  return `${block.where}: ${block.lang} block ${why}\n--- stdout\n${stdout}--- stderr\n${stderr}`;
}

let server: TestServer;
let env: Record<string, string>;

beforeAll(async () => {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  writeWorkTsconfig();
  server = await startServer();
  env = { COURIER_URL: server.http, COURIER_WS_URL: `${server.http.replace(/^http/, "ws")}/v1/ws`, COURIER_API_KEY: API_KEY, COURIER_TOKEN: await server.token("alice", { tier: "pro" }) };
});
afterAll(async () => {
  await server.stop();
  rmSync(WORK, { recursive: true, force: true });
});

describe("runnable docs", () => {
  test("blocks are found with the line they start on", () => {
    const md = "# x\n\n```ts runnable\nconsole.log(1);\n```\n\n```ts\nnot run\n```\n\n  ```sh runnable\n  echo hi\n  ```\n";
    expect(runnableBlocks(md, "x.md")).toEqual([
      { where: "x.md:4", lang: "ts", code: "console.log(1);\n" },
      { where: "x.md:12", lang: "sh", code: "echo hi\n" },
    ]);
  });

  test("a failing block is reported with its file and line", async () => {
    const failure = await runBlock({ where: "docs/x.md:7", lang: "sh", code: "echo oops >&2; exit 3\n" }, env);
    expect(failure).toStartWith("docs/x.md:7: sh block exited 3");
    expect(failure).toContain("oops");
  });

  test("the protocol reference and the server package README have runnable examples", () => {
    for (const file of ["docs/protocol.md", "packages/server/README.md"]) {
      expect(runnableBlocks(readFileSync(join(REPO, file), "utf8"), file).length).toBeGreaterThan(0);
    }
  });

  const blocks = docFiles().flatMap((file) => runnableBlocks(readFileSync(join(REPO, file), "utf8"), file));
  for (const block of blocks) {
    test(`${block.where} runs`, async () => {
      expect(await runBlock(block, env)).toBeNull();
    }, BLOCK_TIMEOUT_MS + 5_000);
  }
});
