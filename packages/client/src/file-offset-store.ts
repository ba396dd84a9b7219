/**
 * An offset store in a JSON file, for Bun and Node processes (workers, bots, backends that
 * subscribe): positions survive a restart, so the process resumes with `since`. Its own entry
 * (`@courier/client/file-store`) because it imports `node:fs`, which the browser entry must not.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { isPosition, type OffsetStore } from "./offset-store.ts";
import { globalTimers } from "./timers.ts";
import type { Position, Timers } from "./types.ts";

/** Options of `fileOffsetStore`. */
export interface FileOffsetStoreOptions {
  /**
   * Writes within this window are gathered into one write of the whole file (the store sits on
   * the delivery path). `0` writes on every change. Default `100`.
   */
  flushIntervalMs?: number;
  timers?: Timers;
}

/** A file-backed store; `flush()` writes now, `close()` writes and stops. */
export interface FileOffsetStore extends OffsetStore {
  /** Writes pending changes now; throws when the file cannot be written. */
  flush(): void;
  /** Writes pending changes and detaches from process exit. Idempotent. */
  close(): void;
}

/**
 * Keeps positions in memory and in `path` (created with its folder on the first write, replaced
 * atomically). An unreadable file counts as empty; pending changes are written on process exit.
 *
 * @example
 * import { fileOffsetStore } from "@courier/client/file-store";
 * const store = fileOffsetStore("./data/courier-offsets.json");
 * const client = new CourierClient({ url, token, store });
 */
export function fileOffsetStore(path: string, options: FileOffsetStoreOptions = {}): FileOffsetStore {
  if (typeof path !== "string" || path.length === 0) throw new TypeError("Cannot create fileOffsetStore: path must be a non-empty string");
  const flushIntervalMs = options.flushIntervalMs ?? 100;
  if (!(flushIntervalMs >= 0) || !Number.isFinite(flushIntervalMs)) throw new RangeError("fileOffsetStore flushIntervalMs must be a finite number >= 0");
  const timers = options.timers ?? globalTimers;
  const positions = load(path);
  let dirty = false;
  let timer: unknown = undefined;

  const flush = () => {
    if (timer !== undefined) timers.clearTimeout(timer);
    timer = undefined;
    if (!dirty) return;
    mkdirSync(dirname(path), { recursive: true });
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(Object.fromEntries(positions)));
    renameSync(temp, path);
    dirty = false;
  };
  // A store never throws on the delivery path: a failed write is retried by the next change.
  const flushQuietly = () => {
    try {
      flush();
    } catch {
      // Disk full or read-only: positions stay in memory until a write succeeds.
    }
  };
  const changed = () => {
    dirty = true;
    if (flushIntervalMs === 0) return flushQuietly();
    timer ??= timers.setTimeout(() => {
      timer = undefined;
      flushQuietly();
    }, flushIntervalMs);
  };
  process.on("exit", flushQuietly);

  return {
    get: (channel) => {
      const p = positions.get(channel);
      return p && { ...p };
    },
    set: (channel, position) => {
      positions.set(channel, { epoch: position.epoch, offset: position.offset });
      changed();
    },
    delete: (channel) => {
      if (positions.delete(channel)) changed();
    },
    flush,
    close: () => {
      process.off("exit", flushQuietly);
      flushQuietly();
    },
  };
}

function load(path: string): Map<string, Position> {
  const positions = new Map<string, Position>();
  let raw: string;
  try {
    raw = readFileSync(path, "utf8");
  } catch {
    return positions; // No file yet.
  }
  try {
    const value: unknown = JSON.parse(raw);
    if (typeof value !== "object" || value === null) return positions;
    for (const [channel, position] of Object.entries(value)) {
      if (isPosition(position)) positions.set(channel, { epoch: position.epoch, offset: position.offset });
    }
  } catch {
    // A corrupt file counts as empty, like a corrupt localStorage entry: the next write replaces it.
  }
  return positions;
}
