/** The channel grammar of PROTOCOL.md §4: defined once in the client package, which validates names too. */
export * from "../../packages/client/src/protocol/channel.ts";
