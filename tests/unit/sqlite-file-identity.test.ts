import { afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rememberFiles, type FileIdentity } from "../../src/engine/sqlite-file-identity.ts";

const opened: FileIdentity[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const identity of opened.splice(0)) identity.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function remembered(): { dir: string; db: string; identity: FileIdentity } {
  const root = mkdtempSync(join(tmpdir(), "courier-identity-"));
  dirs.push(root);
  const dir = join(root, "data");
  mkdirSync(dir);
  const db = join(dir, "courier.db");
  writeFileSync(db, "db");
  writeFileSync(`${db}-wal`, "wal");
  const identity = rememberFiles([db, `${db}-wal`, join(dir, "missing")]);
  opened.push(identity);
  return { dir, db, identity };
}

test("files still at their paths answer null to both checks", () => {
  const { identity } = remembered();
  expect({ unlinked: identity.unlinked(), changed: identity.changed() }).toEqual({ unlinked: null, changed: null });
});

test("rm -rf of the dir is seen by the descriptor check, without a path lookup", () => {
  const { dir, db, identity } = remembered();
  rmSync(dir, { recursive: true, force: true });
  expect({ unlinked: identity.unlinked(), changed: identity.changed() }).toEqual({ unlinked: `${db} was deleted`, changed: `${db} was deleted` });
});

test("a dir renamed away and replaced leaves the files linked: only the path check sees it", () => {
  const { dir, db, identity } = remembered();
  renameSync(dir, `${dir}.old`);
  mkdirSync(dir);
  writeFileSync(db, "another db");
  expect({ unlinked: identity.unlinked(), changed: identity.changed() }).toEqual({ unlinked: null, changed: `${db} was replaced by another file` });
});
