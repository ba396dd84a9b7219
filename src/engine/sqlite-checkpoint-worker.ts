/**
 * The checkpointer's thread (`sqlite-checkpointer.ts` says why it works this way): its own
 * connection, PASSIVE checkpoints paced by how fast the WAL grows, and a TRUNCATE once the writer
 * has been idle for `intervalMs` with every page copied back, so an idle node's WAL file shrinks to
 * nothing. TRUNCATE briefly blocks writers, which is why it waits for idleness (the writer's busy
 * timeout covers a publish arriving just then).
 */
import { Database, type Statement } from "bun:sqlite";

declare const self: Worker;

type Row = { busy: number; log: number; checkpointed: number };

export interface CheckpointWorkerOptions {
  path: string;
  intervalMs: number;
  pollMs: number;
  /** From this WAL size the worker chases the writer so that the WAL starts over. */
  restartBytes: number;
  /** Where the writer checkpoints itself (`wal_autocheckpoint`). */
  writerBytes: number;
}

/** How many PASSIVE checkpoints in a row may chase a writer before waiting for the next tick. */
const CHASES = 3;

self.onmessage = (event: MessageEvent<CheckpointWorkerOptions>) => {
  const { path, intervalMs, pollMs, restartBytes, writerBytes } = event.data;
  // Opened at the first tick, not at once: preparing reads the schema, and a reader holding an old
  // snapshot while this thread starts up keeps the writer's checkpoints from restarting the WAL.
  let statements: { passive: Statement<Row, []>; truncate: Statement<Row, []> } | null = null;
  let restartPages = Infinity;
  // Past this the writer's own checkpoint is near: one of ours holding the checkpoint lock when the
  // writer's is due makes the writer skip it, and the WAL grows past the bound meanwhile.
  let leavePages = Infinity;
  let lastLog = 0;
  let lastAt = 0;
  let sameSince = 0;

  const open = () => {
    const db = new Database(path);
    db.run("PRAGMA busy_timeout = 1000");
    const pageBytes = db.query<{ page_size: number }, []>("PRAGMA page_size").get()!.page_size;
    restartPages = Math.floor(restartBytes / pageBytes);
    leavePages = Math.floor(writerBytes / 2 / pageBytes);
    return {
      passive: db.query<Row, []>("PRAGMA wal_checkpoint(PASSIVE)"),
      truncate: db.query<Row, []>("PRAGMA wal_checkpoint(TRUNCATE)"),
    };
  };

  /** PASSIVE again until two in a row see the same WAL: nothing was committed while the second ran. */
  const chase = (passive: Statement<Row, []>, row: Row): Row => {
    for (let i = 0; i < CHASES && row.busy === 0 && row.log < leavePages; i++) {
      const before = row.log;
      row = passive.get()!;
      if (row.log === before) break;
    }
    return row;
  };

  const tick = () => {
    let delayMs = intervalMs;
    try {
      statements ??= open();
      const { passive, truncate } = statements;
      const at = performance.now();
      let row = passive.get()!;
      // Busy: the writer is checkpointing itself, and is best left alone.
      if (row.busy === 0) {
        // A restarted WAL holds only new frames: its length is what was written since, at least.
        const perMs = (row.log >= lastLog ? row.log - lastLog : row.log) / Math.max(at - lastAt, 1);
        if (row.log !== lastLog) sameSince = at;
        if (row.log > 0 && row.checkpointed === row.log && at - sameSince >= intervalMs) row = truncate.get()!;
        else if (row.log >= restartPages && row.checkpointed === row.log) row = chase(passive, row);
        // Soon while the WAL would pass the chase's upper mark before a slow tick (a WAL copied back
        // whole starts over at the next write: only what is left counts), unless the writer fills a
        // quarter of the bound between two fast ticks: its WAL then cycles through its own checkpoint
        // faster than a chase can win, and checkpoints here only risk being in its way.
        const left = row.checkpointed === row.log ? 0 : row.log;
        if (left + perMs * intervalMs >= leavePages && perMs * pollMs < leavePages) delayMs = pollMs;
        lastLog = Math.max(row.log, 0);
        lastAt = at;
      }
      postMessage({ ok: true, result: [row.busy, row.log, row.checkpointed] });
    } catch (error) {
      postMessage({ ok: false, error: String(error) });
    }
    setTimeout(tick, delayMs);
  };
  setTimeout(tick, intervalMs);
};
