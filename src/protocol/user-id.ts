/** The user-id grammar: defined once in the client package. */
export * from "../../packages/client/src/protocol/user-id.ts";
