/**
 * The embedded engine under operator faults (issue 14): a second owner of the data dir, the data
 * dir deleted under a running store, readiness that must prove a write, reads that must not grow
 * the store, and the WAL bound. Multi-process and mounted-filesystem versions live in tests/chaos/.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { rmSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEmbeddedEngine, type EmbeddedEngine } from "../src/engine/embedded-engine.ts";
import { DataDirError, DataDirInUseError } from "../src/engine/sqlite-dir-lock.ts";
import { StoreUnavailableError, type EngineOptions, type PublishItem } from "../src/engine/types.ts";

const OPTS: EngineOptions = {
  historySize: 1000,
  historyTtlMs: 60 * 60_000,
  criticalRetentionMs: 24 * 60 * 60_000,
  idempotencyTtlMs: 5 * 60_000,
  now: () => 1_800_000_000_000,
};
const quiet = () => {};
const item = (channel: string, dataJson = "null"): PublishItem => ({ channel, event: "step", dataJson, critical: true });

const engines: EmbeddedEngine[] = [];
const tempDirs: string[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
  for (const d of tempDirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "courier-faults-"));
  tempDirs.push(dir);
  return dir;
}

async function started(dataDir: string, extra: Partial<Parameters<typeof createEmbeddedEngine>[0]> = {}) {
  const engine = createEmbeddedEngine({ ...OPTS, dataDir, log: quiet, ...extra });
  engines.push(engine);
  await engine.start(() => {});
  return engine;
}

/** Rows of the channels table, read through a separate connection as an operator would. */
function channelRows(dataDir: string): string[] {
  const db = new Database(join(dataDir, "courier.db"), { readonly: true });
  try {
    return db.query<{ channel: string }, []>("SELECT channel FROM channels ORDER BY channel").all().map((r) => r.channel);
  } finally {
    db.close();
  }
}

describe("one process per data dir", () => {
  test("a second engine on the same data dir is refused naming the holder; the first keeps publishing", async () => {
    const dataDir = await tempDir();
    const first = await started(dataDir);
    await first.publish([item("job:a")]);
    const second = createEmbeddedEngine({ ...OPTS, dataDir, log: quiet });
    const refusal = await second.start(() => {}).then(() => null, (error: unknown) => error);
    expect(refusal).toBeInstanceOf(DataDirInUseError);
    expect(refusal).toMatchObject({ path: dataDir, pid: process.pid, message: `data dir ${dataDir} is in use by pid ${process.pid}` });
    const [next] = await first.publish([item("job:a")]);
    expect(next).toMatchObject({ offset: 2 });
    await first.check();
  });

  test("the data dir is free again once its engine closes", async () => {
    const dataDir = await tempDir();
    const first = await started(dataDir);
    const [out] = await first.publish([item("job:a")]);
    await first.close();
    const again = await started(dataDir);
    expect(await again.position("job:a")).toEqual({ epoch: out!.epoch, offset: 1 });
  });
});

describe("an unusable data dir", () => {
  test("start rejects with a DataDirError naming the path when the data dir is a file", async () => {
    const dir = await tempDir();
    const notADir = join(dir, "data");
    await Bun.write(notADir, "not a directory");
    const engine = createEmbeddedEngine({ ...OPTS, dataDir: notADir, log: quiet });
    const refusal = await engine.start(() => {}).then(() => null, (error: unknown) => error);
    expect(refusal).toBeInstanceOf(DataDirError);
    expect((refusal as DataDirError).message).toStartWith(`data dir ${notADir} cannot be used: `);
  });
});

describe("a data dir deleted under a running store", () => {
  test("publish and check reject, and one error line names the path", async () => {
    const dataDir = await tempDir();
    const logged: { level: string; msg: string; fields?: object }[] = [];
    const engine = await started(dataDir, { log: (level, msg, fields) => logged.push({ level, msg, fields }) });
    await engine.publish([item("job:a")]);
    await rm(dataDir, { recursive: true, force: true });
    await expect(engine.publish([item("job:a")])).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(engine.check()).rejects.toThrow(/was deleted/);
    await expect(engine.publish([item("job:b")])).rejects.toBeInstanceOf(StoreUnavailableError);
    const errors = logged.filter((l) => l.level === "error" && l.msg.startsWith("store files are gone"));
    expect(errors).toEqual([{ level: "error", msg: expect.any(String), fields: { path: dataDir, reason: `${join(dataDir, "courier.db")} was deleted` } }]);
  });

  test("a new store made at the path meanwhile is not mistaken for the open one", async () => {
    const dataDir = await tempDir();
    const first = await started(dataDir);
    const [out] = await first.publish([item("job:a")]);
    rmSync(dataDir, { recursive: true, force: true });
    // The deleted lock went with the dir: a new owner may start on the path, with a new store.
    const second = await started(dataDir);
    await expect(first.check()).rejects.toThrow(/replaced by another file/);
    await expect(first.publish([item("job:a")])).rejects.toBeInstanceOf(StoreUnavailableError);
    const [fresh] = await second.publish([item("job:a")]);
    expect(fresh).toMatchObject({ offset: 1 });
    expect(fresh!.epoch).not.toBe(out!.epoch);
  });

  test("a pending batch is refused, not acknowledged, when the dir goes before its commit", async () => {
    const dataDir = await tempDir();
    const engine = await started(dataDir);
    const pending = engine.publish([item("job:a")]);
    rmSync(dataDir, { recursive: true, force: true }); // before the batch's commit, which waits for the next turn
    await expect(pending).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

describe("readiness proves a write", () => {
  test("check writes a probe row through the store's own transaction", async () => {
    const dataDir = await tempDir();
    const engine = await started(dataDir, { now: () => 1234 });
    await engine.check();
    const db = new Database(join(dataDir, "courier.db"), { readonly: true });
    expect(db.query("SELECT id, ts FROM probe").all()).toEqual([{ id: 1, ts: 1234 }]);
    db.close();
  });

  test("check rejects while the store cannot take a write, and passes once it can", async () => {
    const dataDir = await tempDir();
    const engine = await started(dataDir);
    const locker = new Database(join(dataDir, "courier.db"));
    locker.run("BEGIN IMMEDIATE");
    await expect(engine.check()).rejects.toThrow(/refuses writes/);
    locker.run("ROLLBACK");
    locker.close();
    await engine.check();
  });

  test("a store refusing writes at start still starts: reads answer, check rejects; the first pass that can write brings lagging rows up", async () => {
    const dataDir = await tempDir();
    let engine = await started(dataDir, { historySize: 1 });
    for (let i = 0; i < 3; i++) await engine.publish([{ ...item("job:lag"), critical: false }]);
    await engine.close();
    // Tops are written by trim passes: none ran, so the row still says 1.
    const locker = new Database(join(dataDir, "courier.db"));
    expect(locker.query("SELECT top FROM channels WHERE channel = 'job:lag'").get()).toEqual({ top: 1 });
    locker.run("BEGIN IMMEDIATE");
    try {
      engine = await started(dataDir, { historySize: 1 });
      expect(await engine.position("job:lag")).toMatchObject({ offset: 3 });
      await expect(engine.check()).rejects.toThrow(/refuses writes/);
    } finally {
      locker.run("ROLLBACK");
      locker.close();
    }
    // The count rule sees the channel's real top (3), not the row's (1).
    expect(await engine.trim(OPTS.now())).toEqual({ dropped: 2 });
    expect(await engine.publish([item("job:lag")])).toMatchObject([{ offset: 4 }]);
  });

  test("check rejects when the filesystem has less than minFreeBytes free", async () => {
    const engine = await started(await tempDir(), { minFreeBytes: Number.MAX_SAFE_INTEGER });
    await expect(engine.check()).rejects.toThrow(/nearly full/);
  });
});

describe("reads create no channel state", () => {
  // Subscribing reads position/history/watch: on a store refusing writes it must answer, not fail.
  test("reads of new and known channels answer while the store refuses every write", async () => {
    const dataDir = await tempDir();
    const engine = await started(dataDir);
    const [out] = await engine.publish([item("job:known")]);
    const locker = new Database(join(dataDir, "courier.db"));
    locker.run("BEGIN IMMEDIATE");
    try {
      await expect(engine.publish([item("job:known")])).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(await engine.position("job:known")).toEqual({ epoch: out!.epoch, offset: 1 });
      expect(await engine.watch("public:new")).toBe(0);
      expect((await engine.history("public:new", 0, 10)).events).toEqual([]);
    } finally {
      locker.run("ROLLBACK");
      locker.close();
    }
  });

  test("position, history and watch of unknown channels store nothing; the epoch is stable and kept by the first publish", async () => {
    const dataDir = await tempDir();
    const engine = await started(dataDir);
    const names = Array.from({ length: 500 }, (_, i) => `public:probe-${i}`);
    const epochs = new Map<string, string>();
    for (const ch of names) {
      const page = await engine.history(ch, 0, 10);
      expect(page).toMatchObject({ offset: 0, events: [], trimmedThrough: 0 });
      expect(await engine.position(ch)).toEqual({ epoch: page.epoch, offset: 0 });
      expect(await engine.watch(ch)).toBe(0);
      epochs.set(ch, page.epoch);
    }
    expect(new Set(epochs.values()).size).toBe(names.length);
    expect(channelRows(dataDir)).toEqual([]);

    const [out] = await engine.publish([item("public:probe-7")]);
    expect(out!.epoch).toBe(epochs.get("public:probe-7")!);
    expect(channelRows(dataDir)).toEqual(["public:probe-7"]);

    await engine.close();
    const reopened = await started(dataDir);
    expect(await reopened.position("public:probe-3")).toEqual({ epoch: epochs.get("public:probe-3")!, offset: 0 });
    expect(await reopened.position("public:probe-7")).toEqual({ epoch: out!.epoch, offset: 1 });
  });

  test("a fresh store gives never-published channels new epochs", async () => {
    const a = await started(await tempDir());
    const b = await started(await tempDir());
    expect((await a.position("public:x")).epoch).not.toBe((await b.position("public:x")).epoch);
  });

  test("empty channel rows left by older builds are collected by trim", async () => {
    const dataDir = await tempDir();
    const engine = await started(dataDir);
    await engine.publish([item("job:kept")]);
    await engine.close();
    const db = new Database(join(dataDir, "courier.db"));
    db.run("INSERT INTO channels (channel, epoch, top, trimmed) VALUES ('public:old-1', 'aaaaaaaaaaaa', 0, 0), ('public:old-2', 'bbbbbbbbbbbb', 0, 0)");
    db.close();
    const reopened = await started(dataDir);
    expect(channelRows(dataDir)).toEqual(["job:kept", "public:old-1", "public:old-2"]);
    await reopened.trim(OPTS.now());
    expect(channelRows(dataDir)).toEqual(["job:kept"]);
  });
});

describe("the WAL bound", () => {
  test("thousands of publishes never grow the -wal file past walLimitBytes", async () => {
    const dataDir = await tempDir();
    const walLimitBytes = 1024 * 1024;
    const engine = await started(dataDir, { walLimitBytes });
    const wal = join(dataDir, "courier.db-wal");
    const data = JSON.stringify({ text: "x".repeat(500) });
    let largest = 0;
    let written = 0;
    for (let turn = 0; turn < 200; turn++) {
      // 20 channels × 1 event per turn: ~12 KB of pages per commit, 5,000+ events in all.
      await Promise.all(Array.from({ length: 25 }, (_, i) => engine.publish([item(`job:w${i % 20}`, data)])));
      written += 25;
      largest = Math.max(largest, (await stat(wal)).size);
    }
    console.log(`WAL bound: ${written} publishes, largest -wal ${largest} bytes, bound ${walLimitBytes}`);
    expect(written).toBeGreaterThanOrEqual(5000);
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThanOrEqual(walLimitBytes);
  });
});
