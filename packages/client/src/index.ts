/**
 * `@courier/client`: Courier's client SDK for browsers and Bun. Zero dependencies, no side effects.
 *
 * @example
 * import { CourierClient, localStorageOffsetStore } from "@courier/client";
 * const client = new CourierClient({ url: "wss://rt.example.com/v1/ws", token: getToken, store: localStorageOffsetStore() });
 * client.subscribe("user:alice", (e) => console.log(e.event, e.data));
 * client.connect();
 */
export { CourierClient } from "./courier-client.ts";
export type { ClientEvents, CourierClientOptions, RequestOptions, SubscribeOptions } from "./client-options.ts";
export { CourierError } from "./errors.ts";
export type { AgentStream, AgentStreamStatus } from "./stream-texts.ts";
export type { CourierErrorDetails } from "./errors.ts";
export { localStorageOffsetStore, memoryOffsetStore } from "./offset-store.ts";
export type { LocalStorageOffsetStoreOptions, OffsetStore, StorageLike } from "./offset-store.ts";
export { backoffDelay, resolveBackoff } from "./backoff.ts";
export type { BackoffOptions } from "./backoff.ts";
export { httpBaseFromWsUrl } from "./history.ts";
export { checkConnection } from "./ws-check.ts";
export type { Refusal } from "./ws-check.ts";
export { signalChannel, signalsFor } from "./signals.ts";
export type * from "./types.ts";
export type { ErrorFrame, RequestId } from "./protocol/frames.ts";
export { CloseCode, closeAdvice, ErrorCode, NotRecoveredReason, RefusalReason, SUBPROTOCOL, TIERS, tierReaches, TOKEN_SUBPROTOCOL_PREFIX } from "./protocol/codes.ts";
export type { Tier } from "./protocol/codes.ts";
export { recoveryVerdict } from "./protocol/recovery.ts";
export type { ChannelPosition, ReaderPosition, RecoveryVerdict } from "./protocol/recovery.ts";
export { parseChannel } from "./protocol/channel.ts";
export type { ChannelName } from "./protocol/channel.ts";
