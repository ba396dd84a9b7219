/**
 * The embedded engine's durable half: one bun:sqlite file in WAL mode, every query prepared once.
 * It holds no policy (offsets, batching and idempotency live in `embedded-engine.ts`); it turns
 * them into SQL, and turns a corrupt file into a fresh one instead of a crash loop.
 */
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { eventFrame } from "../protocol/serializer.ts";
import { prepareTrim, type TrimResult, type TrimRule } from "./sqlite-trim.ts";
import type { StoredEvent } from "./types.ts";

export type { TrimResult, TrimRule };

export type LogFn = (level: string, msg: string, fields?: object) => void;

/**
 * A channel as persisted: `top` is the committed top (the row's, or its highest stored offset when
 * higher: see sqlite-trim.ts `REFRESH_TOPS`), `trimmed` the highest offset trimmed away.
 */
export interface ChannelRow {
  epoch: string;
  top: number;
  trimmed: number;
}

/**
 * One event of a batch with its idempotency key, stored in the same row so keys survive a crash,
 * and its `data` as JSON: the row keeps that, not the frame, which is rebuilt when read.
 */
export interface BatchRow {
  ev: StoredEvent;
  idem: string | null;
  dataJson: string;
}

/** An idempotency key still inside its window at startup, with the outcome it answers. */
export interface IdempotencyRow {
  idem: string;
  channel: string;
  offset: number;
  epoch: string;
  ts: number;
}

/**
 * A channel's new top after a batch, with the epoch its row is created under if it has none yet,
 * and the `ts` of the batch's first non-critical and first critical event on the channel (null when
 * it has none): the trim pass's age rule starts from them (sqlite-trim.ts).
 */
export interface ChannelTop {
  epoch: string;
  top: number;
  normalTs: number | null;
  criticalTs: number | null;
}

export interface SqliteStore {
  readonly path: string;
  /** Random id made with the file: a fresh file (deleted, corrupt) gets a new one. */
  readonly storeId: string;
  /** The persisted channel, or null for a channel that never had an event stored. */
  channel(channel: string): ChannelRow | null;
  /**
   * Stores one batch in one transaction: the events, the deletion of events they supersede by
   * coalescing, and the new tops (creating the channel rows). Throws, storing nothing, when any
   * part fails.
   */
  commit(rows: readonly BatchRow[], tops: ReadonlyMap<string, ChannelTop>): void;
  history(channel: string, after: number, limit: number): StoredEvent[];
  /**
   * One trim pass; also deletes channel rows that never had an event (made by older builds on read).
   * `tops`: the committed tops of the channels committed since the last pass, written to their rows
   * first (see sqlite-trim.ts `REFRESH_TOPS`).
   */
  trim(rule: TrimRule, tops: ReadonlyMap<string, number>): TrimResult;
  idempotencyKeys(since: number): IdempotencyRow[];
  putRecord(key: string, value: string, expiresAt: number): void;
  /** The record's value if it has not expired by `now`. */
  getRecord(key: string, now: number): string | null;
  /** Drops records expired by `now`. */
  expireRecords(now: number): number;
  /** Proves the file takes a write: one row rewritten in its own transaction. Throws when it does not. */
  probe(now: number): void;
  close(): void;
}

/** Default bound of the WAL file (see `openSqliteStore`). */
export const DEFAULT_WAL_LIMIT_BYTES = 16 * 1024 * 1024;

/**
 * Where the writer checkpoints itself, inside a commit: a quarter of the bound, so the commits made
 * while a checkpoint is held up (by a reader, or by the worker's own) still fit under it. At half,
 * a 1 MiB bound was exceeded once in three long runs (1.78 MB). The worker
 * (`sqlite-checkpointer.ts`) has the WAL start over long before, unless the load outruns it.
 */
export function writerCheckpointBytes(walLimitBytes: number): number {
  return walLimitBytes / 4;
}

const MIN_WAL_LIMIT_BYTES = 64 * 1024;
/** How long a write waits for the checkpoint worker's short TRUNCATE (taken only when idle). */
const BUSY_TIMEOUT_MS = 250;

/**
 * Where each channel's age rule stands (sqlite-trim.ts): per class (`nc_` non-critical, `c_`
 * critical), every event of the class at an offset up to `*_aged` is gone, and `*_ts` is the `ts` of
 * the first one after it (null: none stored since). They replace an index on `(critical, ts)` that
 * every insert paid for: one b-tree page more per commit, ~4 of ~37 µs of server CPU per critical
 * publish (bench/profile/profile.ts, 8 in flight).
 */
const AGE_COLUMNS = ["nc_aged INTEGER NOT NULL DEFAULT 0", "nc_ts INTEGER", "c_aged INTEGER NOT NULL DEFAULT 0", "c_ts INTEGER"];

/**
 * An event's `data` as JSON. Rows stored since it exists have it and an empty `legacy_frame`: the
 * frame is rebuilt from the columns when read (`eventFrame`, the function that built the one
 * delivered live), so a row holds no second copy of the channel, offset, event, ts and flag. That is
 * a third less per row, and fewer b-tree pages per commit. Older rows keep the frame they were
 * stored with, in the column once named `frame`: renamed so that an older build, which would read
 * the empty frames (and trust a row's `top`, see sqlite-trim.ts `REFRESH_TOPS`), refuses the file at start instead.
 */
const DATA_COLUMN = "data TEXT";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS channels (
  channel TEXT PRIMARY KEY,
  epoch TEXT NOT NULL,
  top INTEGER NOT NULL,
  trimmed INTEGER NOT NULL,
  swept INTEGER NOT NULL DEFAULT 0,
  ${AGE_COLUMNS.join(",\n  ")}
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  channel TEXT NOT NULL,
  "offset" INTEGER NOT NULL,
  event TEXT NOT NULL,
  critical INTEGER NOT NULL,
  coalesce TEXT,
  ts INTEGER NOT NULL,
  legacy_frame TEXT NOT NULL DEFAULT '',
  idem TEXT,
  ${DATA_COLUMN},
  PRIMARY KEY (channel, "offset")
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_idem ON events (idem) WHERE idem IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_coalesce ON events (channel, coalesce) WHERE coalesce IS NOT NULL;
CREATE TABLE IF NOT EXISTS records (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS probe (
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL
);
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
  /** Empty when `data` is stored instead (DATA_COLUMN). */
  legacy_frame: string;
  data: string | null;
}

export interface SqliteStoreOptions {
  dataDir: string;
  fileName: string;
  now: () => number;
  log: LogFn;
  /**
   * Bound of the `-wal` file. The writer checkpoints once the WAL holds a quarter of it
   * (`writerCheckpointBytes`; the checkpoint worker, given the same bound, seldom lets it get there),
   * and a WAL restarted after a checkpoint is truncated back to it. Default {@link DEFAULT_WAL_LIMIT_BYTES}.
   */
  walLimitBytes?: number;
}

/**
 * Opens (or creates) the store file. A file SQLite reports as corrupt, at open or by
 * `PRAGMA quick_check`, is renamed to `<file>.corrupt-<now>` with its WAL, and a fresh one is
 * created: every channel then gets a new epoch, which tells resuming clients that history was lost.
 *
 * @example
 * const store = openSqliteStore({ dataDir: "./data", fileName: "courier.db", now: Date.now, log: console.log });
 * store.commit(rows, new Map([["user:a", { epoch: "3f9c2a1b7e4d", top: 1 }]]));
 */
export function openSqliteStore(o: SqliteStoreOptions): SqliteStore {
  const walLimitBytes = o.walLimitBytes ?? DEFAULT_WAL_LIMIT_BYTES;
  if (!(walLimitBytes >= MIN_WAL_LIMIT_BYTES)) {
    throw new RangeError(`Cannot open store: walLimitBytes must be >= ${MIN_WAL_LIMIT_BYTES}, got ${walLimitBytes}`);
  }
  mkdirSync(o.dataDir, { recursive: true });
  const path = join(o.dataDir, o.fileName);
  const open = () => openChecked(path, walLimitBytes);
  let db: Database;
  try {
    db = open();
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
    db = open();
  }
  return storeOn(db, path, storeIdOf(db));
}

function openChecked(path: string, walLimitBytes: number): Database {
  const db = new Database(path, { create: true });
  try {
    db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.run("PRAGMA journal_mode = WAL");
    // NORMAL in WAL mode survives a process crash (kill -9); only power loss can undo the last commits.
    db.run("PRAGMA synchronous = NORMAL");
    // The worker (sqlite-checkpointer.ts) copies pages off the event loop and keeps the WAL short,
    // but only a checkpoint with no commit running beside it lets the WAL start over, and a burst can
    // outrun the worker: without this mark the file grew to the old 80 MB backstop above ~1k
    // publishes/s. It runs inside a commit, so it is a backstop: the worker acts from a sixteenth.
    const pageBytes = db.query<{ page_size: number }, []>("PRAGMA page_size").get()!.page_size;
    db.run(`PRAGMA wal_autocheckpoint = ${Math.max(1, Math.floor(writerCheckpointBytes(walLimitBytes) / pageBytes))}`);
    db.run(`PRAGMA journal_size_limit = ${walLimitBytes}`);
    const rows = db.query("PRAGMA quick_check").values();
    if (rows.length !== 1 || rows[0]?.[0] !== "ok") {
      throw Object.assign(new Error(`quick_check failed: ${rows.slice(0, 5).map((r) => r[0]).join("; ")}`), {
        code: "SQLITE_CORRUPT",
      });
    }
    db.run(SCHEMA);
    migrate(db);
    return db;
  } catch (error) {
    db.close(false);
    throw error;
  }
}

/**
 * Brings a file made by an older build up to this schema, in one transaction. Files made before
 * `swept` existed get it. Files that still have the `events_age` index (made before the age columns,
 * or opened by such a build since) get the columns, every channel marked for a visit by the next
 * trim pass (`*_ts = 0`: the pass then finds where each class really stands), and the index dropped.
 * The `*_aged` marks stay valid whatever an older build trimmed: it only ever removed more. Files
 * whose rows hold frames get `frame` renamed `legacy_frame` and the `data` column (DATA_COLUMN).
 */
function migrate(db: Database): void {
  const columnsOf = (table: string) => new Set(db.query<{ name: string }, []>(`PRAGMA table_info(${table})`).all().map((c) => c.name));
  const channels = columnsOf("channels");
  const events = columnsOf("events");
  const missing = AGE_COLUMNS.filter((c) => !channels.has(c.split(" ")[0]!));
  const indexed = db.query("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'events_age'").get() !== null;
  const framed = events.has("frame");
  if (channels.has("swept") && missing.length === 0 && !indexed && !framed && events.has("data")) return;
  db.transaction(() => {
    if (!channels.has("swept")) db.run("ALTER TABLE channels ADD COLUMN swept INTEGER NOT NULL DEFAULT 0");
    for (const column of missing) db.run(`ALTER TABLE channels ADD COLUMN ${column}`);
    if (missing.length > 0 || indexed) {
      db.run("UPDATE channels SET nc_ts = 0, c_ts = 0");
      db.run("DROP INDEX IF EXISTS events_age");
    }
    if (framed) db.run("ALTER TABLE events RENAME COLUMN frame TO legacy_frame");
    if (!events.has("data")) db.run(`ALTER TABLE events ADD COLUMN ${DATA_COLUMN}`);
  })();
}

function inOwnTransaction(db: Database, run: () => void): void {
  try {
    run();
  } finally {
    // bun rolls back on a throwing body; a failed COMMIT can still leave the transaction open.
    if (db.inTransaction) db.run("ROLLBACK");
  }
}

/** Read first: a read-only file that has its id still opens (and then fails its readiness probe). */
function storeIdOf(db: Database): string {
  const select = db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'store_id'");
  const existing = select.get();
  if (existing !== null) return existing.value;
  db.run("INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?1)", [crypto.randomUUID()]);
  return select.get()!.value;
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

function storeOn(db: Database, path: string, storeId: string): SqliteStore {
  const upsertRecord = db.query<null, [string, string, number]>(
    "INSERT INTO records (key, value, expires) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET value = ?2, expires = ?3",
  );
  const selectRecord = db.query<{ value: string }, [string, number]>("SELECT value FROM records WHERE key = ?1 AND expires > ?2");
  const deleteExpiredRecords = db.query<null, [number]>("DELETE FROM records WHERE expires <= ?1");
  const selectChannel = db.query<ChannelRow, [string]>(
    `SELECT epoch, MAX(top, COALESCE((SELECT MAX("offset") FROM events WHERE channel = ?1), 0)) AS top, trimmed FROM channels WHERE channel = ?1`,
  );
  // A new channel's row; an existing one is written only to set an age mark it lacks (an age mark
  // already set stays: it is the first event's after the mark, not this batch's), never for its top.
  const upsertTop = db.query<null, [string, string, number, number | null, number | null]>(
    `INSERT INTO channels (channel, epoch, top, trimmed, nc_ts, c_ts) VALUES (?1, ?2, ?3, 0, ?4, ?5)
     ON CONFLICT (channel) DO UPDATE SET nc_ts = COALESCE(nc_ts, ?4), c_ts = COALESCE(c_ts, ?5)
     WHERE (nc_ts IS NULL AND ?4 IS NOT NULL) OR (c_ts IS NULL AND ?5 IS NOT NULL)`,
  );
  const writeProbe = db.query<null, [number]>("INSERT INTO probe (id, ts) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET ts = ?1");
  const insertEvent = db.query<null, [string, number, string, number, string | null, number, string, string | null]>(
    `INSERT INTO events (channel, "offset", event, critical, coalesce, ts, legacy_frame, data, idem) VALUES (?1, ?2, ?3, ?4, ?5, ?6, '', ?7, ?8)`,
  );
  const deleteSuperseded = db.query<null, [string, string, number]>(
    // Without INDEXED BY the planner walks the primary key over the channel's whole history.
    `DELETE FROM events INDEXED BY events_coalesce WHERE channel = ?1 AND coalesce = ?2 AND "offset" < ?3`,
  );
  const selectHistory = db.query<EventRow, [string, number, number]>(
    `SELECT channel, "offset", event, critical, coalesce, ts, legacy_frame, data FROM events
     WHERE channel = ?1 AND "offset" > ?2 ORDER BY "offset" LIMIT ?3`,
  );
  const selectKeys = db.query<IdempotencyRow, [number]>(
    `SELECT e.idem AS idem, e.channel AS channel, e."offset" AS "offset", c.epoch AS epoch, e.ts AS ts
     FROM events e JOIN channels c ON c.channel = e.channel
     WHERE e.idem IS NOT NULL AND e.ts > ?1 ORDER BY e.ts`,
  );

  const commit = db.transaction((rows: readonly BatchRow[], tops: ReadonlyMap<string, ChannelTop>) => {
    for (const { ev, idem, dataJson } of rows) {
      insertEvent.run(ev.channel, ev.offset, ev.event, ev.critical ? 1 : 0, ev.coalesce, ev.ts, dataJson, idem);
      if (ev.coalesce !== null) deleteSuperseded.run(ev.channel, ev.coalesce, ev.offset);
    }
    for (const [channel, t] of tops) upsertTop.run(channel, t.epoch, t.top, t.normalTs, t.criticalTs);
  });
  const probe = db.transaction((now: number) => void writeProbe.run(now));

  const trim = prepareTrim(db);

  return {
    path,
    storeId,
    channel: (channel) => selectChannel.get(channel),
    commit: (rows, tops) => inOwnTransaction(db, () => commit(rows, tops)),
    history: (channel, after, limit) =>
      selectHistory.all(channel, after, limit).map((r) => {
        const critical = r.critical === 1;
        const frame = r.legacy_frame !== "" ? r.legacy_frame : eventFrame({ channel: r.channel, offset: r.offset, event: r.event, dataJson: r.data!, critical, ts: r.ts });
        return { channel: r.channel, offset: r.offset, event: r.event, critical, coalesce: r.coalesce, ts: r.ts, frame };
      }),
    trim: (rule, tops) => trim(rule, tops),
    idempotencyKeys: (since) => selectKeys.all(since),
    putRecord: (key, value, expiresAt) => void upsertRecord.run(key, value, expiresAt),
    getRecord: (key, now) => selectRecord.get(key, now)?.value ?? null,
    expireRecords: (now) => deleteExpiredRecords.run(now).changes,
    probe: (now) => inOwnTransaction(db, () => probe(now)),
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
