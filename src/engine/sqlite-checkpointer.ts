/**
 * WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside whichever commit
 * crosses its threshold, and copies and fsyncs there (two fsyncs, ~2–5 ms each on the VM's ext4):
 * a stall of the one thread every socket shares, inside the commit that delivery and the 200 wait
 * for. A worker with its own connection runs `wal_checkpoint(PASSIVE)`, which never blocks the
 * writer, so that the writer's own checkpoint (at a quarter of `store.walLimitBytes`, see
 * `sqlite-store.ts`) is a backstop that a moderate load seldom reaches.
 *
 * Copying pages back is not enough: the WAL only starts over when a write transaction begins with
 * every frame copied back, and a PASSIVE checkpoint during which the writer commits leaves the new
 * frames behind. So once the WAL holds a sixteenth of the bound, the worker chases the writer: PASSIVE
 * again until two in a row see the same WAL (nothing was committed while the second ran), at most
 * three times per tick. It looks every `pollMs` while the WAL grows fast enough to pass an eighth of
 * the bound (where the chase stops, below) before the next `intervalMs`, counting only what a
 * checkpoint left behind (a WAL copied back whole starts over at the next write), and every
 * `intervalMs` otherwise: each checkpoint that copies pages costs two fsyncs, which the writer's
 * appends can wait behind, and the next write's restart of the WAL a third (the embedded engine
 * takes that one between publishes). At a paced 100 commits/s, a PASSIVE every 100 ms made p99
 * commits slower, 0.26 → 0.5–0.7 ms, for nothing to gain; the sixteenth as this mark still did so
 * for the store's real commits (~4 pages each): ~3 checkpoints a second, now ~1.
 *
 * Near the writer's mark the worker keeps out of its way: while a checkpoint here holds the
 * checkpoint lock, the writer's own is skipped and the WAL grows past its mark. So the chase stops
 * at an eighth of the bound, and the ticks stay slow when the writer fills a quarter between two
 * fast ones (its WAL then cycles through its own checkpoint faster than a chase can win). The first
 * look is after `intervalMs`, as before.
 *
 * Why not RESTART or TRUNCATE by size, which reset the WAL for sure: both hold the write lock while
 * they copy and fsync, and the writer sleeps in its busy handler (1 ms, 2 ms, 5 ms…) meanwhile, so
 * a commit waits as long as if it had checkpointed itself. Commits over 1 ms (1-event commits,
 * 16 MiB bound, the 2-core VM; `bench/profile/wal-commit-latency.ts`, indicative only), before →
 * now: 1,000 commits/s for 15 s, 70–88 → 35–43 (RESTART by size: 71–72; with the writer's mark at
 * half the bound 25–26, but the bound no longer held); 5,000/s, where the writer's own checkpoint
 * still runs, no gain; 100/s for 30 s, 3–8 either way. TRUNCATE is used only once the
 * writer has been idle for `intervalMs`, so that an idle node's WAL file shrinks to nothing.
 */
import type { CheckpointWorkerOptions } from "./sqlite-checkpoint-worker.ts";
import { DEFAULT_WAL_LIMIT_BYTES, writerCheckpointBytes } from "./sqlite-store.ts";

export interface Checkpointer {
  /** Checkpoints run so far, and the last one's result (`busy`, WAL pages, pages checkpointed). */
  stats(): { runs: number; last: [number, number, number] | null };
  close(): void;
}

export interface CheckpointerOptions {
  /** The database file. */
  path: string;
  /** The slow tick, and how long the writer must be idle before the WAL is truncated. Default 1000. */
  intervalMs?: number;
  /** The fast tick, while the WAL grows quickly. Default 100 (at most `intervalMs`). */
  pollMs?: number;
  /** The store's `walLimitBytes`: the worker chases the writer from a sixteenth of it. Default 16 MiB. */
  walLimitBytes?: number;
  log?: (level: string, msg: string, fields?: object) => void;
  /** Called after each checkpoint with `[busy, walPages, checkpointedPages]`. */
  onRun?: (result: [number, number, number]) => void;
}

const DEFAULT_POLL_MS = 100;

/**
 * Starts checkpointing `path` on a worker thread.
 *
 * @example
 * const checkpointer = startCheckpointer({ path: "./data/courier.db", walLimitBytes: 16 * 1024 * 1024 });
 * checkpointer.close();
 */
export function startCheckpointer(options: CheckpointerOptions): Checkpointer {
  const { path, intervalMs = 1000, walLimitBytes = DEFAULT_WAL_LIMIT_BYTES, log = () => {}, onRun } = options;
  const pollMs = options.pollMs ?? Math.min(DEFAULT_POLL_MS, intervalMs);
  if (!(intervalMs > 0)) throw new RangeError(`Cannot start checkpointer: intervalMs must be > 0, got ${intervalMs}`);
  if (!(pollMs > 0 && pollMs <= intervalMs)) throw new RangeError(`Cannot start checkpointer: pollMs must be in (0, intervalMs], got ${pollMs}`);
  if (!(walLimitBytes > 0)) throw new RangeError(`Cannot start checkpointer: walLimitBytes must be > 0, got ${walLimitBytes}`);
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
  const start: CheckpointWorkerOptions = { path, intervalMs, pollMs, restartBytes: walLimitBytes / 16, writerBytes: writerCheckpointBytes(walLimitBytes) };
  worker.postMessage(start);
  return {
    stats: () => ({ runs, last }),
    close: () => worker.terminate(),
  };
}
