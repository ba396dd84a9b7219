/**
 * What keeps the embedded store honest about its data dir: the dir's lock (one process per dir),
 * the identity of the open files (a deleted dir is noticed before the next commit, a dir renamed
 * away, replaced or mounted over within `identityCheckMs`), and the readiness check that proves a
 * write. A store found gone stays gone until restart: the events acknowledged into the old files
 * cannot be brought back by reopening the path.
 */
import { statfsSync } from "node:fs";
import { DataDirError, lockDataDir, type DataDirLock } from "./sqlite-dir-lock.ts";
import { rememberFiles, type FileIdentity } from "./sqlite-file-identity.ts";
import type { LogFn, SqliteStore } from "./sqlite-store.ts";
import { StoreUnavailableError } from "./types.ts";

export interface StoreGuardOptions {
  dataDir: string;
  log: LogFn;
  /** Below this much free space on the data dir's filesystem, `check()` throws. Default 1 MiB. */
  minFreeBytes?: number;
  /** How often the open files are compared with the data dir when nothing else asks. Default 1000. */
  identityCheckMs?: number;
}

const DEFAULT_MIN_FREE_BYTES = 1024 * 1024;

/**
 * Takes the data dir, then opens the store with `open`. Throws {@link DataDirError} (its
 * `DataDirInUseError` form when another process holds the dir) naming the path, holding nothing.
 *
 * @example
 * const { guard, store } = guardStore({ dataDir: "./data", log }, () => openSqliteStore({ ... }));
 * guard.verifyLinked(); // before each commit
 * if (guard.lost !== null) throw new StoreUnavailableError(guard.lost);
 */
export function guardStore(options: StoreGuardOptions, open: () => SqliteStore): { guard: StoreGuard; store: SqliteStore } {
  const { dataDir } = options;
  // Before anything is opened: a second process must not even run the corruption check.
  let lock: DataDirLock;
  try {
    lock = lockDataDir(dataDir);
  } catch (error) {
    throw DataDirError.of(dataDir, error);
  }
  let store: SqliteStore;
  try {
    store = open();
  } catch (error) {
    lock.release();
    throw DataDirError.of(dataDir, error);
  }
  let identity: FileIdentity;
  try {
    identity = rememberFiles([store.path, `${store.path}-wal`]);
  } catch (error) {
    store.close();
    lock.release();
    throw DataDirError.of(dataDir, error);
  }
  return { guard: new StoreGuard(options, lock, identity), store };
}

export class StoreGuard {
  readonly #options: StoreGuardOptions;
  readonly #lock: DataDirLock;
  readonly #identity: FileIdentity;
  readonly #timer: ReturnType<typeof setInterval>;
  #lost: string | null = null;

  constructor(options: StoreGuardOptions, lock: DataDirLock, identity: FileIdentity) {
    this.#options = options;
    this.#lock = lock;
    this.#identity = identity;
    // Idle nodes too must notice a deleted data dir within a second, and every node a renamed or
    // replaced one, which the check before each commit cannot see: /ready and the log say so.
    this.#timer = setInterval(() => this.verify(), options.identityCheckMs ?? 1000);
    this.#timer.unref();
  }

  /** Why the store's files are no longer at the data dir, or null while they are. */
  get lost(): string | null {
    return this.#lost;
  }

  /** Compares the open files with the data dir (~5–10 µs); the first mismatch is logged once and kept. */
  verify(): void {
    if (this.#lost === null) this.#lose(this.#identity.changed());
  }

  /**
   * Before each commit: whether the open files were unlinked, as `rm -rf` of the data dir does
   * (~1 µs, no path lookup), so no commit into an unlinked file is acknowledged. A dir renamed away
   * or mounted over leaves the files linked: `verify` sees it on the timer and in `check`, and the
   * commits acknowledged meanwhile are in the old files, where an operator can still find them.
   */
  verifyLinked(): void {
    if (this.#lost === null) this.#lose(this.#identity.unlinked());
  }

  #lose(reason: string | null): void {
    if (reason === null) return;
    this.#lost = reason;
    this.#options.log("error", "store files are gone from the data dir: publishes refused until restart", {
      path: this.#options.dataDir,
      reason,
    });
  }

  /**
   * Proves `store` takes a write now, or throws `StoreUnavailableError`: its files are still the
   * ones at the data dir, a probe row commits, and the filesystem has `minFreeBytes` left (a nearly
   * full disk can take a probe row into WAL space SQLite holds while a real batch fails).
   */
  check(store: SqliteStore, now: number): void {
    this.verify();
    if (this.#lost !== null) throw new StoreUnavailableError(`Store lost: ${this.#lost}`);
    try {
      store.probe(now);
    } catch (error) {
      throw new StoreUnavailableError(`Store refuses writes: ${String(error)}`, { cause: error });
    }
    const { dataDir, minFreeBytes = DEFAULT_MIN_FREE_BYTES } = this.#options;
    let free: number;
    try {
      const fs = statfsSync(dataDir);
      free = fs.bavail * fs.bsize;
    } catch (error) {
      throw new StoreUnavailableError(`Store space unknown: ${String(error)}`, { cause: error });
    }
    if (free < minFreeBytes) throw new StoreUnavailableError(`Store nearly full: ${free} bytes free in ${dataDir}, under ${minFreeBytes}`);
  }

  /** Stops watching and releases the data dir (after the store is closed: see `FileIdentity.close`). */
  release(): void {
    clearInterval(this.#timer);
    this.#identity.close();
    this.#lock.release();
  }
}
