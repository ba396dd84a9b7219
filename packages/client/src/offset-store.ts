/**
 * Pluggable persistence of each channel's last processed position, so that a reload resumes with
 * `since` instead of missing events. Synchronous on purpose: it sits on the delivery path.
 */
import type { Position } from "./types.ts";

/**
 * Where the client keeps `{epoch, offset}` per channel: implement it to persist elsewhere. It is
 * written after every delivered event, so keep it cheap (and never throw).
 *
 * @example
 * const sessionStore: OffsetStore = {
 *   get: (channel) => JSON.parse(sessionStorage.getItem(channel) ?? "null") ?? undefined,
 *   set: (channel, position) => sessionStorage.setItem(channel, JSON.stringify(position)),
 *   delete: (channel) => sessionStorage.removeItem(channel),
 * };
 */
export interface OffsetStore {
  get(channel: string): Position | undefined;
  set(channel: string, position: Position): void;
  delete(channel: string): void;
}

/**
 * An in-memory store: positions live as long as the page or process (the default).
 *
 * @example
 * const store = memoryOffsetStore();
 * store.set("user:a", { epoch: "e1", offset: 7 });
 * store.get("user:a"); // { epoch: "e1", offset: 7 }
 */
export function memoryOffsetStore(): OffsetStore {
  const positions = new Map<string, Position>();
  return {
    get: (channel) => {
      const p = positions.get(channel);
      return p && { ...p };
    },
    set: (channel, position) => void positions.set(channel, { epoch: position.epoch, offset: position.offset }),
    delete: (channel) => void positions.delete(channel),
  };
}

/** The part of the Web Storage API the localStorage store uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Options of `localStorageOffsetStore`. */
export interface LocalStorageOffsetStoreOptions {
  /** Defaults to `globalThis.localStorage`; where there is none (Bun, Node, a worker), see `fallback`. */
  storage?: StorageLike;
  /**
   * Without any storage: `"memory"` keeps positions in memory (as `memoryOffsetStore`), `"throw"`
   * throws `TypeError`. Default `"memory"`, so the same code runs in a page and in Bun.
   */
  fallback?: "memory" | "throw";
  /** Key prefix. Default `"courier:pos:"`. */
  prefix?: string;
}

/**
 * A store backed by `localStorage` (or any Web Storage), so positions survive a reload. Unreadable
 * entries count as absent, and a full or disabled storage never breaks delivery. Where there is no
 * `localStorage` (Bun, Node) it keeps positions in memory unless `fallback: "throw"`; for a
 * process that should resume after a restart, use `fileOffsetStore` from `@courier/client/file-store`.
 *
 * @example
 * const client = new CourierClient({ url, token, store: localStorageOffsetStore() });
 */
export function localStorageOffsetStore(options: LocalStorageOffsetStoreOptions = {}): OffsetStore {
  const storage = options.storage ?? globalStorage();
  if (!storage) {
    if (options.fallback === "throw") throw new TypeError("Cannot create localStorageOffsetStore: no localStorage here (use fileOffsetStore or memoryOffsetStore)");
    return memoryOffsetStore();
  }
  const prefix = options.prefix ?? "courier:pos:";
  return {
    get(channel) {
      try {
        const raw = storage.getItem(prefix + channel);
        if (raw === null) return undefined;
        const value: unknown = JSON.parse(raw);
        return isPosition(value) ? { epoch: value.epoch, offset: value.offset } : undefined;
      } catch {
        return undefined;
      }
    },
    set(channel, position) {
      try {
        storage.setItem(prefix + channel, JSON.stringify({ epoch: position.epoch, offset: position.offset }));
      } catch {
        // Quota exceeded or storage disabled: the position stays in memory only.
      }
    },
    delete(channel) {
      try {
        storage.removeItem(prefix + channel);
      } catch {
        // As above.
      }
    },
  };
}

/** `globalThis.localStorage`, or undefined where it is missing or access throws (sandboxed iframes). */
function globalStorage(): StorageLike | undefined {
  try {
    return (globalThis as { localStorage?: StorageLike }).localStorage ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `value` is a stored `{epoch, offset}`.
 *
 * @example
 * isPosition(JSON.parse(raw)); // false for corrupt entries
 */
export function isPosition(value: unknown): value is Position {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.epoch === "string" && typeof v.offset === "number" && Number.isSafeInteger(v.offset) && v.offset >= 0;
}
