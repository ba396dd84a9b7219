/**
 * WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever commit
 * crosses the threshold and copies and fsyncs there: a stall of the one thread every socket
 * shares. A worker with its own connection runs `wal_checkpoint(PASSIVE)` every interval, which
 * never blocks the writer and leaves it little to copy. Under steady writes a PASSIVE checkpoint
 * never catches up, though, and only a complete one lets the WAL start over: the writer still
 * checkpoints at a quarter of `store.walLimitBytes` to bound the file (see `sqlite-store.ts`).
 */

export interface Checkpointer {
  /** Checkpoints run so far, and the last one's result (`busy`, WAL pages, pages checkpointed). */
  stats(): { runs: number; last: [number, number, number] | null };
  close(): void;
}

export interface CheckpointerOptions {
  /** The database file. */
  path: string;
  intervalMs?: number;
  log?: (level: string, msg: string, fields?: object) => void;
  /** Called after each checkpoint with `[busy, walPages, checkpointedPages]`. */
  onRun?: (result: [number, number, number]) => void;
}

/**
 * Starts checkpointing `path` every `intervalMs` on a worker thread.
 *
 * @example
 * const checkpointer = startCheckpointer({ path: "./data/courier.db" });
 * checkpointer.close();
 */
export function startCheckpointer(options: CheckpointerOptions): Checkpointer {
  const { path, intervalMs = 1000, log = () => {}, onRun } = options;
  if (!(intervalMs > 0)) throw new RangeError(`Cannot start checkpointer: intervalMs must be > 0, got ${intervalMs}`);
  const worker = new Worker(new URL("./sqlite-checkpoint-worker.ts", import.meta.url));
  // The worker must not keep the process alive: a draining server exits when its work is done.
  (worker as unknown as { unref(): void }).unref();
  let runs = 0;
  let last: [number, number, number] | null = null;
  worker.onmessage = (event: MessageEvent<{ ok: true; result: [number, number, number] } | { ok: false; error: string }>) => {
    if (event.data.ok) {
      runs++;
      last = event.data.result;
      onRun?.(last);
    } else {
      log("warn", "wal checkpoint failed", { error: event.data.error });
    }
  };
  worker.postMessage({ path, intervalMs });
  return {
    stats: () => ({ runs, last }),
    close: () => worker.terminate(),
  };
}
