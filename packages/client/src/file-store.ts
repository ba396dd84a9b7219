/**
 * `@courier/client/file-store`: the offset store for Bun and Node processes, apart from the
 * browser entry because it needs `node:fs`.
 *
 * @example
 * import { fileOffsetStore } from "@courier/client/file-store";
 * const store = fileOffsetStore("./courier-offsets.json");
 */
export { fileOffsetStore } from "./file-offset-store.ts";
export type { FileOffsetStore, FileOffsetStoreOptions } from "./file-offset-store.ts";
