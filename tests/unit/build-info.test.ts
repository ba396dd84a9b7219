import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { buildInfo } from "../../src/telemetry/build-info.ts";
import { createTelemetry } from "../../src/telemetry/index.ts";

const emptyDir = () => mkdtempSync(join(tmpdir(), "courier-build-"));

describe("buildInfo", () => {
  test("version from package.json, Bun's version, commit from COURIER_COMMIT first", () => {
    const dir = emptyDir();
    writeFileSync(join(dir, "BUILD_COMMIT"), "from-file\n");
    expect(buildInfo({ COURIER_COMMIT: " abc123 " }, dir)).toEqual({ version: pkg.version, commit: "abc123", bun: Bun.version });
    expect(buildInfo({}, dir).commit).toBe("from-file");
  });

  test("a checkout's .git is read without the git binary: loose ref, packed ref, detached HEAD", () => {
    const sha = (c: string) => c.repeat(40);
    const loose = emptyDir();
    mkdirSync(join(loose, ".git/refs/heads"), { recursive: true });
    writeFileSync(join(loose, ".git/HEAD"), "ref: refs/heads/main\n");
    writeFileSync(join(loose, ".git/refs/heads/main"), `${sha("a")}\n`);
    expect(buildInfo({}, loose).commit).toBe(sha("a"));

    const packed = emptyDir();
    mkdirSync(join(packed, ".git"), { recursive: true });
    writeFileSync(join(packed, ".git/HEAD"), "ref: refs/heads/main\n");
    writeFileSync(join(packed, ".git/packed-refs"), `# pack-refs with: peeled\n${sha("b")} refs/heads/main\n`);
    expect(buildInfo({}, packed).commit).toBe(sha("b"));

    const detached = emptyDir();
    mkdirSync(join(detached, ".git"), { recursive: true });
    writeFileSync(join(detached, ".git/HEAD"), `${sha("c")}\n`);
    expect(buildInfo({}, detached).commit).toBe(sha("c"));
  });

  test("a git worktree (.git is a gitdir pointer) resolves through the main repository", () => {
    const main = emptyDir();
    mkdirSync(join(main, ".git/worktrees/wt"), { recursive: true });
    mkdirSync(join(main, ".git/refs/heads"), { recursive: true });
    writeFileSync(join(main, ".git/worktrees/wt/HEAD"), "ref: refs/heads/feature\n");
    writeFileSync(join(main, ".git/worktrees/wt/commondir"), "../..\n");
    writeFileSync(join(main, ".git/refs/heads/feature"), `${"d".repeat(40)}\n`);
    const worktree = emptyDir();
    writeFileSync(join(worktree, ".git"), `gitdir: ${join(main, ".git/worktrees/wt")}\n`);
    expect(buildInfo({}, worktree).commit).toBe("d".repeat(40));
  });

  test("nothing to read: unknown", () => {
    expect(buildInfo({}, emptyDir()).commit).toBe("unknown");
  });
});

test("courier_build_info is 1 with the build's labels", async () => {
  const telemetry = createTelemetry({ enabled: true, nodeId: "n" });
  const info = buildInfo();
  expect(await telemetry.render()).toContain(`courier_build_info{version="${info.version}",commit="${info.commit}",bun="${info.bun}"} 1`);
  await telemetry.shutdown();
});
