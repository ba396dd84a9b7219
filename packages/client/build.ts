/**
 * Builds `dist/`: ESM for browsers, Bun and Node (`bun build`), and `.d.ts` files (`tsc`).
 * Run with `bun run build` here or at the repo root.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = import.meta.dir;
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });

const result = await Bun.build({
  entrypoints: [join(root, "src/index.ts"), join(root, "src/file-store.ts")],
  outdir: dist,
  format: "esm",
  target: "browser",
  splitting: true,
  // The file store's `node:fs` stays an import: the browser entry never reaches it.
  external: ["node:*"],
});
if (!result.success) throw new AggregateError(result.logs, "@courier/client: bundle failed");

const tsc = Bun.spawnSync([join(root, "../../node_modules/.bin/tsc"), "-p", join(root, "tsconfig.build.json")], { stdout: "inherit", stderr: "inherit" });
if (tsc.exitCode !== 0) throw new Error(`@courier/client: tsc exited ${tsc.exitCode}`);
// The sources import `./x.ts` (run as-is by Bun); published declarations must name `./x.js`.
for (const name of readdirSync(dist, { recursive: true, encoding: "utf8" })) {
  if (!name.endsWith(".d.ts")) continue;
  const file = join(dist, name);
  writeFileSync(file, readFileSync(file, "utf8").replace(/(["'])(\.\.?\/[^"']+)\.ts\1/g, "$1$2.js$1"));
}
console.info(`@courier/client: ${result.outputs.map((o) => o.path.slice(root.length + 1)).join(", ")} + .d.ts`);
