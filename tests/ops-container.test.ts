/**
 * The container: Dockerfile and compose.yaml agree on one data dir that the image's user can write
 * (static checks, always run), and, where a container runtime works (podman from Debian), the image
 * is built and run for real: only runtime files inside, a fresh volume written by the server, the
 * healthcheck passing, SIGTERM draining to exit 0.
 *
 * Docker Hub is out of reach on machines without general network access: the image is then built
 * on a stand-in for `oven/bun:<version>-slim` made from this machine's Bun binary (the same
 * version) and busybox, with a `bun` user like the official image's. What that leaves untested is
 * the official base image itself, not Courier's Dockerfile.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePort } from "./helpers/process.ts";
import { findTool, run } from "./helpers/ops-tool.ts";

const ROOT = join(import.meta.dir, "..");
const read = (file: string) => readFileSync(join(ROOT, file), "utf8");
const pkg = JSON.parse(read("package.json")) as { version: string; packageManager: string; devDependencies: Record<string, string> };
const BUN_VERSION = pkg.packageManager.replace(/^bun@/, "");

/** The final stage of a Dockerfile as instruction → arguments (continuations joined). */
function finalStage(dockerfile: string): { instruction: string; args: string }[] {
  const lines = dockerfile.replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  const steps = lines.map((line) => ({ instruction: line.split(/\s+/)[0]!.toUpperCase(), args: line.replace(/^\S+\s*/, "") }));
  return steps.slice(steps.findLastIndex((s) => s.instruction === "FROM"));
}

/** `KEY=value KEY2="v"` of an ENV or LABEL instruction. */
function pairs(args: string): Record<string, string> {
  return Object.fromEntries([...args.matchAll(/([\w.-]+)=("(?:[^"\\]|\\.)*"|\S+)/g)].map((m) => [m[1]!, m[2]!.replace(/^"|"$/g, "")]));
}

describe("Dockerfile and compose.yaml (static)", () => {
  const stage = finalStage(read("Dockerfile"));
  const all = (instruction: string) => stage.filter((s) => s.instruction === instruction);
  const env = Object.assign({}, ...all("ENV").map((s) => pairs(s.args))) as Record<string, string>;
  const user = all("USER").at(-1)?.args;
  const dataDir = env.COURIER_DATA_DIR!;
  const compose = Bun.YAML.parse(read("compose.yaml")) as {
    services: Record<string, { environment?: Record<string, string>; volumes?: string[] }>;
  };

  test("the image runs the server directly, as a non-root user, with OCI labels", () => {
    expect(JSON.parse(all("CMD").at(-1)!.args)).toEqual(["bun", "src/main.ts"]);
    expect(user).toBe("bun");
    const labels = Object.assign({}, ...all("LABEL").map((s) => pairs(s.args))) as Record<string, string>;
    for (const key of ["title", "description", "version", "revision", "base.name"]) {
      expect({ key, present: Boolean(labels[`org.opencontainers.image.${key}`]) }).toEqual({ key, present: true });
    }
  });

  test("one data dir: the image's, created and owned by its user, a volume, the one compose mounts", () => {
    expect(dataDir).toBe("/var/lib/courier");
    const prepared = all("RUN").some((s) => s.args.includes(`mkdir -p ${dataDir}`) && s.args.includes(`chown ${user}:${user} ${dataDir}`));
    expect(prepared).toBe(true);
    expect(all("VOLUME").map((s) => s.args)).toContain(dataDir);
    // USER comes after the chown: the dir is prepared as root, then the server runs as its owner.
    expect(stage.findIndex((s) => s.instruction === "USER")).toBeGreaterThan(stage.findIndex((s) => s.args.includes(`chown ${user}`)));
    const courier = compose.services.courier!;
    expect(courier.volumes?.map((v) => v.split(":")[1])).toEqual([dataDir]);
    expect(courier.environment?.COURIER_DATA_DIR ?? dataDir).toBe(dataDir);
    expect(JSON.parse(read("config/production.json")).store.dataDir).toBe(dataDir);
  });

  test("Prometheus in compose gets the rule file where prometheus.yml looks for it", () => {
    const prometheusYml = Bun.YAML.parse(read("grafana/prometheus.yml")) as { rule_files: string[] };
    const mounts = compose.services.prometheus!.volumes!.map((v) => v.split(":"));
    const config = mounts.find(([source]) => source === "./grafana/prometheus.yml")![1]!;
    for (const rules of prometheusYml.rule_files) {
      expect(mounts.map(([, target]) => target)).toContain(join(dirname(config), rules));
    }
  });

  test("the build context is an allowlist of what the server reads at runtime", () => {
    const lines = read(".dockerignore").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    expect(lines[0]).toBe("*");
    const allowed = lines.filter((l) => l.startsWith("!")).map((l) => l.slice(1));
    expect(allowed.filter((path) => ["tests", "bench", "grafana", ".git", "node_modules", "data"].includes(path))).toEqual([]);
    for (const needed of ["package.json", "bun.lock", "src", "config"]) expect(allowed).toContain(needed);
    expect(lines).toContain("**/node_modules");
  });
});

// --- building and running the image -------------------------------------------------------------

const podman = findTool("podman");
const IMAGE = "localhost/courier-ops-test:latest";
const STAND_IN = `localhost/courier-ops-test-base:bun-${BUN_VERSION}`;

/** Why the image cannot be built here, or null. */
function unavailable(): string | null {
  if (!podman) return "no container runtime: podman not found (apt-get install podman runc); the docker CLI here has no engine";
  const info = run([podman, "info", "--format", "{{.Host.OCIRuntime.Name}}"]);
  if (info.code !== 0) return `podman info failed: ${info.out.trim().slice(0, 200)}`;
  return null;
}

/** Limits the runtime may set: podman's defaults (nofile 1M, nproc 4M) exceed what a process without CAP_SYS_RESOURCE may raise to. */
function ulimitArgs(): string[] {
  const limits = readFileSync("/proc/self/limits", "utf8");
  const hard = (name: string) => Number(new RegExp(`^${name}\\s+\\S+\\s+(\\d+)`, "m").exec(limits)?.[1] ?? 1024);
  const pidMax = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8").trim());
  return ["--ulimit", `nofile=${hard("Max open files")}:${hard("Max open files")}`, "--ulimit", `nproc=${Math.min(hard("Max processes"), pidMax)}:${Math.min(hard("Max processes"), pidMax)}`];
}

/** runc where installed: crun 1.8 refuses hybrid cgroup hierarchies (v1 with a v2 mount) like this machine's. */
const runtimeArgs = () => (findTool("runc") ? ["--runtime", "runc"] : []);

/** The official base when it is here or can be pulled, else the stand-in (built once per Bun version). */
function baseImage(): { image: string; standIn: boolean } {
  const official = `docker.io/oven/bun:${BUN_VERSION}-slim`;
  if (run([podman!, "image", "exists", official]).code === 0) return { image: official, standIn: false };
  if (run([podman!, "pull", "-q", official], { timeoutMs: 120_000 }).code === 0) return { image: official, standIn: false };
  if (run([podman!, "image", "exists", STAND_IN]).code !== 0) buildStandIn();
  return { image: STAND_IN, standIn: true };
}

function buildStandIn(): void {
  const busybox = findTool("busybox");
  if (!busybox) throw new Error("no registry access and no busybox for a stand-in base image (apt-get install busybox-static)");
  if (Bun.version !== BUN_VERSION) throw new Error(`stand-in base needs Bun ${BUN_VERSION}, this is ${Bun.version}`);
  const root = mkdtempSync(join(tmpdir(), "courier-base-"));
  try {
    const put = (source: string, target: string) => {
      mkdirSync(join(root, dirname(target)), { recursive: true });
      cpSync(source, join(root, target), { dereference: true });
    };
    put(process.execPath, "/usr/local/bin/bun");
    put(busybox, "/bin/busybox");
    // The shared libraries both binaries load, at the paths the loader looks for them.
    for (const binary of [process.execPath, busybox]) {
      for (const match of run(["ldd", binary]).out.matchAll(/(\/\S+\.so[.\d]*)/g)) put(match[1]!, match[1]!);
    }
    for (const applet of ["sh", "mkdir", "chown", "find", "rm", "ls", "cat", "id"]) symlinkSync("busybox", join(root, "bin", applet));
    mkdirSync(join(root, "etc/ssl"), { recursive: true });
    writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nbun:x:1000:1000::/home/bun:/bin/sh\n");
    writeFileSync(join(root, "etc/group"), "root:x:0:\nbun:x:1000:\n");
    mkdirSync(join(root, "tmp"), { mode: 0o1777 });
    mkdirSync(join(root, "home/bun"), { recursive: true });
    chownSync(join(root, "home/bun"), 1000, 1000);
    const changes = ["--change", "ENV PATH=/usr/local/bin:/bin"];
    // A registry reached through a TLS-inspecting proxy needs its CA inside the build too.
    const ca = process.env.NODE_EXTRA_CA_CERTS;
    if (ca && existsSync(ca)) {
      cpSync(ca, join(root, "etc/ssl/extra-ca.pem"));
      changes.push("--change", "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/extra-ca.pem");
    }
    const tarball = `${root}.tar`;
    const tar = run(["tar", "-C", root, "--numeric-owner", "-cf", tarball, "."]);
    if (tar.code !== 0) throw new Error(`tar: ${tar.out}`);
    const imported = run([podman!, "import", ...changes, tarball, STAND_IN], { timeoutMs: 120_000 });
    rmSync(tarball, { force: true });
    if (imported.code !== 0) throw new Error(`podman import: ${imported.out}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const reason = unavailable();
if (reason) console.warn(`[skip] container image: ${reason}`);

(reason ? describe.skip : describe)(`container image${reason ? ` [skipped: ${reason}]` : ""}`, () => {
  const name = `courier-ops-test-${process.pid}`;
  const volume = `${name}-data`;
  const port = freePort();
  const apiKey = "container-test-api-key-0123456789abcdef";
  let base = { image: "", standIn: false };
  let built = { code: -1, out: "" };

  beforeAll(() => {
    base = baseImage();
    console.info(`container image: base ${base.image}${base.standIn ? " (stand-in: no registry access)" : ""}`);
    const revision = run(["git", "-C", ROOT, "rev-parse", "HEAD"]).out.trim();
    built = run(
      [podman!, "build", ...runtimeArgs(), ...ulimitArgs(), "--format", "docker", "--network", "host", "--pull=never",
        "--build-arg", `BASE_IMAGE=${base.image}`, "--build-arg", `VERSION=${pkg.version}`, "--build-arg", `REVISION=${revision}`,
        "-t", IMAGE, ROOT],
      { timeoutMs: 240_000 },
    );
  }, 300_000);

  afterAll(() => {
    run([podman!, "rm", "-f", "-t", "0", name]);
    run([podman!, "volume", "rm", "-f", volume]);
  });

  test("builds, with the labels, user, data dir and command of the Dockerfile", () => {
    expect({ code: built.code, tail: built.code === 0 ? "" : built.out.slice(-2000) }).toEqual({ code: 0, tail: "" });
    const [config] = JSON.parse(run([podman!, "image", "inspect", IMAGE]).out) as { Config: Record<string, any> }[];
    expect(config!.Config).toMatchObject({
      User: "bun",
      Cmd: ["bun", "src/main.ts"],
      Volumes: { "/var/lib/courier": {} },
      Labels: { "org.opencontainers.image.version": pkg.version, "org.opencontainers.image.base.name": base.image },
    });
    expect(config!.Config.Env).toContain("COURIER_DATA_DIR=/var/lib/courier");
  });

  test("holds only what the server needs at runtime: no tests, no dev dependencies", () => {
    const devOnly = Object.keys(pkg.devDependencies).join(" ");
    const listing = run([podman!, "run", "--rm", ...runtimeArgs(), ...ulimitArgs(), "--network", "host", IMAGE, "sh", "-c",
      `ls -A /app; echo --; find /app/src -name '*.test.ts'; echo --; ls /app/node_modules; for d in ${devOnly}; do [ -e /app/node_modules/$d ] && echo "dev:$d"; done; true`]);
    expect(listing.code).toBe(0);
    const [top, tests, modules] = listing.out.split("--\n").map((part) => part.split("\n").filter(Boolean));
    const expected = ["bun.lock", "bunfig.toml", "config", "node_modules", "package.json", "src", ...(existsSync(join(ROOT, "packages")) ? ["packages"] : [])];
    expect(top!.sort()).toEqual(expected.sort());
    expect(tests).toEqual([]);
    expect(modules).toContain("jose");
    expect(modules!.filter((m) => m.startsWith("dev:"))).toEqual([]);
  });

  test("runs on a fresh volume: ready, stores a publish in the volume, healthy, drains to exit 0 on SIGTERM", async () => {
    const started = run([podman!, "run", "-d", "--name", name, ...runtimeArgs(), ...ulimitArgs(), "--network", "host",
      "-e", "HOST=127.0.0.1", "-e", `PORT=${port}`, "-e", "COURIER_JWT_SECRET=container-test-jwt-secret-0123456789abcdef",
      "-e", `COURIER_API_KEY=${apiKey}`, "-e", "COURIER_ADMIN_KEY=container-test-admin-key-0123456789abcdef",
      "-v", `${volume}:/var/lib/courier`, IMAGE]);
    expect(started).toMatchObject({ code: 0 });
    const http = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    while (!(await fetch(`${http}/ready`).then((r) => r.ok, () => false))) {
      if (Date.now() > deadline) throw new Error(`container not ready: ${run([podman!, "logs", name]).out}`);
      await Bun.sleep(50); // polling a port inside a container: there is no event to wait on; bounded above
    }
    const published = await fetch(`${http}/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ channel: "user:ops", event: "note", data: { n: 1 } }),
    });
    expect(published.status).toBe(200);
    const files = run([podman!, "exec", name, "ls", "-ln", "/var/lib/courier"]);
    expect(files.out).toMatch(/1000\s+1000\s+\d+.*courier\.db\n/);
    expect(run([podman!, "healthcheck", "run", name])).toMatchObject({ code: 0 });
    expect(run([podman!, "stop", "-t", "15", name], { timeoutMs: 30_000 })).toMatchObject({ code: 0 });
    expect(run([podman!, "inspect", "--format", "{{.State.ExitCode}}", name]).out.trim()).toBe("0");
    expect(run([podman!, "logs", name]).out).toContain('"msg":"drained"');
  }, 60_000);
});
