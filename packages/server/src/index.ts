/** `@courier/server`: publish to Courier from a backend (Bun, Node ≥ 20). */
export { CourierServer, type CourierServerOptions } from "./courier-server.js";
export { CourierApiError, type CourierApiErrorInit, type CourierErrorCode } from "./errors.js";
export type { Clock, FetchLike } from "./send.js";
export type * from "./types.js";
