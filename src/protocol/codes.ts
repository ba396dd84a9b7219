/**
 * Close codes, error codes, recovery reasons and tiers: defined once in the zero-dependency client
 * package (`@courier/client`) so that server and SDK import the same table.
 */
export * from "../../packages/client/src/protocol/codes.ts";
