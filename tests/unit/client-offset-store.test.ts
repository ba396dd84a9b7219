import { describe, expect, test } from "bun:test";
import { localStorageOffsetStore, memoryOffsetStore, type OffsetStore, type StorageLike } from "../../src/client/index.ts";

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

  test("throws TypeError without any storage", () => {
    expect(() => localStorageOffsetStore()).toThrow(TypeError);
  });
});
