/**
 * Real filesystems for the chaos scenarios: a small tmpfs (a disk that fills) and a read-only bind
 * mount. CI runs as root, where `chmod` stops nothing; where mounting is not permitted the
 * scenario is skipped and says why.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Mounted {
  dir: string;
  /** Unmounts (lazily, so a killed child's open files cannot block it) and removes the mount point. */
  unmount(): void;
}

function run(cmd: string[]): { ok: boolean; output: string } {
  const result = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { ok: result.exitCode === 0, output: (result.stdout.toString() + result.stderr.toString()).trim() };
}

function mounted(dir: string): Mounted {
  return {
    dir,
    unmount: () => {
      run(["umount", "-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Why mounting is not possible here, or null when it is (probed once with a real tmpfs). */
export const mountUnavailable: string | null = (() => {
  const dir = mkdtempSync(join(tmpdir(), "courier-mount-probe-"));
  const probe = run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]);
  if (probe.ok) run(["umount", dir]);
  rmSync(dir, { recursive: true, force: true });
  return probe.ok ? null : `mount not permitted here (${probe.output || "no output"}): skipped`;
})();

/** A tmpfs of `sizeBytes` at a fresh directory. */
export function mountTmpfs(sizeBytes: number): Mounted {
  const dir = mkdtempSync(join(tmpdir(), "courier-tmpfs-"));
  const result = run(["mount", "-t", "tmpfs", "-o", `size=${sizeBytes}`, "tmpfs", dir]);
  if (!result.ok) throw new Error(`mount tmpfs failed: ${result.output}`);
  return mounted(dir);
}

/** `source` bind-mounted read-only at a fresh directory. */
export function mountReadOnly(source: string): Mounted {
  const dir = mkdtempSync(join(tmpdir(), "courier-ro-"));
  const bind = run(["mount", "--bind", source, dir]);
  if (!bind.ok) throw new Error(`bind mount failed: ${bind.output}`);
  const ro = run(["mount", "-o", "remount,bind,ro", dir]);
  if (!ro.ok) {
    run(["umount", dir]);
    throw new Error(`read-only remount failed: ${ro.output}`);
  }
  return mounted(dir);
}
