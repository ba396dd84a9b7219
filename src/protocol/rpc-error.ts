/** The coded failure of an `rpc` frame (PROTOCOL.md §4): what a handler throws, what the client reads. */
import type { ErrorCode } from "./codes.ts";

/**
 * Thrown by an rpc handler for a failure the caller should see with its code; anything else thrown
 * answers `internal`.
 *
 * @example
 * throw new RpcError(ErrorCode.LimitExceeded, "at most 3 simulated jobs at a time");
 */
export class RpcError extends Error {
  override name = "RpcError";
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
