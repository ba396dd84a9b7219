/**
 * One process per data dir (PROTOCOL §1 v1.1). Two writers on one store file hand out the same
 * offsets (UNIQUE failures, then a channel that stays broken), so the embedded engine takes this
 * lock before it opens anything. The lock is SQLite's own: a lock file held with
 * `locking_mode=EXCLUSIVE` after one write keeps a POSIX write lock for the life of the connection,
 * and the kernel drops it when the process dies, `kill -9` included. A pid file beside it only
 * names the holder in the refusal.
 */
import { Database } from "bun:sqlite";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const LOCK_FILE = "courier.lock";
const PID_FILE = "courier.pid";

/**
 * The data dir cannot hold this node's store (read-only, missing permissions, not a directory):
 * startup exits 1 with this one line (PROTOCOL §1 v1.1).
 */
export class DataDirError extends Error {
  override readonly name: string = "DataDirError";
  readonly path: string;

  constructor(path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.path = path;
  }

  /** Wraps whatever opening the store threw, naming the path; a DataDirError passes as is. */
  static of(path: string, error: unknown): DataDirError {
    if (error instanceof DataDirError) return error;
    const code = (error as { code?: unknown } | null)?.code;
    const reason = `${error instanceof Error ? error.message : String(error)}${typeof code === "string" ? ` (${code})` : ""}`;
    return new DataDirError(path, `data dir ${path} cannot be used: ${reason}`, { cause: error });
  }
}

/** Another live process holds the data dir; `pid` is null when it had not yet written its pid. */
export class DataDirInUseError extends DataDirError {
  override readonly name = "DataDirInUseError";
  readonly pid: number | null;

  constructor(path: string, pid: number | null, options?: ErrorOptions) {
    super(path, `data dir ${path} is in use by pid ${pid ?? "unknown"}`, options);
    this.pid = pid;
  }
}

export interface DataDirLock {
  /** Releases the lock (the process exiting releases it too). */
  release(): void;
}

/**
 * Takes the data dir for this process, or throws {@link DataDirInUseError} at once (no waiting).
 * The returned object must stay referenced: a collected connection would release the lock.
 *
 * @example
 * const lock = lockDataDir("./data"); // throws "data dir ./data is in use by pid 4242"
 * lock.release();
 */
export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const lockPath = join(dataDir, LOCK_FILE);
  const pidPath = join(dataDir, PID_FILE);
  const db = new Database(lockPath, { create: true });
  try {
    db.run("PRAGMA locking_mode = EXCLUSIVE");
    // A rollback journal: in WAL mode an exclusive connection keeps no lock another process can see.
    db.run("PRAGMA journal_mode = DELETE");
    db.run("BEGIN EXCLUSIVE");
    db.run("CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL)");
    db.run("DELETE FROM holder");
    db.run("INSERT INTO holder (pid) VALUES (?1)", [process.pid]);
    db.run("COMMIT");
  } catch (error) {
    db.close(false);
    if ((error as { code?: unknown }).code === "SQLITE_BUSY") throw new DataDirInUseError(dataDir, readPid(pidPath), { cause: error });
    throw error;
  }
  writeFileSync(pidPath, `${process.pid}\n`);
  let held = true;
  return {
    release: () => {
      if (!held) return;
      held = false;
      // Only our own pid file: after a deleted data dir another process may own this path now.
      if (readPid(pidPath) === process.pid) rmSync(pidPath, { force: true });
      db.close(false);
    },
  };
}

function readPid(pidPath: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(pidPath, "utf8"), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
