/**
 * Courier's client SDK: `import { CourierClient } from "courier/client"`. Zero dependencies; runs
 * in browsers and Bun.
 *
 * @example
 * import { CourierClient, localStorageOffsetStore } from "courier/client";
 * const client = new CourierClient({ url: "wss://rt.example.com/v1/ws", token: getToken, store: localStorageOffsetStore() });
 * client.subscribe("user:alice", (e) => console.log(e.event, e.data));
 * client.connect();
 */
export { CourierClient } from "./courier-client.ts";
export type { ClientEvents, CourierClientOptions, RequestOptions, SubscribeOptions } from "./client-options.ts";
export { CourierError } from "./errors.ts";
export type { CourierErrorDetails } from "./errors.ts";
export { localStorageOffsetStore, memoryOffsetStore } from "./offset-store.ts";
export type { LocalStorageOffsetStoreOptions, OffsetStore, StorageLike } from "./offset-store.ts";
export { backoffDelay, resolveBackoff } from "./backoff.ts";
export type { BackoffOptions } from "./backoff.ts";
export { httpBaseFromWsUrl } from "./history.ts";
export type * from "./types.ts";
export { CloseCode, closeAdvice, ErrorCode, NotRecoveredReason } from "../protocol/codes.ts";
