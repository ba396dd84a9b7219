import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCheckpointer } from "../../src/engine/sqlite-checkpointer.ts";

test("the worker checkpoints the WAL while the writer keeps writing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "courier-ckpt-"));
  const path = join(dir, "t.db");
  const db = new Database(path);
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA wal_autocheckpoint = 0"); // only the worker may checkpoint
  // As the store's writer: once this writer is idle the worker may hold a TRUNCATE for a moment.
  db.run("PRAGMA busy_timeout = 250");
  db.run("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const insert = db.query("INSERT INTO t (v) VALUES (?1)");
  for (let i = 0; i < 2000; i++) insert.run("x".repeat(200));
  const done = Promise.withResolvers<[number, number, number]>();
  const checkpointer = startCheckpointer({ path, intervalMs: 20, onRun: (r) => r[1] > 0 && done.resolve(r) });
  try {
    const [busy, walPages, checkpointed] = await done.promise;
    expect(busy).toBe(0);
    expect(walPages).toBeGreaterThan(50);
    expect(checkpointed).toBe(walPages);
    // PASSIVE never blocks the writer; the idle TRUNCATE at most delays it within its busy timeout.
    insert.run("after");
    expect(db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 2001 });
  } finally {
    checkpointer.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000); // a Worker can take seconds to start on a loaded machine

test("once the writer is idle for an interval, the worker truncates the WAL file to nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "courier-ckpt-"));
  const path = join(dir, "t.db");
  const db = new Database(path);
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA wal_autocheckpoint = 0");
  db.run("PRAGMA busy_timeout = 1000"); // as the store's writer: a TRUNCATE may hold it for a moment
  db.run("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const insert = db.query("INSERT INTO t (v) VALUES (?1)");
  for (let i = 0; i < 500; i++) insert.run("x".repeat(200));
  const walBytes = () => statSync(`${path}-wal`).size;
  const before = walBytes();
  const truncated = Promise.withResolvers<void>();
  const checkpointer = startCheckpointer({ path, intervalMs: 20, onRun: () => walBytes() === 0 && truncated.resolve() });
  try {
    await truncated.promise;
    expect(before).toBeGreaterThan(100_000);
    insert.run("after");
    expect(db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 501 });
  } finally {
    checkpointer.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

test("a bad interval is a RangeError", () => {
  expect(() => startCheckpointer({ path: "/nowhere", intervalMs: 0 })).toThrow(RangeError);
});
