/**
 * The checkpointer's thread: its own connection, one PASSIVE checkpoint per interval, and a
 * TRUNCATE once the writer has been idle for a whole interval with every page copied back, so an
 * idle node's WAL file shrinks to nothing. TRUNCATE briefly blocks writers, which is why it waits
 * for idleness (the writer's busy timeout covers a publish arriving just then).
 */
import { Database, type Statement } from "bun:sqlite";

declare const self: Worker;

type Row = { busy: number; log: number; checkpointed: number };

self.onmessage = (event: MessageEvent<{ path: string; intervalMs: number }>) => {
  const { path, intervalMs } = event.data;
  // Opened at the first tick, not at once: preparing reads the schema, and a reader holding an old
  // snapshot while this thread starts up keeps the writer's checkpoints from restarting the WAL.
  let statements: { passive: Statement<Row, []>; truncate: Statement<Row, []> } | null = null;
  let previousLog = -1;
  setInterval(() => {
    try {
      if (statements === null) {
        const db = new Database(path);
        db.run("PRAGMA busy_timeout = 1000");
        statements = {
          passive: db.query<Row, []>("PRAGMA wal_checkpoint(PASSIVE)"),
          truncate: db.query<Row, []>("PRAGMA wal_checkpoint(TRUNCATE)"),
        };
      }
      const { passive, truncate } = statements;
      let row = passive.get();
      const idle = row !== null && row.busy === 0 && row.log > 0 && row.checkpointed === row.log && row.log === previousLog;
      previousLog = row?.log ?? -1;
      if (idle) row = truncate.get();
      postMessage({ ok: true, result: row ? [row.busy, row.log, row.checkpointed] : [0, 0, 0] });
    } catch (error) {
      postMessage({ ok: false, error: String(error) });
    }
  }, intervalMs);
};
