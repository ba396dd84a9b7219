/**
 * What is running: Courier's version (package.json), the commit it was built from and the Bun
 * version. Read once at startup; `courier_build_info` and `GET /version` show it.
 *
 * The commit comes from, in order: `COURIER_COMMIT` (set it at image build: `--build-arg`), a
 * `BUILD_COMMIT` file at the repository root (written by a build step that has git), the `.git`
 * directory of a checkout (read as files: a container has no `git` binary), else `unknown`.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };

export interface BuildInfo {
  /** `version` of package.json. */
  version: string;
  /** Full or abbreviated commit hash, or `unknown`. */
  commit: string;
  /** `Bun.version`. */
  bun: string;
}

const ROOT = join(import.meta.dir, "..", "..");

/**
 * @example
 * buildInfo(); // { version: "0.1.0", commit: "91453f7…", bun: "1.4.4" }
 */
export function buildInfo(env: Record<string, string | undefined> = process.env, root = ROOT): BuildInfo {
  return { version: pkg.version, commit: commitOf(env, root), bun: Bun.version };
}

function commitOf(env: Record<string, string | undefined>, root: string): string {
  const fromEnv = env.COURIER_COMMIT?.trim();
  if (fromEnv) return fromEnv;
  const fromFile = readText(join(root, "BUILD_COMMIT"));
  if (fromFile) return fromFile;
  return gitHead(root) ?? "unknown";
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/** HEAD's commit from the files of `.git` (a directory, or a worktree's `gitdir:` pointer file). */
function gitHead(root: string): string | undefined {
  let gitDir = join(root, ".git");
  if (!existsSync(gitDir)) return undefined;
  if (!statSync(gitDir).isDirectory()) {
    const pointer = /^gitdir: (.+)$/m.exec(readText(gitDir) ?? "")?.[1];
    if (!pointer) return undefined;
    gitDir = resolve(root, pointer.trim());
  }
  const head = readText(join(gitDir, "HEAD"));
  const ref = /^ref: (.+)$/.exec(head ?? "")?.[1];
  if (!ref) return head && /^[0-9a-f]{40}$/.test(head) ? head : undefined;
  // A worktree keeps refs in the main repository (`commondir`).
  const common = resolve(gitDir, readText(join(gitDir, "commondir")) ?? ".");
  for (const dir of [gitDir, common]) {
    const loose = readText(join(dir, ref));
    if (loose) return loose;
  }
  const packed = readText(join(common, "packed-refs")) ?? "";
  return new RegExp(`^([0-9a-f]{40}) ${ref.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m").exec(packed)?.[1];
}
