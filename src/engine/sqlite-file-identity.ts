/**
 * Whether the files a store has open are still the ones at their paths. SQLite keeps writing to an
 * unlinked file without an error, so after `rm -rf <data dir>` every commit "succeeds" into a file
 * no restart will ever find. Two checks tell: a descriptor held open on each file sees its link
 * count drop to 0 once it is unlinked (one `fstat`, no path lookup: cheap enough before every
 * commit), and comparing the device and inode at the path also sees a file renamed away or a
 * directory replaced or mounted over, which leave the open file linked elsewhere.
 */
import { closeSync, fstatSync, openSync, statSync } from "node:fs";

/** Device and inode: what names a file, whatever its path. */
interface Identity {
  dev: number;
  ino: number;
}

export interface FileIdentity {
  /**
   * Null while every file is still at its path; else why not ("<path> was deleted" or "<path> was
   * replaced by another file"). One `stat` per file (~2–5 µs, a path lookup).
   */
  changed(): string | null;
  /**
   * Null while every file still has a name; else "<path> was deleted". One `fstat` per file
   * (~0.5 µs). Blind to a rename or a mount over the dir (see `changed`), and to filesystems that
   * keep an open unlinked file linked (NFS renames it to `.nfsXXXX`).
   */
  unlinked(): string | null;
  /**
   * Closes the descriptors. Only once the store is closed: closing any descriptor of a file drops
   * every POSIX lock this process holds on it, SQLite's included.
   */
  close(): void;
}

/**
 * Remembers which files are at `paths` now, and holds each open (a missing file is skipped: it
 * cannot be compared).
 *
 * @example
 * const identity = rememberFiles(["./data/courier.db", "./data/courier.db-wal"]);
 * identity.unlinked(); // null, or "./data/courier.db was deleted"
 * identity.changed(); // null, or "./data/courier.db was replaced by another file"
 * identity.close();
 */
export function rememberFiles(paths: readonly string[]): FileIdentity {
  const known: { path: string; fd: number; id: Identity }[] = [];
  try {
    for (const path of paths) {
      const fd = openIfPresent(path);
      if (fd === null) continue;
      const { dev, ino } = fstatSync(fd);
      known.push({ path, fd, id: { dev, ino } });
    }
  } catch (error) {
    for (const { fd } of known) closeSync(fd);
    throw error;
  }
  return {
    changed() {
      for (const { path, id } of known) {
        let now: Identity | null;
        try {
          now = identityOf(path);
        } catch (error) {
          // ENOTDIR (the dir replaced by a file), EIO: not provably ours any more.
          return `${path} cannot be checked (${codeOf(error)})`;
        }
        if (now === null) return `${path} was deleted`;
        if (now.dev !== id.dev || now.ino !== id.ino) return `${path} was replaced by another file`;
      }
      return null;
    },
    unlinked() {
      for (const { path, fd } of known) {
        try {
          if (fstatSync(fd).nlink === 0) return `${path} was deleted`;
        } catch (error) {
          return `${path} cannot be checked (${codeOf(error)})`;
        }
      }
      return null;
    },
    close() {
      for (const { fd } of known.splice(0)) closeSync(fd);
    },
  };
}

function openIfPresent(path: string): number | null {
  try {
    return openSync(path, "r");
  } catch (error) {
    if (codeOf(error) === "ENOENT") return null;
    throw error;
  }
}

function identityOf(path: string): Identity | null {
  const stat = statSync(path, { throwIfNoEntry: false });
  return stat === undefined ? null : { dev: stat.dev, ino: stat.ino };
}

function codeOf(error: unknown): string {
  return (error as { code?: string }).code ?? String(error);
}
