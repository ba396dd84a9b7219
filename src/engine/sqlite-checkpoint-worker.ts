/** The checkpointer's thread: its own connection, one PASSIVE checkpoint per interval. */
import { Database } from "bun:sqlite";

declare const self: Worker;

self.onmessage = (event: MessageEvent<{ path: string; intervalMs: number }>) => {
  const { path, intervalMs } = event.data;
  const db = new Database(path);
  db.run("PRAGMA busy_timeout = 1000");
  const checkpoint = db.query<{ busy: number; log: number; checkpointed: number }, []>("PRAGMA wal_checkpoint(PASSIVE)");
  setInterval(() => {
    try {
      const row = checkpoint.get();
      postMessage({ ok: true, result: row ? [row.busy, row.log, row.checkpointed] : [0, 0, 0] });
    } catch (error) {
      postMessage({ ok: false, error: String(error) });
    }
  }, intervalMs);
};
