/**
 * The embedded engine's durable half: one bun:sqlite file in WAL mode, every query prepared once.
 * It holds no policy (offsets, batching and idempotency live in `embedded-engine.ts`); it turns
 * them into SQL, and turns a corrupt file into a fresh one instead of a crash loop.
 */
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import type { StoredEvent } from "./types.ts";

export type LogFn = (level: string, msg: string, fields?: object) => void;

/** A channel as persisted: `top` is the committed top, `trimmed` the highest offset trimmed away. */
export interface ChannelRow {
  epoch: string;
  top: number;
  trimmed: number;
}

/** One event of a batch with its idempotency key, stored in the same row so keys survive a crash. */
export interface BatchRow {
  ev: StoredEvent;
  idem: string | null;
}

/** An idempotency key still inside its window at startup, with the outcome it answers. */
export interface IdempotencyRow {
  idem: string;
  channel: string;
  offset: number;
  epoch: string;
  ts: number;
}

/** What one trim pass removes. Critical events are only ever removed by `criticalBefore`. */
export interface TrimRule {
  /** Non-critical events with `offset <= top - historySize` go. */
  historySize: number;
  /** Non-critical events with `ts` below this go. */
  nonCriticalBefore: number;
  /** Critical events with `ts` below this go. */
  criticalBefore: number;
}

export interface TrimResult {
  dropped: number;
  /** Per channel, the highest offset removed by this pass. */
  trimmed: Map<string, number>;
}

export interface SqliteStore {
  readonly path: string;
  channel(channel: string): ChannelRow | null;
  createChannel(channel: string, epoch: string): void;
  /**
   * Stores one batch in one transaction: the events, the deletion of events they supersede by
   * coalescing, and the new tops. Throws, storing nothing, when any part fails.
   */
  commit(rows: readonly BatchRow[], tops: ReadonlyMap<string, number>): void;
  history(channel: string, after: number, limit: number): StoredEvent[];
  trim(rule: TrimRule): TrimResult;
  idempotencyKeys(since: number): IdempotencyRow[];
  putRecord(key: string, value: string, expiresAt: number): void;
  /** The record's value if it has not expired by `now`. */
  getRecord(key: string, now: number): string | null;
  /** Drops records expired by `now`. */
  expireRecords(now: number): number;
  /** Throws when the database cannot answer a query. */
  ping(): void;
  close(): void;
}

/** WAL pages (4 KiB) after which the writer checkpoints itself: ~80 MB, never reached while the worker runs. */
const BACKSTOP_CHECKPOINT_PAGES = 20_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS channels (
  channel TEXT PRIMARY KEY,
  epoch TEXT NOT NULL,
  top INTEGER NOT NULL,
  trimmed INTEGER NOT NULL,
  swept INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  channel TEXT NOT NULL,
  "offset" INTEGER NOT NULL,
  event TEXT NOT NULL,
  critical INTEGER NOT NULL,
  coalesce TEXT,
  ts INTEGER NOT NULL,
  frame TEXT NOT NULL,
  idem TEXT,
  PRIMARY KEY (channel, "offset")
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_idem ON events (idem) WHERE idem IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_coalesce ON events (channel, coalesce) WHERE coalesce IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_age ON events (critical, ts);
CREATE TABLE IF NOT EXISTS records (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Errors that mean the file's content is bad, as opposed to a lock, a permission or a full disk. */
const CORRUPTION = /^SQLITE_(CORRUPT|NOTADB)/;

interface EventRow {
  channel: string;
  offset: number;
  event: string;
  critical: number;
  coalesce: string | null;
  ts: number;
  frame: string;
}

/**
 * Opens (or creates) the store file. A file SQLite reports as corrupt, at open or by
 * `PRAGMA quick_check`, is renamed to `<file>.corrupt-<now>` with its WAL, and a fresh one is
 * created: every channel then gets a new epoch, which tells resuming clients that history was lost.
 *
 * @example
 * const store = openSqliteStore({ dataDir: "./data", fileName: "courier.db", now: Date.now, log: console.log });
 * store.createChannel("user:a", "3f9c2a1b7e4d");
 */
export function openSqliteStore(o: { dataDir: string; fileName: string; now: () => number; log: LogFn }): SqliteStore {
  mkdirSync(o.dataDir, { recursive: true });
  const path = join(o.dataDir, o.fileName);
  let db: Database;
  try {
    db = openChecked(path);
  } catch (error) {
    if (!isCorruption(error)) throw error;
    const aside = `${path}.corrupt-${o.now()}`;
    o.log("error", "store file is corrupt: moved aside, starting an empty store (all epochs change)", {
      path,
      aside,
      error: String(error),
    });
    moveAside(path, aside);
    // A second failure is not about the old file's content: let start() reject.
    db = openChecked(path);
  }
  return storeOn(db, path);
}

function openChecked(path: string): Database {
  const db = new Database(path, { create: true });
  try {
    db.run("PRAGMA journal_mode = WAL");
    // NORMAL in WAL mode survives a process crash (kill -9); only power loss can undo the last commits.
    db.run("PRAGMA synchronous = NORMAL");
    // Checkpoints (and their fsync) run on a worker thread (sqlite-checkpointer.ts); this high mark
    // is only the backstop should that worker stop.
    db.run(`PRAGMA wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`);
    const rows = db.query("PRAGMA quick_check").values();
    if (rows.length !== 1 || rows[0]?.[0] !== "ok") {
      throw Object.assign(new Error(`quick_check failed: ${rows.slice(0, 5).map((r) => r[0]).join("; ")}`), {
        code: "SQLITE_CORRUPT",
      });
    }
    db.run(SCHEMA);
    // Files made before `swept` existed (first builds of this engine) get the column added.
    const columns = db.query<{ name: string }, []>("PRAGMA table_info(channels)").all();
    if (!columns.some((c) => c.name === "swept")) db.run("ALTER TABLE channels ADD COLUMN swept INTEGER NOT NULL DEFAULT 0");
    return db;
  } catch (error) {
    db.close(false);
    throw error;
  }
}

function isCorruption(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && CORRUPTION.test(code);
}

function moveAside(path: string, aside: string): void {
  if (existsSync(path)) renameSync(path, aside);
  // A WAL left beside a fresh file would be replayed into it.
  for (const suffix of ["-wal", "-shm"]) {
    if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
  }
}

function storeOn(db: Database, path: string): SqliteStore {
  const upsertRecord = db.query<null, [string, string, number]>(
    "INSERT INTO records (key, value, expires) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET value = ?2, expires = ?3",
  );
  const selectRecord = db.query<{ value: string }, [string, number]>("SELECT value FROM records WHERE key = ?1 AND expires > ?2");
  const deleteExpiredRecords = db.query<null, [number]>("DELETE FROM records WHERE expires <= ?1");
  const selectChannel = db.query<ChannelRow, [string]>("SELECT epoch, top, trimmed FROM channels WHERE channel = ?1");
  const insertChannel = db.query<null, [string, string]>(
    "INSERT OR IGNORE INTO channels (channel, epoch, top, trimmed) VALUES (?1, ?2, 0, 0)",
  );
  const updateTop = db.query<null, [string, number]>("UPDATE channels SET top = ?2 WHERE channel = ?1");
  const insertEvent = db.query<null, [string, number, string, number, string | null, number, string, string | null]>(
    `INSERT INTO events (channel, "offset", event, critical, coalesce, ts, frame, idem) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)`,
  );
  const deleteSuperseded = db.query<null, [string, string, number]>(
    // Without INDEXED BY the planner walks the primary key over the channel's whole history.
    `DELETE FROM events INDEXED BY events_coalesce WHERE channel = ?1 AND coalesce = ?2 AND "offset" < ?3`,
  );
  const selectHistory = db.query<EventRow, [string, number, number]>(
    `SELECT channel, "offset", event, critical, coalesce, ts, frame FROM events
     WHERE channel = ?1 AND "offset" > ?2 ORDER BY "offset" LIMIT ?3`,
  );
  // `swept`: the count rule already ran through this offset. Each pass then reads only events
  // published since the last, not the critical events retained below (possibly most of history).
  const selectUnswept = db.query<{ channel: string; swept: number; below: number }, [number]>(
    "SELECT channel, swept, top - ?1 AS below FROM channels WHERE top - ?1 > swept",
  );
  const countOld = db.query<{ max: number | null; n: number }, [string, number, number]>(
    `SELECT MAX("offset") AS max, COUNT(*) AS n FROM events
     WHERE channel = ?1 AND "offset" > ?2 AND "offset" <= ?3 AND critical = 0`,
  );
  const deleteOld = db.query<null, [string, number, number]>(
    `DELETE FROM events WHERE channel = ?1 AND "offset" > ?2 AND "offset" <= ?3 AND critical = 0`,
  );
  const markSwept = db.query<null, [string, number]>("UPDATE channels SET swept = ?2 WHERE channel = ?1");
  const countAged = db.query<{ channel: string; max: number; n: number }, [number, number]>(
    `SELECT channel, MAX("offset") AS max, COUNT(*) AS n FROM events WHERE critical = ?1 AND ts < ?2 GROUP BY channel`,
  );
  const deleteAged = db.query<null, [number, number]>("DELETE FROM events WHERE critical = ?1 AND ts < ?2");
  const raiseTrimmed = db.query<null, [string, number]>(
    "UPDATE channels SET trimmed = MAX(trimmed, ?2) WHERE channel = ?1",
  );
  const selectKeys = db.query<IdempotencyRow, [number]>(
    `SELECT e.idem AS idem, e.channel AS channel, e."offset" AS "offset", c.epoch AS epoch, e.ts AS ts
     FROM events e JOIN channels c ON c.channel = e.channel
     WHERE e.idem IS NOT NULL AND e.ts > ?1 ORDER BY e.ts`,
  );
  const selectOne = db.query("SELECT 1");

  const commit = db.transaction((rows: readonly BatchRow[], tops: ReadonlyMap<string, number>) => {
    for (const { ev, idem } of rows) {
      insertEvent.run(ev.channel, ev.offset, ev.event, ev.critical ? 1 : 0, ev.coalesce, ev.ts, ev.frame, idem);
      if (ev.coalesce !== null) deleteSuperseded.run(ev.channel, ev.coalesce, ev.offset);
    }
    for (const [channel, top] of tops) updateTop.run(channel, top);
  });

  const trim = db.transaction((rule: TrimRule): TrimResult => {
    const trimmed = new Map<string, number>();
    let dropped = 0;
    const note = (channel: string, max: number, n: number) => {
      dropped += n;
      if (max > (trimmed.get(channel) ?? 0)) trimmed.set(channel, max);
    };
    for (const { channel, swept, below } of selectUnswept.all(rule.historySize)) {
      markSwept.run(channel, below);
      const old = countOld.get(channel, swept, below);
      if (old === null || old.n === 0 || old.max === null) continue;
      deleteOld.run(channel, swept, below);
      note(channel, old.max, old.n);
    }
    for (const [critical, before] of [[0, rule.nonCriticalBefore], [1, rule.criticalBefore]] as const) {
      const aged = countAged.all(critical, before);
      if (aged.length === 0) continue;
      deleteAged.run(critical, before);
      for (const a of aged) note(a.channel, a.max, a.n);
    }
    for (const [channel, max] of trimmed) raiseTrimmed.run(channel, max);
    return { dropped, trimmed };
  });

  return {
    path,
    channel: (channel) => selectChannel.get(channel),
    createChannel: (channel, epoch) => void insertChannel.run(channel, epoch),
    commit: (rows, tops) => {
      try {
        commit(rows, tops);
      } finally {
        // bun rolls back on a throwing body; a failed COMMIT can still leave the transaction open.
        if (db.inTransaction) db.run("ROLLBACK");
      }
    },
    history: (channel, after, limit) =>
      selectHistory.all(channel, after, limit).map((r) => ({
        channel: r.channel,
        offset: r.offset,
        event: r.event,
        critical: r.critical === 1,
        coalesce: r.coalesce,
        ts: r.ts,
        frame: r.frame,
      })),
    trim: (rule) => trim(rule),
    idempotencyKeys: (since) => selectKeys.all(since),
    putRecord: (key, value, expiresAt) => void upsertRecord.run(key, value, expiresAt),
    getRecord: (key, now) => selectRecord.get(key, now)?.value ?? null,
    expireRecords: (now) => deleteExpiredRecords.run(now).changes,
    ping: () => void selectOne.get(),
    close: () => {
      try {
        // Folds the WAL back so a clean restart opens one small file.
        db.run("PRAGMA wal_checkpoint(TRUNCATE)");
      } catch {
        // Best effort: the WAL is replayed at the next open anyway.
      }
      db.close(false);
    },
  };
}
