import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileOffsetStore } from "../../packages/client/src/file-store.ts";
import { localStorageOffsetStore, memoryOffsetStore, type OffsetStore, type StorageLike, type Timers } from "../../packages/client/src/index.ts";

const dir = mkdtempSync(join(tmpdir(), "courier-offsets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const tempFile = () => join(dir, `nested-${++files}`, "offsets.json");

function fakeStorage(): StorageLike & { map: Map<string, string>; full: boolean } {
  const map = new Map<string, string>();
  const storage = {
    map,
    full: false,
    getItem: (k: string) => map.get(k) ?? null,
    setItem(k: string, v: string) {
      if (storage.full) throw new Error("QuotaExceededError");
      map.set(k, v);
    },
    removeItem: (k: string) => void map.delete(k),
  };
  return storage;
}

const implementations: Array<[string, () => OffsetStore]> = [
  ["memoryOffsetStore", () => memoryOffsetStore()],
  ["localStorageOffsetStore", () => localStorageOffsetStore({ storage: fakeStorage() })],
  ["fileOffsetStore", () => fileOffsetStore(tempFile())],
];

describe.each(implementations)("%s", (_name, make) => {
  test("gets what was set, per channel, and forgets deleted channels", () => {
    const store = make();
    expect(store.get("user:a")).toBeUndefined();
    store.set("user:a", { epoch: "e1", offset: 3 });
    store.set("job:1", { epoch: "e9", offset: 0 });
    store.set("user:a", { epoch: "e1", offset: 4 });
    expect(store.get("user:a")).toEqual({ epoch: "e1", offset: 4 });
    expect(store.get("job:1")).toEqual({ epoch: "e9", offset: 0 });
    store.delete("user:a");
    expect(store.get("user:a")).toBeUndefined();
  });
});

describe("localStorageOffsetStore", () => {
  test("survives a new store over the same storage, under its prefix", () => {
    const storage = fakeStorage();
    localStorageOffsetStore({ storage, prefix: "app:" }).set("user:a", { epoch: "e", offset: 2 });
    expect([...storage.map.keys()]).toEqual(["app:user:a"]);
    expect(localStorageOffsetStore({ storage, prefix: "app:" }).get("user:a")).toEqual({ epoch: "e", offset: 2 });
  });

  test("treats corrupt entries as absent and a full storage as a no-op", () => {
    const storage = fakeStorage();
    storage.map.set("courier:pos:user:a", "{not json");
    storage.map.set("courier:pos:user:b", JSON.stringify({ epoch: 1, offset: "x" }));
    const store = localStorageOffsetStore({ storage });
    expect(store.get("user:a")).toBeUndefined();
    expect(store.get("user:b")).toBeUndefined();
    storage.full = true;
    expect(() => store.set("user:c", { epoch: "e", offset: 1 })).not.toThrow();
  });

  test("keeps positions in memory where there is no localStorage (Bun), or throws TypeError when asked to", () => {
    expect(globalThis.localStorage).toBeUndefined();
    const store = localStorageOffsetStore();
    store.set("user:a", { epoch: "e", offset: 5 });
    expect(store.get("user:a")).toEqual({ epoch: "e", offset: 5 });
    expect(() => localStorageOffsetStore({ fallback: "throw" })).toThrow(TypeError);
  });
});

/** Timers the test fires by hand: `due` lists the pending callbacks with their delays. */
function manualTimers() {
  const due = new Map<number, { fn: () => void; ms: number }>();
  let next = 0;
  const timers: Timers = {
    setTimeout: (fn, ms) => (due.set(++next, { fn, ms }), next),
    clearTimeout: (handle) => void due.delete(handle as number),
  };
  const fire = () => {
    for (const [id, { fn }] of [...due]) {
      due.delete(id);
      fn();
    }
  };
  return { timers, due, fire };
}

describe("fileOffsetStore", () => {
  test("gathers changes into one write after flushIntervalMs, then a new store over the file reads them", () => {
    const path = tempFile();
    const { timers, due, fire } = manualTimers();
    const store = fileOffsetStore(path, { timers, flushIntervalMs: 250 });
    store.set("user:a", { epoch: "e1", offset: 1 });
    store.set("user:a", { epoch: "e1", offset: 2 });
    store.set("job:7", { epoch: "e2", offset: 9 });
    expect([...due.values()].map((t) => t.ms)).toEqual([250]);
    expect(existsSync(path)).toBe(false);
    fire();
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({ "user:a": { epoch: "e1", offset: 2 }, "job:7": { epoch: "e2", offset: 9 } });
    store.close();
    const reopened = fileOffsetStore(path, { timers });
    expect(reopened.get("user:a")).toEqual({ epoch: "e1", offset: 2 });
    expect(reopened.get("job:7")).toEqual({ epoch: "e2", offset: 9 });
    reopened.close();
  });

  test("close() writes what is pending; a corrupt file or entry counts as absent", () => {
    const path = tempFile();
    const { timers } = manualTimers();
    const store = fileOffsetStore(path, { timers });
    store.set("user:a", { epoch: "e1", offset: 4 });
    store.close();
    expect(fileOffsetStore(path, { timers }).get("user:a")).toEqual({ epoch: "e1", offset: 4 });

    writeFileSync(path, JSON.stringify({ "user:a": { epoch: 1, offset: "x" }, "user:b": { epoch: "e", offset: 3 } }));
    const partly = fileOffsetStore(path, { timers });
    expect(partly.get("user:a")).toBeUndefined();
    expect(partly.get("user:b")).toEqual({ epoch: "e", offset: 3 });
    writeFileSync(path, "{not json");
    expect(fileOffsetStore(path, { timers }).get("user:b")).toBeUndefined();
  });

  test("rejects a bad path or interval", () => {
    expect(() => fileOffsetStore("")).toThrow(TypeError);
    expect(() => fileOffsetStore(tempFile(), { flushIntervalMs: -1 })).toThrow(RangeError);
  });
});
