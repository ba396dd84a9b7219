/**
 * The PROTOCOL.md §5 recovery verdict: defined once in the client package, which the SDK's polling
 * path shares with the hub and the history route.
 */
export * from "../../packages/client/src/protocol/recovery.ts";
